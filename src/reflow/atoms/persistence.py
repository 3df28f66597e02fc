"""The seam between the atoms engine and the durability layer: how an atoms run is kept in a
store, and read back to be resumed.

The atoms layer sits below the store and never imports it. `keeper_for(runs)` turns
`run(..., runs=...)` into a `Keeper` through `factory`; `reflow.atoms` sets `factory` to a
function that loads `reflow.store.atoms` the first time a run asks to be kept, so a run in
memory (the default) loads nothing of the store. Tests may set `factory` to a keeper of their
own.

What crosses the seam is plain data: names, state names, decoded values and `Failure`s. The
store decodes what it read (checking pickles' signatures) before the engine sees it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reflow.atoms.failure import Failure
from reflow.atoms.retry import History

Try = tuple[Any, dict[str, Failure]]
"""One try of a controller's scope: the controller's value, and the failures by atom name."""


@dataclass(frozen=True, slots=True)
class RecordedAtom:
    """One atom (or retry controller) of a kept run, as recorded."""

    name: str
    states: tuple[str, ...]
    """Its state names, oldest first."""
    result: Any = None
    """What its `execute` returned (when `has_result`): its provided values derive from it."""
    has_result: bool = False
    failure: Failure | None = None
    """The failure of its last execution, when it failed."""
    order: int | None = None
    """When it completed (or failed) among the run's atoms: reverts go newest first."""


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A kept atoms run read back from its store."""

    run_id: str
    name: str
    state: str
    """The run's state: Running (or Crashed) when it did not end, else Completed or Failed."""
    atoms: tuple[str, ...]
    """The names of its atoms and controllers, in the order the flow was compiled."""
    retries: frozenset[str]
    """Which of them are retry controllers."""
    store: dict[str, Any]
    """The initial store."""
    defer_reverts: bool
    records: dict[str, RecordedAtom] = field(default_factory=dict)
    histories: dict[str, list[Try]] = field(default_factory=dict)
    """Each controller's history: its tries, oldest first."""
    result: dict[str, Any] | None = None
    """The store a completed run returned."""
    errors: tuple[Failure, ...] = ()
    """The failures a failed run raised."""


class Keeper(Protocol):
    """Keeps atoms runs in one store: what the engine tells it, and what it reads back."""

    def begin(
        self,
        run_id: str,
        name: str,
        atoms: Sequence[str],
        retries: Collection[str],
        store: Mapping[str, Any],
        defer_reverts: bool,
        run_key: str | None = None,
    ) -> str | None:
        """A new run starts: record it (before its atoms' first state), then every atom state
        change of it the engine hands over (`changed`). Returns None; or, when
        another process began a run with `run_key` first, that run's id (and records nothing).
        """
        ...

    def changed(
        self, run_id: str, atom: str, state: Any, previous: Any, history: History | None
    ) -> None:
        """An atom (or controller: with a copy of its `history`) of the run `run_id` changed
        from `previous` to `state`: queue it for the store (written in batches, in another
        thread; this is on the engine's path, so it only queues)."""
        ...

    def find(self, run_key: str) -> str | None:
        """The id of the atoms run made with `run_key`, if there is one."""
        ...

    def load(self, run_id: str) -> RecordedRun:
        """The run as recorded; LookupError when the store has no such run."""
        ...

    def resumed(self, run_id: str) -> None:
        """A loaded run goes on in this process: record its state changes again."""
        ...

    def end(
        self,
        run_id: str,
        result: dict[str, Any] | None,
        errors: Sequence[BaseException],
        histories: Mapping[str, History],
    ) -> None:
        """The run ended (with `result`, or failed with `errors`): write everything, its final
        state last, before returning."""
        ...

    def interrupted(self, run_id: str) -> None:
        """The run stopped without ending (KeyboardInterrupt, an engine error): write what it
        did, and leave it to be resumed."""
        ...


factory: Callable[[Any], Keeper | None] | None = None
"""Set by `reflow.atoms`: `runs -> Keeper` (None: `REFLOW_STORE=memory` keeps it in memory)."""


def keeper_for(runs: Any) -> Keeper | None:
    """The keeper `run(..., runs=...)` asks for: None for a run in memory."""
    if runs is None or runs is False:
        return None
    if not (runs is True or isinstance(runs, str | os.PathLike) or hasattr(runs, "write_atoms")):
        raise TypeError(
            "runs= takes True (the default store), a path or URL of a store "
            f'("runs.db", "postgresql://...") or a reflow.store Store, got {runs!r}'
        )
    if factory is None:
        raise RuntimeError("reflow.atoms.persistence.factory is not set: import reflow.atoms")
    return factory(runs)
