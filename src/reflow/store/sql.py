"""The SQL both stores share: the schema and its migrations, the statements and row
conversions of flow runs, task runs, states, logs and the cache, and the store's errors
(`StoreError`, `StoreConflict`). Other tables' SQL is beside its queries (atom_sql.py,
operations.py, views.py, pruning.py).

The schema is versioned in a `reflow_meta` table. Opening a store (`SQLStore._migrate`)
applies the migrations it lacks, in order, inside a transaction; they only ever add. A
database with a newer version than this reflow knows, or one that is not a reflow database,
is refused with a clear error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from reflow.secrets import redact_text
from reflow.store.records import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from reflow.store.results import Encoded


class StoreError(RuntimeError):
    """The store cannot be used: not a reflow database, too new a schema, unreachable."""


class StoreConflict(StoreError):
    """A write clashed with what is stored (a run key or call key already taken); nothing
    of that write was kept."""


SCHEMA_VERSION = 5

# Each migration: a list of statements; `{blob}` and `{real}` are the dialect's types.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE reflow_flow_runs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT,
            parent_id TEXT,
            state TEXT NOT NULL,
            state_type TEXT NOT NULL,
            parameters TEXT NOT NULL,
            run_key TEXT UNIQUE,
            created {real} NOT NULL,
            updated {real} NOT NULL,
            heartbeat {real},
            worker TEXT,
            result_encoding TEXT,
            result {blob},
            error TEXT,
            flow_path TEXT,
            call_encoding TEXT,
            call {blob}
        )""",
        "CREATE INDEX reflow_flow_runs_state ON reflow_flow_runs (state_type, name)",
        """CREATE TABLE reflow_task_runs (
            id TEXT PRIMARY KEY,
            flow_run_id TEXT NOT NULL,
            call_key TEXT NOT NULL,
            task_name TEXT NOT NULL,
            state TEXT NOT NULL,
            state_type TEXT NOT NULL,
            upstream TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            created {real} NOT NULL,
            updated {real} NOT NULL,
            result_encoding TEXT,
            result {blob},
            error TEXT,
            states TEXT NOT NULL,
            UNIQUE (flow_run_id, call_key)
        )""",
        """CREATE TABLE reflow_states (
            seq {serial},
            run_id TEXT NOT NULL,
            run_kind TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            timestamp {real} NOT NULL,
            message TEXT NOT NULL,
            attempt INTEGER NOT NULL
        )""",
        "CREATE INDEX reflow_states_run ON reflow_states (run_id, seq)",
    ],
    [  # 2: failures of flow states, run logs, the task cache
        "ALTER TABLE reflow_states ADD COLUMN error TEXT",
        "ALTER TABLE reflow_states ADD COLUMN traceback TEXT",
        """CREATE TABLE reflow_logs (
            seq {serial},
            flow_run_id TEXT NOT NULL,
            task_run_id TEXT,
            timestamp {real} NOT NULL,
            level INTEGER NOT NULL,
            logger TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
        "CREATE INDEX reflow_logs_run ON reflow_logs (flow_run_id, seq)",
        """CREATE TABLE reflow_cache (
            key TEXT PRIMARY KEY,
            task_name TEXT NOT NULL,
            created {real} NOT NULL,
            expires {real},
            result_encoding TEXT NOT NULL,
            result {blob} NOT NULL
        )""",
    ],
    # 3 (operations): cancel requests read by a run's own process; schedules `reflow serve`
    # keeps with their next fire time. Two new tables, nothing else changed.
    [
        """CREATE TABLE reflow_cancel_requests (
            run_id TEXT PRIMARY KEY,
            requested {real} NOT NULL,
            requested_by TEXT NOT NULL
        )""",
        """CREATE TABLE reflow_schedules (
            name TEXT PRIMARY KEY,
            flow_name TEXT NOT NULL,
            flow_path TEXT NOT NULL,
            kind TEXT NOT NULL,
            expression TEXT NOT NULL,
            timezone TEXT NOT NULL,
            parameters TEXT NOT NULL,
            catchup INTEGER NOT NULL,
            next_run {real},
            last_run {real},
            last_run_id TEXT,
            server TEXT,
            heartbeat {real},
            created {real} NOT NULL,
            updated {real} NOT NULL
        )""",
    ],
    # 4: atoms runs (reflow.store.atoms): new tables only. An atoms run is also a row of
    # reflow_flow_runs (same id); these hold its atoms, their results and the controllers'
    # histories.
    [
        """CREATE TABLE reflow_atom_runs (
            run_id TEXT PRIMARY KEY,
            atoms TEXT NOT NULL,
            retries TEXT NOT NULL,
            store_encoding TEXT,
            store {blob},
            defer_reverts INTEGER NOT NULL,
            errors TEXT NOT NULL
        )""",
        """CREATE TABLE reflow_atoms (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            state_type TEXT NOT NULL,
            updated {real} NOT NULL,
            completed_order INTEGER,
            result_encoding TEXT,
            result {blob},
            failure TEXT,
            states TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        )""",
        """CREATE TABLE reflow_retry_histories (
            run_id TEXT NOT NULL,
            controller TEXT NOT NULL,
            try_index INTEGER NOT NULL,
            value_encoding TEXT,
            value {blob},
            failures TEXT NOT NULL,
            PRIMARY KEY (run_id, controller, try_index)
        )""",
    ],
    # 5: fencing (reflow.store.fencing): each take-over of a run moves its epoch on, and a
    # process writes a run's rows only under the epoch it holds the run by.
    ["ALTER TABLE reflow_flow_runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0"],
]

FLOW_COLUMNS = (
    "id, name, version, parent_id, state, state_type, parameters, run_key, created, updated, "
    "heartbeat, worker, result_encoding, result, error, flow_path, call_encoding, call, epoch"
)
TASK_COLUMNS = (
    "id, flow_run_id, call_key, task_name, state, state_type, upstream, attempts, created, "
    "updated, result_encoding, result, error, states"
)


def upsert_flow_run(p: str) -> str:
    values = ", ".join([p] * 19)
    updates = ", ".join(
        f"{c} = excluded.{c}"
        for c in (
            "state", "state_type", "parameters", "updated", "result_encoding", "result",
            "error", "version",
        )
    )  # fmt: skip
    # a record without a heartbeat (the writer's) keeps the one the heartbeat thread wrote;
    # the epoch is set when the row is made, then only by a take-over
    updates += ", " + ", ".join(
        f"{c} = COALESCE(excluded.{c}, reflow_flow_runs.{c})" for c in ("heartbeat", "worker")
    )
    return (
        f"INSERT INTO reflow_flow_runs ({FLOW_COLUMNS}) VALUES ({values}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


@functools.cache
def upsert_task_run(p: str, rows: int = 1) -> str:
    """Keyed by the call: a new run of a call (a retry, a resume) replaces the stored one."""
    values = ", ".join([f"({', '.join([p] * 14)})"] * rows)
    updates = ", ".join(
        f"{c} = excluded.{c}"
        for c in (
            "id", "task_name", "state", "state_type", "upstream", "attempts", "created",
            "updated", "result_encoding", "result", "error", "states",
        )
    )  # fmt: skip
    return (
        f"INSERT INTO reflow_task_runs ({TASK_COLUMNS}) VALUES {values} "
        f"ON CONFLICT (flow_run_id, call_key) DO UPDATE SET {updates}"
    )


STATE_COLUMNS = "run_id, run_kind, name, type, timestamp, message, attempt, error, traceback"
LOG_COLUMNS = "seq, flow_run_id, task_run_id, timestamp, level, logger, message"


def insert_state(p: str) -> str:
    return f"INSERT INTO reflow_states ({STATE_COLUMNS}) VALUES ({', '.join([p] * 9)})"


def insert_log(p: str) -> str:
    return (
        "INSERT INTO reflow_logs (flow_run_id, task_run_id, timestamp, level, logger, message) "
        f"VALUES ({', '.join([p] * 6)})"
    )


def upsert_cache(p: str) -> str:
    updates = ", ".join(
        f"{c} = excluded.{c}"
        for c in ("task_name", "created", "expires", "result_encoding", "result")
    )
    return (
        "INSERT INTO reflow_cache (key, task_name, created, expires, result_encoding, result) "
        f"VALUES ({', '.join([p] * 6)}) ON CONFLICT (key) DO UPDATE SET {updates}"
    )


def flow_row(r: FlowRunRecord) -> tuple[Any, ...]:
    encoding, blob = result_columns(r.result)
    call_encoding, call = result_columns(r.call)
    return (
        r.id, r.name, r.version, r.parent_id, r.state, r.state_type,
        json.dumps(r.parameters, default=_shown), r.run_key, r.created, r.updated, r.heartbeat,
        r.worker, encoding, blob, r.error, r.flow_path, call_encoding, call, r.epoch,
    )  # fmt: skip


def task_row(r: TaskRunRecord) -> tuple[Any, ...]:
    encoding, blob = result_columns(r.result)
    return (
        r.id, r.flow_run_id, r.key, r.task_name, r.state, r.state_type, json.dumps(r.upstream),
        r.attempts, r.created, r.updated, encoding, blob, r.error,
        json.dumps([_state_item(s) for s in r.states]),
    )  # fmt: skip


def _state_item(s: StateRecord) -> list[Any]:
    item = [s.name, s.type, s.timestamp, s.message, s.attempt]
    return item if s.error is None else [*item, s.error, s.traceback]


def states_json(states: Iterable[Any], attempts: Sequence[Any] = ()) -> str:
    """A task run's `State` objects as the JSON its row keeps: `[name, type, timestamp,
    message, attempt]` each, with `error` and `traceback` after them for a state with an
    exception, or an AwaitingRetry whose attempt (in `attempts`, the run's `AttemptRecord`s)
    failed with one: every failed attempt keeps its own."""
    items = []
    for s in states:
        exc = s.exception
        if exc is None and s.name == "AwaitingRetry" and 0 < s.attempt <= len(attempts):
            outcome = attempts[s.attempt - 1].state
            exc = outcome.exception if outcome is not None else None
        message = s.message
        timestamp = s.timestamp
        if exc is None and type(timestamp) is float and timestamp == timestamp:
            # The common state, written by hand (what json.dumps writes, faster: the writer
            # writes one per state of every task run): a name and a type need no escaping.
            text = _dumps(redact_text(message)) if message else '""'
            items.append(f'["{s.name}","{s.type._value_}",{timestamp!r},{text},{s.attempt:d}]')
            continue
        item = [s.name, s.type._value_, timestamp, redact_text(message), s.attempt]
        if exc is not None:
            item += failure_text(exc)
        items.append(json.dumps(item))
    return f"[{','.join(items)}]"


_dumps = json.JSONEncoder().encode


def failure_text(exc: BaseException) -> list[str]:
    """`[error, traceback]`: the exception as `module.Type: message`, and its traceback."""
    import traceback

    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    error = redact_text(f"{name}: {exc}")
    return [error, redact_text("".join(traceback.format_exception(exc)).rstrip())]


def result_columns(encoded: Encoded | None) -> tuple[str | None, bytes | None]:
    """The (encoding, blob) columns of a result."""
    return (None, None) if encoded is None else (encoded.encoding, encoded.data)


def state_row(r: StateRecord) -> tuple[Any, ...]:
    return (
        r.run_id, r.run_kind, r.name, r.type, r.timestamp, r.message, r.attempt, r.error,
        r.traceback,
    )  # fmt: skip


def log_row(r: LogRecord) -> tuple[Any, ...]:
    return (r.flow_run_id, r.task_run_id, r.timestamp, r.level, r.logger, r.message)


def log_record(row: Sequence[Any]) -> LogRecord:
    return LogRecord(*row)


def _shown(value: Any) -> str:
    """A parameter JSON cannot hold, as text: ISO 8601 for dates and times, else its repr."""
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else repr(value)


def _encoded(encoding: str | None, blob: Any) -> Encoded | None:
    return None if encoding is None else Encoded(encoding, bytes(blob))  # type: ignore[arg-type]


def flow_record(row: Sequence[Any]) -> FlowRunRecord:
    return FlowRunRecord(
        id=row[0], name=row[1], version=row[2], parent_id=row[3], state=row[4],
        state_type=row[5], parameters=json.loads(row[6]), run_key=row[7], created=row[8],
        updated=row[9], heartbeat=row[10], worker=row[11], result=_encoded(row[12], row[13]),
        error=row[14], flow_path=row[15], call=_encoded(row[16], row[17]), epoch=row[18],
    )  # fmt: skip


def task_record(row: Sequence[Any]) -> TaskRunRecord:
    return TaskRunRecord(
        id=row[0], flow_run_id=row[1], key=row[2], task_name=row[3], state=row[4],
        state_type=row[5], upstream=json.loads(row[6]), attempts=row[7], created=row[8],
        updated=row[9], result=_encoded(row[10], row[11]), error=row[12],
        states=[StateRecord(row[0], "task", *s) for s in json.loads(row[13])],
    )  # fmt: skip


def state_record(row: Sequence[Any]) -> StateRecord:
    return StateRecord(*row)


def statements(migration: Iterable[str], types: dict[str, str]) -> list[str]:
    return [s.format(**types) for s in migration]
