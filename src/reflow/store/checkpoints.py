"""`Checkpointer`: copies a SQLite store's write-ahead log into the database from a thread of
its own, so that the thread that commits (a flow returning) does not wait for it.

In WAL mode SQLite appends each commit to `reflow.db-wal` and, by default, the connection
whose commit takes the log past 1,000 pages copies it back into the database and syncs the
file then and there: a flow that happens to commit then pays for it (about a fifth of what a
small flow's run costs to keep). The store's connection checkpoints only past
`WAL_LIMIT_PAGES` (a safety net); this thread does it every `every_commits` commits, on a
connection of its own, while the flows go on.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger("reflow.store")

WAL_LIMIT_PAGES = 10_000
"""The store's own connection checkpoints past this many pages of log (40 MB): only when
this thread falls behind."""


class Checkpointer:
    """Checkpoints one SQLite file's log from a daemon thread, woken every `every_commits`
    commits; the thread ends after `idle_exit` quiet seconds (the next commit starts another).
    """

    every_commits = 100
    idle_exit = 5.0

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._commits = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.done = 0
        """Checkpoints made (each copied back what the log held then, or all it could)."""

    def committed(self) -> None:
        """A write transaction committed (the caller holds the store's lock)."""
        self._commits += 1
        if self._commits < self.every_commits:
            return
        self._commits = 0
        self._wake.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name="reflow-checkpoint", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
        except sqlite3.Error:
            logger.exception("reflow: the checkpoint thread of %s cannot open it", self.path)
            with self._lock:
                self._thread = None
            return
        try:
            while True:
                if not self._wake.wait(self.idle_exit):
                    with self._lock:
                        if not self._wake.is_set():
                            self._thread = None
                            return
                    continue
                self._wake.clear()
                if self._closed:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.done += 1
                except sqlite3.Error:  # the store's own connection checkpoints past the limit
                    logger.warning("reflow: checkpointing %s failed", self.path, exc_info=True)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread (it finishes a checkpoint it is in) and wait for it."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout)
