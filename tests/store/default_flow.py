"""Flows with no store options, kept in the default store (see test_default_store.py).

`chain` is run in a child process and dies mid-way: `step(i)` appends `i` to the side file
(proof it ran); when `i` is `DIE_AT`, it first waits until `$REFLOW_HOME/reflow.db` shows the
step before it completed, then kills its own process without any cleanup. `nested` is the
task a ProcessExecutor ships to a worker process: it calls the flow `inner` there.
"""

from __future__ import annotations

import os
from pathlib import Path

from reflow import flow, task
from tests.store.recorded import wait_recorded


def _wait_recorded(key: str) -> None:
    wait_recorded(Path(os.environ["REFLOW_HOME"]) / "reflow.db", key)


@task
def step(i: int) -> int:
    with open(os.environ["DEFAULT_SIDE"], "a") as side:
        side.write(f"{i}\n")
    if os.environ.get("DIE_AT") == str(i):
        _wait_recorded(f"step-{i - 1}")
        os._exit(9)  # a crash: no flush, no finally, no atexit
    return i * 10


@flow
def chain(n: int) -> int:
    return sum(step(i) for i in range(n))


@task
def add_one(x: int) -> int:
    return x + 1


@flow
def inner(x: int) -> int:
    return add_one(x)


def run_inner(x: int) -> str:
    """Runs in a worker process: the id of the run of `inner` it made there."""
    return inner.run(x).id


nested = task(run_inner, name="nested")  # the function ships by reference: it has its name
