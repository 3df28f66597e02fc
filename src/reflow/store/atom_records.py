"""What a store keeps of an atoms run, beside its flow run record: the run's own data, each
atom's state, result and failure, and each retry controller's history.

An atoms run is also a `FlowRunRecord` (its name is the pattern's, its states are recorded with
`run_kind="atoms"`), so run listings show it with the flow runs; an `AtomRunRecord` with the same
id marks it as an atoms run and holds what resuming it needs. Failures are kept as text
(`Failure.to_dict()`: type names, message, traceback), never as pickles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reflow.store.records import StateRecord
from reflow.store.results import Encoded


@dataclass(slots=True)
class AtomRunRecord:
    """An atoms run's own data: how to check and rebuild it when it is resumed."""

    id: str
    """The id of its flow run record."""
    atoms: list[str]
    """Its atoms' and controllers' names, in the order the flow was compiled."""
    retries: list[str] = field(default_factory=list)
    """Which of them are retry controllers."""
    store: Encoded | None = None
    """The initial store (None: it could not be encoded, and the run cannot be resumed)."""
    defer_reverts: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    """The failures a failed run raised (`Failure.to_dict()`), in order."""


@dataclass(slots=True)
class AtomRecord:
    """One atom (or retry controller) of an atoms run, as of its last recorded state."""

    run_id: str
    name: str
    position: int
    """Its place in the flow (the order `AtomRunRecord.atoms` lists it in)."""
    kind: str
    """"atom" or "retry"."""
    state: str
    state_type: str
    updated: float
    order: int | None = None
    """When its last execution ended (completed or failed) among the run's atoms: a resumed
    run puts provided values back, and reverts, in this order."""
    result: Encoded | None = None
    """What its `execute` returned (the values it provided derive from it)."""
    failure: dict[str, Any] | None = None
    """Its last execution's failure (`Failure.to_dict()`), when it failed."""
    states: list[StateRecord] = field(default_factory=list)
    """Every state change, oldest first, kept in its own row (one write per atom per batch)."""


@dataclass(frozen=True, slots=True)
class RetryTryRecord:
    """One try of a controller's scope: the value the controller provided, and the failures
    of the scope's atoms in that try, by name (`Failure.to_dict()`)."""

    value: Encoded | None
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class RetryHistoryRecord:
    """A retry controller's history in an atoms run: its tries, oldest first."""

    run_id: str
    controller: str
    tries: list[RetryTryRecord] = field(default_factory=list)
