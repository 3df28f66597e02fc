"""`PostgresStore`: one database shared by many processes and machines (psycopg 3).

Install it with `pip install reflow[postgres]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from reflow.store.base import SQLStore
from reflow.store.files import INLINE_LIMIT, ResultFiles
from reflow.store.sql import StoreError

_MIGRATION_LOCK = 0x7265666C6F77  # "reflow": one advisory lock id for schema changes


class PostgresStore(SQLStore):
    """A store in a PostgreSQL database, e.g. `PostgresStore("postgresql://user@host/db")`."""

    placeholder = "%s"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    rows_per_statement = 200  # 14 values a row, under PostgreSQL's 65,535 parameters
    types: ClassVar[dict[str, str]] = {
        "blob": "BYTEA",
        "real": "DOUBLE PRECISION",
        "serial": "BIGSERIAL PRIMARY KEY",
    }

    def __init__(
        self,
        url: str,
        connect_timeout: float = 10.0,
        *,
        results_dir: str | Path | None = None,
        inline_limit: int = INLINE_LIMIT,
    ) -> None:
        """`results_dir`: a folder every process using this database can read (a shared
        file system), for results of more than `inline_limit` bytes; None keeps every
        result in the database."""
        super().__init__()
        if results_dir is not None:
            self.files = ResultFiles(Path(results_dir), inline_limit)
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "PostgresStore needs psycopg 3: pip install 'reflow[postgres]'"
            ) from exc
        self.url = url
        try:
            self._conn = psycopg.connect(url, connect_timeout=int(max(connect_timeout, 1)))
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot reach the PostgreSQL store at {_safe(url)}: {exc}") from exc
        self._migrate()

    def _lock_schema(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def _has_table(self, cur: Any, name: str) -> bool:
        cur.execute("SELECT to_regclass(%s)", (name,))
        row = cur.fetchone()
        return row is not None and row[0] is not None

    def __repr__(self) -> str:
        return f"PostgresStore({_safe(self.url)!r})"


def _safe(url: str) -> str:
    """The URL without its password, for messages and reprs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
