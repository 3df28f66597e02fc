"""Stop conditions: small predicates over `AttemptState` composed with `|`, `&` and `~`.

A condition answers "stop now?" after a failed attempt. `~ExceptionMatches(E)` reads "stop on
anything that is not E", which is how "retry only E" is written.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from reflow.retry.durations import to_seconds
from reflow.retry.state import AttemptState


class Condition:
    """Base class of stop conditions; subclasses implement `__call__`."""

    __slots__ = ()

    def __call__(self, state: AttemptState) -> bool:
        raise NotImplementedError

    def __or__(self, other: Condition | Callable[[AttemptState], bool]) -> Condition:
        return AnyOf(self, as_condition(other, "|"))

    def __ror__(self, other: Callable[[AttemptState], bool]) -> Condition:
        return AnyOf(as_condition(other, "|"), self)

    def __and__(self, other: Condition | Callable[[AttemptState], bool]) -> Condition:
        return AllOf(self, as_condition(other, "&"))

    def __rand__(self, other: Callable[[AttemptState], bool]) -> Condition:
        return AllOf(as_condition(other, "&"), self)

    def __invert__(self) -> Condition:
        return Not(self)

    def children(self) -> tuple[Condition, ...]:
        """The conditions this one is made of (none for a leaf)."""
        return ()

    def walk(self) -> Iterator[Condition]:
        """This condition and every condition inside it."""
        yield self
        for child in self.children():
            yield from child.walk()


class AttemptsExhausted(Condition):
    """Stop once `attempts` attempts have been made (the call runs at most that many times)."""

    __slots__ = ("attempts",)

    def __init__(self, attempts: int) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"attempts must be an int, got {type(attempts).__name__}")
        if attempts < 1:
            raise ValueError(f"attempts must be 1 or more (1 means no retry), got {attempts}")
        self.attempts = attempts

    def __call__(self, state: AttemptState) -> bool:
        return state.attempt >= self.attempts

    def __repr__(self) -> str:
        return f"AttemptsExhausted({self.attempts})"


ExceptionTypes = type[Exception] | tuple[type[Exception], ...]


def check_exception_types(value: object, argument: str) -> tuple[type[Exception], ...]:
    """Return `value` as a tuple of Exception subclasses, or raise naming `argument`."""
    types = value if isinstance(value, tuple) else (value,)
    if not types:
        raise ValueError(f"{argument} needs at least one exception type")
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{argument} takes exception classes, got {item!r}")
        if not issubclass(item, Exception):
            raise TypeError(
                f"{argument} got {item.__name__}, a BaseException that is not an Exception; "
                "reflow never retries those (KeyboardInterrupt, SystemExit, CancelledError "
                "always pass straight through)"
            )
    return types


class ExceptionMatches(Condition):
    """True when the attempt raised one of `types`, or an exception `predicate(exc)` accepts."""

    __slots__ = ("_match",)

    def __init__(self, match: ExceptionTypes | Callable[[Exception], bool]) -> None:
        if isinstance(match, type | tuple):
            types = check_exception_types(match, "ExceptionMatches")
            self._match: ExceptionTypes | Callable[[Exception], bool] = (
                types[0] if len(types) == 1 else types
            )
        elif callable(match):
            self._match = match
        else:
            raise TypeError(
                "ExceptionMatches takes exception classes or a predicate (exception) -> bool, "
                f"got {match!r}"
            )

    def __call__(self, state: AttemptState) -> bool:
        exc = state.exception
        if exc is None:
            return False
        match = self._match
        if isinstance(match, type | tuple):
            return isinstance(exc, match)
        return bool(match(exc))  # type: ignore[arg-type]  # only Exceptions get here

    def __repr__(self) -> str:
        match = self._match
        if isinstance(match, tuple):
            shown = "(" + ", ".join(t.__name__ for t in match) + ")"
        else:
            shown = getattr(match, "__name__", repr(match))
        return f"ExceptionMatches({shown})"


class ResultMatches(Condition):
    """True when the attempt returned a value `predicate(value)` accepts.

    Its presence in a policy makes returned values go through the condition too: the call stops
    on a value when the condition says so and retries otherwise (polling), so
    `AttemptsExhausted(5) | ResultMatches(lambda r: r.ready)` polls until ready.
    """

    __slots__ = ("predicate",)

    def __init__(self, predicate: Callable[[Any], bool]) -> None:
        if not callable(predicate):
            raise TypeError(f"ResultMatches takes a predicate (result) -> bool, got {predicate!r}")
        self.predicate = predicate

    def __call__(self, state: AttemptState) -> bool:
        return state.exception is None and bool(self.predicate(state.result))

    def __repr__(self) -> str:
        return f"ResultMatches({getattr(self.predicate, '__name__', self.predicate)!r})"


class TimeElapsed(Condition):
    """True once `seconds` (a number or `timedelta`) have passed since the call began."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float | Any) -> None:
        self.seconds = to_seconds(seconds, "TimeElapsed", allow_zero=False)

    def __call__(self, state: AttemptState) -> bool:
        return state.elapsed >= self.seconds

    def __repr__(self) -> str:
        return f"TimeElapsed({self.seconds:g})"


class NoException(Condition):
    """True when the attempt raised nothing."""

    __slots__ = ()

    def __call__(self, state: AttemptState) -> bool:
        return state.exception is None

    def __repr__(self) -> str:
        return "NoException()"


class Not(Condition):
    """The negation of a condition; `~~c` gives back `c` itself."""

    __slots__ = ("inner",)

    def __init__(self, inner: Condition) -> None:
        self.inner = inner

    def __call__(self, state: AttemptState) -> bool:
        return not self.inner(state)

    def __invert__(self) -> Condition:
        return self.inner

    def children(self) -> tuple[Condition, ...]:
        return (self.inner,)

    def __repr__(self) -> str:
        return f"~{self.inner!r}"


class _Combined(Condition):
    __slots__ = ("parts",)
    _symbol = ""

    def __init__(self, *parts: Condition) -> None:
        flat: list[Condition] = []
        for part in parts:
            same = isinstance(part, _Combined) and type(part) is type(self)
            flat.extend(part.parts if same else (part,))  # type: ignore[attr-defined]
        self.parts: tuple[Condition, ...] = tuple(flat)

    def children(self) -> tuple[Condition, ...]:
        return self.parts

    def __repr__(self) -> str:
        return "(" + f" {self._symbol} ".join(map(repr, self.parts)) + ")"


class AnyOf(_Combined):
    """True when any part is true (`a | b`)."""

    __slots__ = ()
    _symbol = "|"

    def __call__(self, state: AttemptState) -> bool:
        return any(part(state) for part in self.parts)


class AllOf(_Combined):
    """True when every part is true (`a & b`)."""

    __slots__ = ()
    _symbol = "&"

    def __call__(self, state: AttemptState) -> bool:
        return all(part(state) for part in self.parts)


class _Predicate(Condition):
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[AttemptState], bool]) -> None:
        self.fn = fn

    def __call__(self, state: AttemptState) -> bool:
        return bool(self.fn(state))

    def __repr__(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


def as_condition(value: object, argument: str) -> Condition:
    """Accept a `Condition` or a plain callable `(AttemptState) -> bool`."""
    if isinstance(value, Condition):
        return value
    if callable(value) and not inspect.iscoroutinefunction(value):
        return _Predicate(value)
    raise TypeError(
        f"{argument} takes a stop condition such as AttemptsExhausted(3) or a plain function "
        f"(AttemptState) -> bool, got {value!r}"
    )
