"""The executor of a flow that did not choose one: `REFLOW_EXECUTOR`, read at each flow run.

A setting, not code, promotes a flow to a cluster: `REFLOW_EXECUTOR=dask://host:port` runs
every flow without `executor=` on the Dask scheduler at host:port, unchanged. Unset (or
`thread`), each flow run gets a `ThreadExecutor` of its own, as always; any other value names
one executor that the flow runs of this process share (their starts are counted, so a
cluster's client is opened by the first and closed by the last that runs at once).
"""

from __future__ import annotations

import os

from reflow.executors.base import Executor
from reflow.executors.thread import ThreadExecutor

VARIABLE = "REFLOW_EXECUTOR"

_shared: dict[str, Executor] = {}


def default_executor() -> Executor:
    """The executor `REFLOW_EXECUTOR` names; ValueError naming the variable for a bad value."""
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw or raw == "thread":
        return ThreadExecutor()
    executor = _shared.get(raw)
    if executor is None:
        executor = _shared.setdefault(raw, parse(raw))
    return executor


def parse(value: str) -> Executor:
    """The executor a `REFLOW_EXECUTOR` value names (a new one)."""
    from reflow.executors.dask import DaskExecutor
    from reflow.executors.inline import InlineExecutor
    from reflow.executors.process import ProcessExecutor

    if value == "thread":
        return ThreadExecutor()
    if value == "inline":
        return InlineExecutor()
    if value == "process":
        return ProcessExecutor()
    if value == "dask":
        return DaskExecutor()
    scheme, found, where = value.partition("://")
    if found and scheme == "dask":
        host, colon, port = where.rpartition(":")
        if colon and host and port.isdigit() and "/" not in where:
            return DaskExecutor(address=f"tcp://{host}:{port}")
    raise ValueError(
        f"the environment variable {VARIABLE} must be thread, inline, process, dask (a "
        f"LocalCluster per flow run) or dask://HOST:PORT (the Dask scheduler there), got {value!r}"
    )
