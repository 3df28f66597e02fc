"""Runs that processes race to resume (test_claims.py): an atoms flow and a decorated flow of
three steps, `before`, `gate` and `after`, kept in `$CLAIM_DB`.

    python claim_runs.py atoms|atoms-key|flow|flow-key start|resume RUN_ID_OR_KEY

- start: runs the flow (with `run_key=` for the -key kinds); its `gate` kills the process
  (SIGKILL, once the store has what it did) the first time, so the run is left unfinished,
  its process dead.
- resume: prints `ready`, waits for a line on stdin, then resumes the run (calls the flow with
  the same key, for the -key kinds); its `gate` prints
  `running` and waits for another line before it returns, so the run is held meanwhile.

Every step appends `name pid` to `$CLAIM_SIDE`. The child prints its outcome last: `ok
<result>`, `held <message>` (RunHeld) or `failed <error>`.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import reflow
from reflow import atoms, flow, task
from reflow.store.claims import RunHeld


def note(name: str) -> None:
    with open(os.environ["CLAIM_SIDE"], "a") as side:
        side.write(f"{name} {os.getpid()}\n")


def gate_opens() -> None:
    """The first time: die. In a resuming child: say so, and wait for the test's word."""
    side = os.environ["CLAIM_SIDE"]
    with open(side, "a+") as file:
        file.seek(0)
        first = "killed" not in file.read()
    if first:
        note("killed")
        from reflow.store.persistence import persistence

        kept = persistence(True, os.environ["CLAIM_DB"])
        assert kept is not None
        kept.recorder.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("CLAIM_WAITS"):  # not a global: a flow resumed loads this file again
        print("running", flush=True)
        sys.stdin.readline()


def step(name: str) -> str:
    if name == "gate":
        gate_opens()
    note(name)
    return name


def atoms_flow() -> atoms.LinearFlow:
    return atoms.LinearFlow("gated").add(
        *[
            atoms.FunctorTask(step, name=n, inject={"name": n}, provides=n)
            for n in ("before", "gate", "after")
        ]
    )


@task
def run_step(name: str) -> str:
    return step(name)


@flow(store=os.environ.get("CLAIM_DB"))
def gated() -> list[str]:
    return [run_step(n) for n in ("before", "gate", "after")]


def start(kind: str, handle: str, db: str) -> None:
    if kind == "atoms":
        atoms.run(atoms_flow(), runs=db, run_id=handle)
    elif kind == "atoms-key":
        atoms.run(atoms_flow(), runs=db, run_key=handle)
    elif kind == "flow":
        gated.run()
    else:
        gated(run_key=handle)


def carry_on(kind: str, handle: str, db: str) -> Any:
    if kind == "atoms":
        return atoms.resume(handle, atoms_flow(), runs=db)
    if kind == "atoms-key":
        return atoms.run(atoms_flow(), runs=db, run_key=handle)
    if kind == "flow":
        return reflow.resume(handle, db).result()
    return gated(run_key=handle)


def main(kind: str, action: str, handle: str) -> None:
    """`handle`: the run's id, or its key for the kinds that end in -key."""
    db = os.environ["CLAIM_DB"]
    if action == "start":
        start(kind, handle, db)
        return
    os.environ["CLAIM_WAITS"] = "1"
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        result = sorted(carry_on(kind, handle, db))
    except RunHeld as exc:
        print(f"held {exc}", flush=True)
    except Exception as exc:
        print(f"failed {type(exc).__name__}: {exc}", flush=True)
    else:
        print(f"ok {result}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
