"""A cached task that a test calls from two processes (see test_records.py)."""

from __future__ import annotations

import os

from reflow import task
from reflow.task import INPUTS


@task(cache_policy=INPUTS)
def slow_square(x: int) -> int:
    with open(os.environ["CACHE_SIDE"], "a") as side:
        side.write(f"{x}\n")
    return x * x
