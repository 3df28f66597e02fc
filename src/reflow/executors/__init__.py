"""Executors: where a flow's task runs execute (`executor=` on `@flow`).

`ThreadExecutor` is the default. `InlineExecutor` runs everything in the calling thread,
`ProcessExecutor` ships attempts to worker processes, `DaskExecutor` to a Dask cluster (the
`reflow[dask]` extra, imported when it starts). Async tasks run on the flow's event loop. Any
object following the `Executor` protocol plugs in; `default_executor()` is the one a flow
without `executor=` gets (`REFLOW_EXECUTOR`).
"""

from reflow.executors.base import (
    ChecksTasks,
    Executor,
    KeepsResults,
    SerializationError,
    SubmitsMany,
    check_executor,
)
from reflow.executors.dask import DaskExecutor
from reflow.executors.default import default_executor
from reflow.executors.inline import InlineExecutor
from reflow.executors.process import ProcessExecutor, RemoteError
from reflow.executors.thread import ThreadExecutor

__all__ = [
    "ChecksTasks",
    "DaskExecutor",
    "Executor",
    "InlineExecutor",
    "KeepsResults",
    "ProcessExecutor",
    "RemoteError",
    "SerializationError",
    "SubmitsMany",
    "ThreadExecutor",
    "check_executor",
    "default_executor",
]
