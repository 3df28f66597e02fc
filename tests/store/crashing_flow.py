"""A flow that a test runs in a child process and kills mid-way (see test_persistence.py).

`step(i)` appends `i` to the side file (proof it ran). When `i` is `DIE_AT`, it first waits
until the store shows the step before it completed (the writer thread is asynchronous), then
kills its own process without any cleanup.
"""

from __future__ import annotations

import os

from recorded import wait_recorded  # type: ignore[import-not-found]

from reflow import flow, task


def _wait_recorded(key: str) -> None:
    wait_recorded(os.environ["CRASH_DB"], key)


@task
def step(i: int) -> int:
    with open(os.environ["CRASH_SIDE"], "a") as side:
        side.write(f"{i}\n")
    if os.environ.get("DIE_AT") == str(i):
        _wait_recorded(f"step-{i - 1}")
        os._exit(9)  # a crash: no flush, no finally, no atexit
    return i * 10


def noticed(flow: object, flow_run: object, state: object) -> None:
    """An on_crashed hook: leaves a trace the test reads."""
    with open(os.environ["CRASH_SIDE"] + ".crashed", "a") as trace:
        trace.write(f"{getattr(flow_run, 'id', '?')} {getattr(state, 'name', '?')}\n")


@flow(store=os.environ.get("CRASH_DB"), on_crashed=noticed)
def chain(n: int) -> int:
    return sum(step(i) for i in range(n))
