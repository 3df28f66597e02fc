"""What the flows that kill their own process share: waiting until the store shows a call
completed (the writer thread is asynchronous), so the kill lands after a known point."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def wait_recorded(database: str | Path, key: str, timeout: float = 20) -> None:
    """Return once the task run of call `key` is Completed in the SQLite file `database`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(database)
            row = conn.execute(
                "SELECT state FROM reflow_task_runs WHERE call_key = ?", (key,)
            ).fetchone()
            conn.close()
        except sqlite3.Error:
            row = None
        if row is not None and row[0] == "Completed":
            return
        time.sleep(0.01)
    raise TimeoutError(f"{key} was never recorded")
