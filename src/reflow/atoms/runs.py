"""`run(flow, ...)`: one atoms run, in memory or kept in a store (`runs=`), named (`run_id=`)
or made at most once per key (`run_key=`). The engine that runs it is in engine.py; resuming a
kept run is in restore.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reflow.atoms.atom import Atom, check_kept
from reflow.atoms.compile import compile_flow
from reflow.atoms.engine import _Engine
from reflow.atoms.patterns import Pattern
from reflow.atoms.persistence import keeper_for
from reflow.atoms.restore import resume
from reflow.executors.base import Executor, check_executor
from reflow.executors.inline import InlineExecutor


def run(
    flow: Pattern | Atom,
    store: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    defer_reverts: bool = False,
    *,
    runs: Any = None,
    run_id: str | None = None,
    run_key: str | None = None,
) -> dict[str, Any]:
    """Run an atoms flow; return the store: the initial values and every value provided.

    On failure the flow's reverts run first, then the failure is raised (a `WrappedFailure`
    when a revert failed too). `executor` defaults to an `InlineExecutor` (atoms one at a
    time, like TaskFlow's serial engine); a `ThreadExecutor` runs independent atoms at once.
    With `defer_reverts`, a scope whose controller says REVERT and that has no enclosing
    controller reverts the whole flow, not only itself.

    `runs` keeps the run in a store, to be resumed (`reflow.atoms.resume`) if its process
    dies: True for the default store, a path or URL (`"runs.db"`, `"postgresql://..."`), or
    a `reflow.store` Store. `run_id` names the kept run (default: a new id).

    `run_key` makes the run idempotent: a later `run` with the same key (in any process)
    gives the earlier run as it ended, its store or its failure, instead of running again,
    or resumes it (`resume`) when it never finished. The key is looked up first: the
    earlier run keeps its own id and initial store.
    """
    initial = dict(store or {})
    nodes = compile_flow(flow, initial)
    chosen = InlineExecutor() if executor is None else check_executor(executor)
    for option, value in (("run_id", run_id), ("run_key", run_key)):
        if value is not None and (runs is None or runs is False):
            raise ValueError(
                f"{option}= names a kept run: give runs= too (runs=True keeps it in the "
                "default store)"
            )
    if run_key is not None and (not isinstance(run_key, str) or not run_key):
        raise TypeError(f"run_key is a non-empty str, got {run_key!r}")
    keeper = keeper_for(runs)
    if keeper is not None:
        check_kept(node.atom for node in nodes)
    if run_key is not None and keeper is None:
        raise ValueError(
            "run_key= finds the earlier run in a store, and runs= gives none (REFLOW_STORE is "
            "'memory'?): pass the store to keep runs in, runs='runs.db' for instance"
        )
    earlier = keeper.find(run_key) if keeper is not None and run_key is not None else None
    if earlier is None:
        engine = _Engine(nodes, initial, chosen, defer_reverts, flow.name, run_id, keeper)
        earlier = engine.begin(run_key)
        if earlier is None:
            return engine.run()
    return _earlier(earlier, flow, runs, executor)


def _earlier(
    run_id: str, flow: Pattern | Atom, runs: Any, executor: Executor | None
) -> dict[str, Any]:
    """The run made with a key before: as it ended, or resumed to its end."""
    return resume(run_id, flow, runs=runs, executor=executor)


__all__ = ["run"]
