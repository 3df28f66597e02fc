"""`SQLStore`: the SQL implementation both backends share (they differ in how they connect,
lock and spell a few types): migrations, writing and reading runs, and the cache. Who holds
a run (heartbeats, crashes, take-overs, claims, fences), atoms runs, operations, pruning and
the dashboard's queries are mixed in from modules of their own; `Store`, what the durability
layer asks of a database, is in protocol.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from reflow.store import sql
from reflow.store.atom_queries import AtomQueries
from reflow.store.fencing import Fence, FencedOff
from reflow.store.files import PREFIX, ResultFiles
from reflow.store.holding import RunHolding
from reflow.store.operations import OperationsQueries
from reflow.store.protocol import Store
from reflow.store.pruning import Pruning
from reflow.store.records import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from reflow.store.results import Encoded
from reflow.store.sql import StoreConflict, StoreError
from reflow.store.views import ViewQueries


class SQLStore(RunHolding, OperationsQueries, AtomQueries, Pruning, ViewQueries):
    """The queries, over a DB-API connection used by one thread at a time."""

    placeholder = "?"
    types: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._conn: Any = None

    # -- opening ----------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply the migrations this database lacks, or refuse it."""
        with self._transaction() as cur:
            self._lock_schema(cur)
            if not self._has_table(cur, "reflow_meta"):
                self._check_empty(cur)
                cur.execute("CREATE TABLE reflow_meta (key TEXT PRIMARY KEY, value TEXT)")
                cur.execute(
                    f"INSERT INTO reflow_meta (key, value) VALUES ('schema_version', "
                    f"{self.placeholder})",
                    ("0",),
                )
            cur.execute("SELECT value FROM reflow_meta WHERE key = 'schema_version'")
            row = cur.fetchone()
            version = int(row[0]) if row else 0
            if version > sql.SCHEMA_VERSION:
                raise StoreError(
                    f"{self} holds reflow schema version {version}, newer than this reflow "
                    f"knows ({sql.SCHEMA_VERSION}): upgrade reflow to use it"
                )
            for number in range(version, sql.SCHEMA_VERSION):
                for statement in sql.statements(sql.MIGRATIONS[number], self.types):
                    cur.execute(statement)
                cur.execute(
                    "UPDATE reflow_meta SET value = "
                    f"{self.placeholder} WHERE key = 'schema_version'",
                    (str(number + 1),),
                )

    def _lock_schema(self, cur: Any) -> None:
        """Keep two processes from migrating at once (the backend says how)."""

    def _has_table(self, cur: Any, name: str) -> bool:
        raise NotImplementedError

    def _check_empty(self, cur: Any) -> None:
        """A database without reflow's table must hold nothing else reflow would overwrite."""

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield cur
                self._conn.commit()
                self._committed()
            except BaseException as exc:
                self._conn.rollback()
                if any(c.__name__ == "IntegrityError" for c in type(exc).__mro__):
                    raise StoreConflict(f"{self}: the write was refused: {exc}") from exc
                raise
            finally:
                cur.close()

    def _committed(self) -> None:
        """A transaction committed (under the lock): the backend may have work to follow."""

    # -- the Store protocol -------------------------------------------------------------------

    def write(
        self,
        flow_runs: Iterable[FlowRunRecord] = (),
        task_runs: Iterable[TaskRunRecord] = (),
        states: Iterable[StateRecord] = (),
        task_rows: Iterable[tuple[Any, ...]] = (),
        logs: Iterable[LogRecord] = (),
        *,
        fences: Mapping[str, Fence] | None = None,
    ) -> dict[str, FencedOff]:
        """Save the records in one transaction (runs are upserted by id, states and logs
        appended); `task_rows` are task runs already as rows (`sql.TASK_COLUMNS`), the
        writer's path. Results past `inline_limit` bytes go to files first.

        `fences` maps flow run ids to the fence of their root run (`reflow.store.fencing`):
        the rows of a run whose root is held under another epoch now are left out. Returns
        those roots, as found (empty: everything was written)."""
        p = self.placeholder
        flows = [sql.flow_row(r) for r in flow_runs]
        tasks = [sql.task_row(r) for r in task_runs]
        tasks.extend(task_rows)
        changes = [sql.state_row(r) for r in states]
        lines = [sql.log_row(r) for r in logs]
        if self.files is not None:
            flows = [self._outline(row, 12, 16) for row in flows]
            tasks = [self._outline(row, 10) for row in tasks]
        with self._transaction() as cur:
            lost = self._fence(cur, fences) if fences else {}
            if lost and fences:
                gone = {run_id for run_id, (root, _) in fences.items() if root in lost}
                flows = [r for r in flows if r[0] not in gone]
                tasks = [r for r in tasks if r[1] not in gone]
                changes = [r for r in changes if r[0] not in gone]
                lines = [r for r in lines if r[0] not in gone]
            if flows:
                cur.executemany(sql.upsert_flow_run(p), flows)
            if tasks:
                self._insert_many(cur, sql.upsert_task_run, tasks)
            if changes:
                cur.executemany(sql.insert_state(p), changes)
            if lines:
                cur.executemany(sql.insert_log(p), lines)
        return lost

    files: ResultFiles | None = None
    """Where results past `files.inline_limit` bytes are kept (None: all in the database)."""

    def _outline(self, row: tuple[Any, ...], *at: int) -> tuple[Any, ...]:
        """The row with each large result (its encoding at `at`, blob after) in a file."""
        files = self.files
        assert files is not None
        limit = files.inline_limit
        for i in at:  # a loop, not any(<generator>): this runs for every row written
            blob = row[i + 1]
            if blob is not None and len(blob) > limit:
                break
        else:
            return row
        changed = list(row)
        for i in at:
            blob = row[i + 1]
            if blob is not None and len(blob) > limit:
                changed[i], changed[i + 1] = files.put(row[i], blob)
        return tuple(changed)

    def _inline(self, encoded: Encoded | None) -> Encoded | None:
        """A result read from a row, loaded from its file when it was kept in one."""
        if encoded is None or not encoded.encoding.startswith(PREFIX):
            return encoded
        if self.files is None:
            raise StoreError(
                f"{self} holds a result kept in a file, but has no results folder: open it "
                "with results_dir= naming the folder those files are in"
            )
        return self.files.load(encoded.encoding, encoded.data)

    def _flow(self, row: Any) -> FlowRunRecord:
        record = sql.flow_record(row)
        record.result, record.call = self._inline(record.result), self._inline(record.call)
        return record

    def _task(self, row: Any) -> TaskRunRecord:
        record = sql.task_record(row)
        record.result = self._inline(record.result)
        return record

    rows_per_statement = 1
    """Rows one INSERT carries (SQLite: many, so a batch is one step of the engine, not a
    step and a GIL round trip per row; PostgreSQL: psycopg pipelines `executemany`)."""

    def _insert_many(
        self, cur: Any, statement: Callable[[str, int], str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert (or upsert) `rows`, `rows_per_statement` at a time."""
        size = self.rows_per_statement
        if size == 1:
            cur.executemany(statement(self.placeholder, 1), rows)
            return
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            cur.execute(statement(self.placeholder, len(chunk)), [v for r in chunk for v in r])

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._transaction() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())

    def flow_run(self, run_id: str) -> FlowRunRecord | None:
        rows = self._query(
            f"SELECT {sql.FLOW_COLUMNS} FROM reflow_flow_runs WHERE id = {self.placeholder}",
            (run_id,),
        )
        return self._flow(rows[0]) if rows else None

    def flow_runs(
        self, *, state_type: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[FlowRunRecord]:
        p = self.placeholder
        where, args = [], []
        if state_type is not None:
            where.append(f"state_type = {p}")
            args.append(state_type)
        if name is not None:
            where.append(f"name = {p}")
            args.append(name)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._query(
            f"SELECT {sql.FLOW_COLUMNS} FROM reflow_flow_runs {clause}"
            f"ORDER BY created DESC, id LIMIT {p}",
            (*args, int(limit)),
        )
        return [self._flow(r) for r in rows]

    def flow_run_by_key(self, run_key: str) -> FlowRunRecord | None:
        rows = self._query(
            f"SELECT {sql.FLOW_COLUMNS} FROM reflow_flow_runs WHERE run_key = {self.placeholder}",
            (run_key,),
        )
        return self._flow(rows[0]) if rows else None

    def task_runs(self, flow_run_id: str) -> list[TaskRunRecord]:
        rows = self._query(
            f"SELECT {sql.TASK_COLUMNS} FROM reflow_task_runs "
            f"WHERE flow_run_id = {self.placeholder} ORDER BY created, call_key",
            (flow_run_id,),
        )
        return [self._task(r) for r in rows]

    def completed_task_run(self, flow_run_id: str, key: str) -> TaskRunRecord | None:
        p = self.placeholder
        rows = self._query(
            f"SELECT {sql.TASK_COLUMNS} FROM reflow_task_runs WHERE flow_run_id = {p} "
            f"AND call_key = {p} AND state_type = 'COMPLETED'",
            (flow_run_id, key),
        )
        return self._task(rows[0]) if rows else None

    def states(self, run_id: str) -> list[StateRecord]:
        """A run's state changes in order: a flow run's rows, or a task run's own list."""
        rows = self._query(
            f"SELECT {sql.STATE_COLUMNS} FROM reflow_states WHERE run_id = {self.placeholder} "
            "ORDER BY seq",
            (run_id,),
        )
        if rows:
            return [sql.state_record(r) for r in rows]
        found = self._query(
            f"SELECT {sql.TASK_COLUMNS} FROM reflow_task_runs WHERE id = {self.placeholder}",
            (run_id,),
        )
        return sql.task_record(found[0]).states if found else []

    def logs(
        self, flow_run_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[LogRecord]:
        p = self.placeholder
        statement = (
            f"SELECT {sql.LOG_COLUMNS} FROM reflow_logs WHERE flow_run_id = {p} AND seq > {p} "
            "ORDER BY seq"
        )
        args: tuple[Any, ...] = (flow_run_id, int(after))
        if limit is not None:
            statement, args = f"{statement} LIMIT {p}", (*args, int(limit))
        rows = self._query(statement, args)
        return [sql.log_record(r) for r in rows]

    def cache_get(self, key: str) -> tuple[str, float, float | None, Encoded] | None:
        rows = self._query(
            "SELECT task_name, created, expires, result_encoding, result FROM reflow_cache "
            f"WHERE key = {self.placeholder}",
            (key,),
        )
        if not rows:
            return None
        name, created, expires, encoding, blob = rows[0]
        value = self._inline(Encoded(encoding, bytes(blob)))
        assert value is not None
        return name, created, expires, value

    def cache_put(
        self, key: str, task_name: str, created: float, expires: float | None, value: Encoded
    ) -> None:
        row: tuple[Any, ...] = (key, task_name, created, expires, value.encoding, value.data)
        if self.files is not None:
            row = self._outline(row, 4)
        with self._transaction() as cur:
            cur.execute(sql.upsert_cache(self.placeholder), row)

    def cache_size(self) -> int:
        """How many entries the task cache holds."""
        return int(self._query("SELECT COUNT(*) FROM reflow_cache")[0][0])

    def cache_clear(self, task_name: str | None = None) -> int:
        with self._transaction() as cur:
            if task_name is None:
                cur.execute("DELETE FROM reflow_cache")
            else:
                cur.execute(
                    f"DELETE FROM reflow_cache WHERE task_name = {self.placeholder}", (task_name,)
                )
            return int(cur.rowcount)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["SQLStore", "Store", "StoreConflict", "StoreError"]
