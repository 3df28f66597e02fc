"""The atoms layer: TaskFlow's model on reflow's engine. Atoms that can be undone, data passed
by name, flow patterns, and retry controllers that decide for a whole scope whether to retry
it, revert it, or revert everything. `run(flow, store={...})` runs one."""

from reflow.atoms.atom import Atom, FunctorTask, MapFunctorTask, ReduceFunctorTask, Task, as_atom
from reflow.atoms.compile import FlowError
from reflow.atoms.engine import WrappedFailure, run
from reflow.atoms.failure import Failure, RemoteFailure
from reflow.atoms.patterns import GraphFlow, LinearFlow, Pattern, UnorderedFlow
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
    "run",
]
