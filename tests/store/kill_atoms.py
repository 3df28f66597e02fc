"""Atoms flows the fault tests run in child processes, kill, and resume (test_atom_faults.py).

    python kill_atoms.py chain|times|revert RUN_ID [resume]

The run is kept in `$KILL_DB` (a SQLite path or a PostgreSQL URL); every execute and revert
appends a line to `$KILL_SIDE` (and prints it, so the test can wait for progress by reading the
pipe). The child prints its outcome last: `ok <result as JSON>` or `failed <error>`.

- chain: a LinearFlow of 50 atoms, x{i+1} = x{i} + i; the test kills it at random points.
- times: Times(3) around an atom that always fails; it kills itself (SIGKILL) in its second
  try, the first time only.
- revert: a, b, c, d where d fails; b's revert kills the process, the first time only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from reflow.atoms import FunctorTask, LinearFlow, RemoteFailure, Times, resume, run

N = 50


def note(line: str) -> None:
    with open(os.environ["KILL_SIDE"], "a") as side:
        side.write(line + "\n")
    print(line, flush=True)


def first_time(marker: str) -> bool:
    """True once per test: the marker goes in the side file, which the next process reads."""
    try:
        with open(os.environ["KILL_SIDE"]) as side:
            if marker in side.read().split():
                return False
    except FileNotFoundError:
        pass
    note(marker)
    return True


def die() -> None:
    """SIGKILL this process once the store has what it did so far (its writer flushed), so
    that the test knows what was recorded: the random kills of `chain` need no such help."""
    from reflow.store.persistence import persistence

    kept = persistence(True, os.environ["KILL_DB"])
    assert kept is not None
    kept.recorder.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def chain() -> LinearFlow:
    def add(i: int) -> FunctorTask:
        def work(x: int) -> int:
            time.sleep(0.002)  # some work: kills land while atoms run, too
            note(f"s{i}")
            return x + i

        return FunctorTask(work, name=f"s{i}", rebind={"x": f"x{i}"}, provides=f"x{i + 1}")

    return LinearFlow("chain").add(*[add(i) for i in range(N)])


def times() -> LinearFlow:
    def call(attempt: int) -> None:
        note(f"x:call:{attempt}")
        if attempt == 2 and first_time("killed"):
            die()
        raise TimeoutError(f"try {attempt} timed out")

    def undo(attempt: int) -> None:
        note(f"r:call:{attempt}")

    flaky = LinearFlow("flaky", retry=Times(3, name="thrice", provides="attempt"))
    return flaky.add(FunctorTask(call, name="call", revert=undo))


def reverting() -> LinearFlow:
    def step(name: str) -> FunctorTask:
        def work() -> str:
            note(f"x:{name}")
            if name == "d":
                raise TimeoutError("d timed out")
            return name

        def undo() -> None:
            if name == "b" and first_time("killed"):
                die()
            note(f"r:{name}")

        return FunctorTask(work, name=name, revert=undo)

    return LinearFlow("reverting").add(*[step(name) for name in "abcd"])


FLOWS = {"chain": chain, "times": times, "revert": reverting}


def main(which: str, run_id: str, resuming: bool) -> None:
    flow = FLOWS[which]()
    db = os.environ["KILL_DB"]
    try:
        if resuming:
            result: Any = resume(run_id, flow, runs=db)
        else:
            result = run(flow, store={"x0": 0}, runs=db, run_id=run_id)
    except Exception as exc:
        text = exc.failure.exception_str if isinstance(exc, RemoteFailure) else str(exc)
        print(f"failed {type(exc).__name__}: {text}", flush=True)
    else:
        print(f"ok {json.dumps(result, sort_keys=True)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] == ["resume"])
