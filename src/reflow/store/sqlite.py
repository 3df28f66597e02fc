"""`SQLiteStore`: the embedded default, one file (WAL mode), no server."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

from reflow.store.base import SQLStore
from reflow.store.checkpoints import WAL_LIMIT_PAGES, Checkpointer
from reflow.store.files import INLINE_LIMIT, ResultFiles
from reflow.store.results import reflow_home
from reflow.store.sql import StoreError

_FIX = (
    "Flows keep their runs in the default store, $REFLOW_HOME/reflow.db (.reflow/ in the "
    "working directory when REFLOW_HOME is unset): set REFLOW_HOME to a writable folder, give "
    "the flow store= a writable path, or keep runs in memory with @flow(persist=False) or "
    "REFLOW_STORE=memory"
)


class SQLiteStore(SQLStore):
    """A store in one SQLite file (default: `$REFLOW_HOME/reflow.db`), in WAL mode so readers
    never wait for the writer."""

    placeholder = "?"
    rows_per_statement = 500  # 14 values a row: well under SQLite's 32,766 variables
    types: ClassVar[dict[str, str]] = {
        "blob": "BLOB",
        "real": "REAL",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
    }

    def __init__(
        self,
        path: str | Path | None = None,
        timeout: float = 30.0,
        *,
        inline_limit: int = INLINE_LIMIT,
        results_dir: str | Path | None = None,
    ) -> None:
        """`inline_limit`: results of more bytes are kept as files in `results_dir` (default:
        `<name>-results/` beside the database file)."""
        super().__init__()
        self.path = Path(path) if path is not None else reflow_home() / "reflow.db"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"the folder of the store {self.path} cannot be made ({exc}). {_FIX}"
            ) from exc
        for place in (self.path, self.path.parent):
            if place.exists() and not os.access(place, os.W_OK):
                raise StoreError(
                    f"{self.path} cannot be used as a reflow store: {place} is read-only (a "
                    f"read-only disk, or permissions). {_FIX}"
                )
        folder = Path(results_dir) if results_dir is not None else None
        self.files = ResultFiles(
            folder or self.path.with_name(f"{self.path.stem}-results"), inline_limit
        )
        self._checkpoints: Checkpointer | None = None  # made once the schema is there
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, check_same_thread=False, isolation_level="DEFERRED"
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint
            self._conn.execute("PRAGMA foreign_keys=ON")
            # The log is checkpointed by a thread of its own (see checkpoints.py); this
            # connection does it only if that thread falls far behind.
            self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_LIMIT_PAGES}")
            self._migrate()
            self._changes = self._conn.total_changes
            self._checkpoints = Checkpointer(self.path, timeout)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(
                f"{self.path} cannot be used as a reflow store: {exc}. Is it a reflow database "
                "(or a SQLite database at all)?"
            ) from exc

    def _committed(self) -> None:
        checkpoints = self._checkpoints
        if checkpoints is None:
            return
        changes = self._conn.total_changes
        if changes != self._changes:  # a write, not a read
            self._changes = changes
            checkpoints.committed()

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.close()
        super().close()

    def _lock_schema(self, cur: Any) -> None:
        """Take the write lock before looking at the schema: two processes opening a new file
        at once migrate it once (the second waits, then finds it done)."""
        if not self._conn.in_transaction:
            cur.execute("BEGIN IMMEDIATE")

    def _has_table(self, cur: Any, name: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cur.fetchone() is not None

    def _check_empty(self, cur: Any) -> None:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        others = [row[0] for row in cur.fetchall() if not row[0].startswith("sqlite_")]
        if others:
            raise StoreError(
                f"{self.path} is a SQLite database but not a reflow one (it has the tables "
                f"{', '.join(others[:5])}): give reflow a file of its own"
            )

    def integrity_check(self) -> str:
        """SQLite's own check of the file: "ok" when it is sound."""
        with self._transaction() as cur:
            cur.execute("PRAGMA integrity_check")
            return str(cur.fetchone()[0])

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"
