"""Flows the worker tests queue; worker processes import this module to run them.

`job(i)` records `i` in the side file (proof it ran). The run of `VICTIM` first leaves a
marker and then hangs until the test kills its worker; resumed by another worker, it finds the
marker and goes on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from reflow import flow, task


@task
def work(i: int) -> int:
    side = Path(os.environ["WORK_SIDE"])
    with side.open("a") as file:
        file.write(f"{i}\n")
    if str(i) == os.environ.get("VICTIM"):
        marker = side.with_suffix(".victim")
        if not marker.exists():
            partial = marker.with_suffix(".partial")
            partial.write_text(str(os.getpid()))
            partial.rename(marker)  # whole at once: the test reads it as soon as it exists
            while True:  # hangs: the test kills this worker
                time.sleep(0.05)
    return i * i


@flow
def job(i: int) -> int:
    return work(i)
