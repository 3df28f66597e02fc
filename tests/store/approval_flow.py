"""A flow with an approval gate, paused in one process and resumed in another (see
test_persistence.py). Each step appends its name to the side file: proof of what ran where."""

from __future__ import annotations

import os

from reflow import Pause, flow, get_run_context, task


def _mark(name: str) -> None:
    with open(os.environ["APPROVAL_SIDE"], "a") as side:
        side.write(f"{name} {os.getpid()}\n")


@task
def prepare(n: int) -> int:
    _mark("prepare")
    return n * 2


@task
def approve(amount: int) -> int:
    if not get_run_context().task_run.resumed:  # type: ignore[union-attr]
        raise Pause(f"approve paying {amount}")
    _mark("approve")
    return amount


@task
def pay(amount: int) -> str:
    _mark("pay")
    return f"paid {amount}"


@flow(store=os.environ.get("APPROVAL_DB"))
def payout(n: int) -> str:
    return pay(approve(prepare(n)))
