"""A 200-task flow the fault test starts, kills at random points, and resumes (see
test_faults.py). Each `step(i)` appends `i` to the side file before returning."""

from __future__ import annotations

import os
import sys
import time

import reflow
from reflow import flow, task


@task
def step(i: int, previous: int) -> int:
    time.sleep(0.02)  # some work: the kills land while tasks run, too
    with open(os.environ["KILL_SIDE"], "a") as side:
        side.write(f"{i}\n")
    return previous + i


@flow(store=os.environ.get("KILL_DB"))
def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total = step(i, total)
    return total


if __name__ == "__main__":
    run_id = sys.argv[1] if len(sys.argv) > 1 else ""
    if run_id:
        reflow.resume(run_id, os.environ["KILL_DB"])
    else:
        chain.run(200)
