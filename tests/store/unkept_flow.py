"""A kept flow whose connection and loaded parts are not kept (see test_persist_result.py): one
process runs it (its report fails while UNKEPT_FAIL is set), another resumes it.

Each task appends its name to the side file, UNKEPT_SIDE (proof it ran, in which process).
"""

from __future__ import annotations

import os
import threading

from reflow import flow, task


def _note(what: str) -> None:
    with open(os.environ["UNKEPT_SIDE"], "a") as side:
        side.write(f"{os.getpid()} {what}\n")


@task(persist_result=False)
def connect() -> threading.Lock:
    _note("connect")
    return threading.Lock()  # stands for an open connection: it cannot be pickled


@task(persist_result=False)
def load(part: int) -> bytes:
    _note(f"load {part}")
    return b"UNKEPT-PART-" * (part + 1)


@task
def size(blob: bytes) -> int:
    _note("size")
    return len(blob)


@task
def report(conn: threading.Lock, sizes: list[int]) -> str:
    _note("report")
    if os.environ.get("UNKEPT_FAIL"):
        raise ConnectionError("the report server is down")
    return f"{sum(sizes)} bytes"


@flow(store=os.environ.get("UNKEPT_DB", "unkept.db"))
def nightly() -> str:
    conn = connect()
    sizes = size.map(load.map(range(3)))
    return report(conn, sizes.result())
