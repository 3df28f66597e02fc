"""A flow run and an atoms run the fencing test stops (SIGSTOP), resumes in another process,
then lets go on (SIGCONT): see test_fencing.py.

    python fence_flows.py flow|atoms run|resume [RUN_ID]

The run is kept in `$FENCE_DB` (a SQLite path or a PostgreSQL URL). Each step appends
`<pid> <i>` to `$FENCE_SIDE` and returns `<pid>:<i>`, so the test can tell which process ran
each step and whose result the store kept. The process prints its outcome last: `ok`, or
`taken <RunTakenOver's message>` (exit code 3).
"""

from __future__ import annotations

import os
import sys
import time

from reflow import flow, task
from reflow.atoms import FunctorTask, LinearFlow, resume, run
from reflow.store import RunTakenOver

N = 30
STEP_SECONDS = 0.05  # some work: the stop lands while a step runs, or between two


def work(i: int) -> str:
    time.sleep(STEP_SECONDS)
    with open(os.environ["FENCE_SIDE"], "a") as side:
        side.write(f"{os.getpid()} {i}\n")
    return f"{os.getpid()}:{i}"


@task
def step(i: int, previous: str) -> str:
    return work(i)


@flow(store=os.environ.get("FENCE_DB"))
def chain(n: int) -> list[str]:
    results, previous = [], ""
    for i in range(n):
        previous = step(i, previous)
        results.append(previous)
    return results


def atoms() -> LinearFlow:
    def atom(i: int) -> FunctorTask:
        def execute(**_: str) -> str:
            return work(i)

        requires = () if i == 0 else (f"s{i - 1}",)
        return FunctorTask(execute, name=f"s{i}", requires=requires, provides=f"s{i}")

    return LinearFlow("fenced").add(*[atom(i) for i in range(N)])


def main(kind: str, action: str, run_id: str = "") -> int:
    db = os.environ["FENCE_DB"]
    try:
        if kind == "flow" and action == "run":
            chain(N)
        elif kind == "flow":
            chain.resume(run_id)
        elif action == "run":
            run(atoms(), runs=db, run_id=run_id)
        else:
            resume(run_id, atoms(), runs=db)
    except RunTakenOver as error:
        print(f"taken {error}", flush=True)
        return 3
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
