"""The durability layer: runs kept outside the process, to be looked at and resumed.

The `Store` protocol, with `SQLiteStore` (embedded, WAL) and `PostgresStore` (psycopg 3) over
one versioned schema, keeps flow runs (which ones: `persistence.persistence`) and atoms runs
(`runs=`): their states, task runs and atoms, every attempt's error, results,
logs, retry controllers' histories, and the task cache. A writer thread records a run's changes
in batches (`writer.py`); results are JSON or HMAC-signed cloudpickle (`results.py`), large ones
in files beside the database. `reflow.resume` continues a run in any process, one process at a
time (`claims.py`: `RunHeld`), and a process whose run was taken over from it writes none of it
any more (`fencing.py`: `RunTakenOver`). `mark_crashed` finds runs whose heartbeat stopped;
workers take queued runs (`submit_run`, `run_worker`); runs are cancelled across processes,
served on schedules, and pruned.
"""

from reflow.store.base import SQLStore, Store, StoreConflict, StoreError
from reflow.store.claims import RunHeld
from reflow.store.fencing import RunTakenOver
from reflow.store.persistence import mark_crashed, open_store
from reflow.store.postgres import PostgresStore
from reflow.store.records import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from reflow.store.results import (
    Encoded,
    ResultCodec,
    UntrustedResultError,
    load_or_create_key,
    reflow_home,
)
from reflow.store.sqlite import SQLiteStore
from reflow.store.worker import run_worker, submit_run

__all__ = [
    "Encoded",
    "FlowRunRecord",
    "LogRecord",
    "PostgresStore",
    "SQLStore",
    "SQLiteStore",
    "StateRecord",
    "Store",
    "StoreConflict",
    "StoreError",
    "TaskRunRecord",
    "ResultCodec",
    "RunHeld",
    "RunTakenOver",
    "UntrustedResultError",
    "load_or_create_key",
    "mark_crashed",
    "open_store",
    "reflow_home",
    "run_worker",
    "submit_run",
]
