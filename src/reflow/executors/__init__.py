"""Executors: where a flow's task runs execute (`executor=` on `@flow`).

`ThreadExecutor` is the default. `InlineExecutor` runs everything in the calling thread,
`ProcessExecutor` ships attempts to worker processes. Async tasks always run on the flow's event
loop. Any object following the `Executor` protocol plugs in.
"""

from reflow.executors.base import Executor, SerializationError, check_executor
from reflow.executors.inline import InlineExecutor
from reflow.executors.process import ProcessExecutor, RemoteError
from reflow.executors.thread import ThreadExecutor

__all__ = [
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "RemoteError",
    "SerializationError",
    "ThreadExecutor",
    "check_executor",
]
