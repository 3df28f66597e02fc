"""The atoms layer: TaskFlow's model on reflow's engine. Atoms that can be undone, data passed
by name, flow patterns, and retry controllers that decide for a whole scope whether to retry
it, revert it, or revert everything. `run(flow, store={...})` runs one; with `runs=` it is
kept in a store, and `resume(run_id, flow)` continues it in another process."""

from typing import Any

from reflow.atoms import persistence as _persistence
from reflow.atoms.atom import Atom, FunctorTask, MapFunctorTask, ReduceFunctorTask, Task, as_atom
from reflow.atoms.compile import FlowError
from reflow.atoms.engine import WrappedFailure
from reflow.atoms.failure import Failure, RemoteFailure
from reflow.atoms.patterns import GraphFlow, LinearFlow, Pattern, UnorderedFlow
from reflow.atoms.restore import resume
from reflow.atoms.retry import (
    AlwaysRevert,
    AlwaysRevertAll,
    Decision,
    ForEach,
    History,
    ParameterizedForEach,
    Retry,
    Times,
)
from reflow.atoms.runs import run


def _store_keeper(runs: Any) -> _persistence.Keeper | None:
    """The durability layer, loaded the first time a run asks to be kept (`runs=`): a run in
    memory never loads the store, and the atoms modules never import it."""
    from reflow.store.atoms import keeper

    return keeper(runs)


_persistence.factory = _store_keeper

__all__ = [
    "AlwaysRevert",
    "AlwaysRevertAll",
    "Atom",
    "Decision",
    "Failure",
    "FlowError",
    "ForEach",
    "FunctorTask",
    "GraphFlow",
    "History",
    "LinearFlow",
    "MapFunctorTask",
    "ParameterizedForEach",
    "Pattern",
    "ReduceFunctorTask",
    "RemoteFailure",
    "Retry",
    "Task",
    "Times",
    "UnorderedFlow",
    "WrappedFailure",
    "as_atom",
    "resume",
    "run",
]
