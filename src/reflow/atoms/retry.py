"""Retry controllers: what to do when an atom inside their scope fails.

A controller heads a flow pattern (`LinearFlow("f", retry=Times(3))`). It runs before the
atoms of its scope (its `execute(history)` may provide a value, ForEach's next element), and
when one of them fails its `on_failure(history)` returns a `Decision`:

- `RETRY`: revert the scope's completed atoms (newest first) and run the scope again;
- `REVERT`: revert the scope and let the enclosing controller decide (none: the flow fails);
- `REVERT_ALL`: revert everything and fail the flow.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from reflow.atoms.atom import Atom
from reflow.atoms.failure import Failure


class Decision(enum.Enum):
    """A controller's answer to a failure in its scope."""

    RETRY = "RETRY"
    REVERT = "REVERT"
    REVERT_ALL = "REVERT_ALL"


class History:
    """What happened in each try of a scope: the controller's value, and the failures by atom."""

    def __init__(self) -> None:
        self._tries: list[tuple[Any, dict[str, Failure]]] = []
        self.failure: Failure | None = None
        """The controller's own failure (its `execute` raised), if any."""

    def _begin(self, value: Any) -> None:
        self._tries.append((value, {}))

    def _record(self, name: str, failure: Failure) -> None:
        if not self._tries:
            self._tries.append((None, {}))
        self._tries[-1][1][name] = failure

    def _copy(self) -> History:
        """The history as it is now (what a kept run records; the engine goes on changing
        this one)."""
        copy = History()
        copy._tries = [(value, dict(failures)) for value, failures in self._tries]
        copy.failure = self.failure
        return copy

    def __len__(self) -> int:
        return len(self._tries)

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Failure]]]:
        return iter(self._tries)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Failure]]:
        return self._tries[index]

    def provided_iter(self) -> Iterator[Any]:
        """The controller's value of each try, oldest first."""
        return (value for value, _ in self._tries)

    def outcomes_iter(self, index: int | None = None) -> Iterator[tuple[str, Failure]]:
        """(atom name, Failure) pairs of every try, or of try `index` only."""
        tries = self._tries if index is None else [self._tries[index]]
        for _, failures in tries:
            yield from failures.items()

    def caused_by(
        self,
        exception_type: type[BaseException] | str,
        index: int | None = None,
        include_retry: bool = False,
    ) -> bool:
        """Whether a failure (of try `index`, or any) was an `exception_type`."""
        if include_retry and self.failure is not None and self.failure.check(exception_type):
            return True
        return any(f.check(exception_type) for _, f in self.outcomes_iter(index))

    def __repr__(self) -> str:
        return f"History({self._tries!r})"


class Retry(Atom):
    """A retry controller: subclass it and define `on_failure` (and, if it provides a value
    per try, `execute`). Its requirements come from the store like an atom's, after `history`.
    """

    def __init__(
        self,
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        requires: str | Iterable[str] | None = None,
        auto_extract: bool = True,
        rebind: Iterable[str] | Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, provides, requires, auto_extract, rebind)

    _given = frozenset({"history"})  # given by the engine, not taken from the store

    def execute(self, history: History, *args: Any, **kwargs: Any) -> Any:
        """The value this try of the scope provides (default: none)."""
        return None

    def revert(self, history: History, *args: Any, **kwargs: Any) -> Any:
        """Undo `execute` when the scope is reverted (default: nothing)."""
        return None

    def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
        raise NotImplementedError(f"retry controller {self.name} defines no on_failure()")

    def new_scope(self, tries: Iterable[tuple[Any, Mapping[str, Failure]]] = ()) -> FlowScope:
        """This controller deciding for one run of a `@flow(retry=...)`; `tries` is the
        history it had in an earlier process (a run resumed from a store)."""
        return FlowScope(self, tries)


class FlowScope:
    """A retry controller at work on one run of a decorated flow: it keeps that run's history,
    gives each try its value and turns failures into a decision (the flow layer asks)."""

    def __init__(
        self, controller: Retry, tries: Iterable[tuple[Any, Mapping[str, Failure]]] = ()
    ) -> None:
        self.controller = controller
        self.history = History()
        self.history._tries = [(value, dict(failures)) for value, failures in tries]

    def begin(self, parameters: Mapping[str, Any]) -> Any:
        """The value of the next try (the controller's `execute`). A try that never ended in
        a failure (the run paused, or its process died) is not counted: it is tried again,
        and its value asked for again."""
        tries = self.history._tries
        if tries and not tries[-1][1]:
            tries.pop()
        kwargs = self.controller.arguments(parameters)
        value = self.controller.execute(self.history, **kwargs)
        self.history._begin(value)
        return value

    def decide(
        self,
        error: BaseException,
        failures: Mapping[str, BaseException | None],
        parameters: Mapping[str, Any],
    ) -> str:
        """RETRY, REVERT or REVERT_ALL, from the failures of this try."""
        recorded = {name: exc for name, exc in failures.items() if exc is not None}
        for name, exc in (recorded or {"flow": error}).items():
            self.history._record(name, Failure(exc))
        kwargs = self.controller.arguments(parameters)
        decision = self.controller.on_failure(self.history, **kwargs)
        if not isinstance(decision, Decision):
            raise TypeError(
                f"retry controller {self.controller.name}: on_failure() must return a Decision "
                f"(RETRY, REVERT or REVERT_ALL), got {decision!r}"
            )
        return decision.value


class _Exhaustible(Retry):
    def __init__(self, revert_all: bool, **options: Any) -> None:
        self.revert_all = revert_all
        super().__init__(**options)

    def _exhausted(self) -> Decision:
        return Decision.REVERT_ALL if self.revert_all else Decision.REVERT


class Times(_Exhaustible):
    """Run the scope up to `attempts` times; its value is the try number (1, 2, ...)."""

    def __init__(
        self,
        attempts: int = 1,
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        requires: str | Iterable[str] | None = None,
        auto_extract: bool = True,
        rebind: Iterable[str] | Mapping[str, str] | None = None,
        revert_all: bool = False,
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"Times(attempts=...) takes an int >= 1, got {attempts!r}")
        self.attempts = attempts
        super().__init__(
            revert_all, name=name, provides=provides, requires=requires,
            auto_extract=auto_extract, rebind=rebind,
        )  # fmt: skip

    def execute(self, history: History, *args: Any, **kwargs: Any) -> int:
        return len(history) + 1

    def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
        return Decision.RETRY if len(history) < self.attempts else self._exhausted()


class ForEach(_Exhaustible):
    """Try the scope with each of `values` in turn (provided under `provides`) until one works."""

    def __init__(
        self,
        values: Iterable[Any],
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        requires: str | Iterable[str] | None = None,
        auto_extract: bool = True,
        rebind: Iterable[str] | Mapping[str, str] | None = None,
        revert_all: bool = False,
    ) -> None:
        self.values = list(values)
        if not self.values:
            raise ValueError("ForEach needs at least one value to try")
        super().__init__(
            revert_all, name=name, provides=provides, requires=requires,
            auto_extract=auto_extract, rebind=rebind,
        )  # fmt: skip

    def execute(self, history: History, *args: Any, **kwargs: Any) -> Any:
        return self.values[len(history)]

    def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
        return Decision.RETRY if len(history) < len(self.values) else self._exhausted()


class ParameterizedForEach(_Exhaustible):
    """ForEach over values taken from the store at run time (its `values` requirement)."""

    def __init__(
        self,
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        requires: str | Iterable[str] | None = None,
        auto_extract: bool = True,
        rebind: Iterable[str] | Mapping[str, str] | None = None,
        revert_all: bool = False,
    ) -> None:
        super().__init__(
            revert_all, name=name, provides=provides, requires=requires,
            auto_extract=auto_extract, rebind=rebind,
        )  # fmt: skip

    def execute(self, history: History, values: Iterable[Any]) -> Any:
        items = list(values)
        if len(history) >= len(items):
            raise ValueError(
                f"{self.name}: no value left to try ({len(items)} given, {len(history)} tried)"
            )
        return items[len(history)]

    def on_failure(self, history: History, values: Iterable[Any]) -> Decision:
        return Decision.RETRY if len(history) < len(list(values)) else self._exhausted()


class AlwaysRevert(Retry):
    """Never retry: revert the scope and let the enclosing controller decide."""

    def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
        return Decision.REVERT


class AlwaysRevertAll(Retry):
    """Never retry: revert everything and fail the flow."""

    def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
        return Decision.REVERT_ALL
