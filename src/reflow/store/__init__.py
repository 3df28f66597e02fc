"""The durability layer (in progress): where runs are kept outside the process.

So far: the `Store` protocol with `SQLiteStore` (embedded, WAL) and `PostgresStore` (psycopg 3)
over one versioned schema; records of flow runs, task runs and state changes; and
`reflow.store.results`, which turns results into bytes (JSON when a value round-trips, else
cloudpickle signed with HMAC-SHA256) and back, refusing any pickle it did not sign. Flows do not
write to a store yet.
"""

from reflow.store.base import SQLStore, Store, StoreConflict, StoreError
from reflow.store.claims import RunHeld
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
    "UntrustedResultError",
    "load_or_create_key",
    "mark_crashed",
    "open_store",
    "reflow_home",
    "run_worker",
    "submit_run",
]
