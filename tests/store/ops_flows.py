"""A flow the scheduler tests serve (imported by module name, as a worker would)."""

from __future__ import annotations

from reflow import flow, task


@task
def double(x: int) -> int:
    return 2 * x


@flow
def nightly(x: int = 1) -> int:
    return double(x)
