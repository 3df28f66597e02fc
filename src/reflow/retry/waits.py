"""Wait strategies: how long to sleep before the next attempt.

A wait is any callable `(AttemptState) -> seconds`; the classes here add jitter, caps and `+`.
Jitter is "full jitter" scaled by a factor `j` in [0, 1]: the wait is drawn uniformly from
`[w * (1 - j), w]`, so `j=1` spreads clients over `[0, w]` and no jitter ever exceeds `w`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from reflow.retry.durations import Duration, to_seconds
from reflow.retry.state import AttemptState

WaitLike = Duration | Sequence[Duration] | Callable[[AttemptState], Duration]


def _check_jitter(jitter: float) -> float:
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be a factor between 0 and 1, got {jitter!r}")
    return float(jitter)


def _jittered(seconds: float, jitter: float) -> float:
    if jitter and seconds:
        return seconds * (1.0 - jitter * random.random())
    return seconds


class Wait:
    """Base class of wait strategies; strategies add with `+`."""

    __slots__ = ()

    def __call__(self, state: AttemptState) -> float:
        raise NotImplementedError

    def __add__(self, other: WaitLike) -> Wait:
        return Sum(self, as_wait(other, "+"))

    def __radd__(self, other: WaitLike) -> Wait:
        return Sum(as_wait(other, "+"), self)


class Fixed(Wait):
    """The same wait before every retry."""

    __slots__ = ("jitter", "seconds")

    def __init__(self, seconds: Duration, jitter: float = 0.0) -> None:
        self.seconds = to_seconds(seconds, "wait")
        self.jitter = _check_jitter(jitter)

    def __call__(self, state: AttemptState) -> float:
        return _jittered(self.seconds, self.jitter)

    def __repr__(self) -> str:
        return f"waits.fixed({self.seconds:g}, jitter={self.jitter:g})"


class Exponential(Wait):
    """`initial * base ** (attempt - 1)`, capped at `max`, then jittered."""

    __slots__ = ("base", "initial", "jitter", "max")

    def __init__(self, initial: Duration, max: Duration, base: float, jitter: float) -> None:
        self.initial = to_seconds(initial, "initial")
        self.max = to_seconds(max, "max")
        if isinstance(base, bool) or not isinstance(base, int | float) or base < 1:
            raise ValueError(f"base must be a number of at least 1, got {base!r}")
        self.base = float(base)
        self.jitter = _check_jitter(jitter)

    def __call__(self, state: AttemptState) -> float:
        exponent = state.attempt - 1
        try:
            seconds = min(self.max, self.initial * self.base**exponent)
        except OverflowError:
            seconds = self.max
        return _jittered(seconds, self.jitter)

    def __repr__(self) -> str:
        return (
            f"waits.exponential(initial={self.initial:g}, max={self.max:g}, "
            f"base={self.base:g}, jitter={self.jitter:g})"
        )


class Series(Wait):
    """The n-th retry waits the n-th value; the last value repeats."""

    __slots__ = ("jitter", "values")

    def __init__(self, values: Sequence[Duration], jitter: float = 0.0) -> None:
        if isinstance(values, str | bytes) or not values:
            raise ValueError("a sequence of waits needs at least one duration")
        self.values = tuple(to_seconds(v, f"wait[{i}]") for i, v in enumerate(values))
        self.jitter = _check_jitter(jitter)

    def __call__(self, state: AttemptState) -> float:
        values = self.values
        return _jittered(values[min(state.attempt, len(values)) - 1], self.jitter)

    def __repr__(self) -> str:
        return f"waits.sequence({list(self.values)!r}, jitter={self.jitter:g})"


class Chain(Wait):
    """The n-th retry uses the n-th strategy; the last strategy repeats."""

    __slots__ = ("strategies",)

    def __init__(self, strategies: Sequence[Wait]) -> None:
        if not strategies:
            raise ValueError("waits.chain needs at least one strategy")
        self.strategies = tuple(strategies)

    def __call__(self, state: AttemptState) -> float:
        strategies = self.strategies
        return strategies[min(state.attempt, len(strategies)) - 1](state)

    def __repr__(self) -> str:
        return "waits.chain(" + ", ".join(map(repr, self.strategies)) + ")"


class FromException(Wait):
    """The wait the exception dictates (`Retry-After`), else the `fallback` strategy."""

    __slots__ = ("fallback", "fn")

    def __init__(self, fn: Callable[[BaseException], Duration | None], fallback: Wait) -> None:
        if not callable(fn):
            raise TypeError(f"from_exception takes a function (exception) -> seconds, got {fn!r}")
        self.fn = fn
        self.fallback = fallback

    def __call__(self, state: AttemptState) -> float:
        if state.exception is not None:
            dictated = self.fn(state.exception)
            if dictated is not None:
                return checked_seconds(dictated, self.fn)
        return self.fallback(state)

    def __repr__(self) -> str:
        return f"waits.from_exception({getattr(self.fn, '__name__', self.fn)}, {self.fallback!r})"


class Sum(Wait):
    """The sum of two strategies' waits."""

    __slots__ = ("left", "right")

    def __init__(self, left: Wait, right: Wait) -> None:
        self.left = left
        self.right = right

    def __call__(self, state: AttemptState) -> float:
        return self.left(state) + self.right(state)

    def __repr__(self) -> str:
        return f"({self.left!r} + {self.right!r})"


class _Function(Wait):
    """A plain callable used as a wait; its answer is checked at each use."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[AttemptState], Duration]) -> None:
        self.fn = fn

    def __call__(self, state: AttemptState) -> float:
        return checked_seconds(self.fn(state), self.fn)

    def __repr__(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


def checked_seconds(value: object, source: object) -> float:
    """Validate a duration computed at run time by user code `source`."""
    name = getattr(source, "__name__", repr(source))
    try:
        return to_seconds(value, f"the wait returned by {name}")
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc)) from None


def fixed(seconds: Duration, *, jitter: float = 0.0) -> Wait:
    """Wait `seconds` before every retry."""
    return Fixed(seconds, jitter)


def exponential(
    initial: Duration = 0.1,
    max: Duration = 5.0,
    *,
    base: float = 2.0,
    jitter: float = 0.0,
) -> Wait:
    """Wait `initial`, then `initial * base`, ... capped at `max` (jitter applied after the cap)."""
    return Exponential(initial, max, base, jitter)


def sequence(values: Sequence[Duration], *, jitter: float = 0.0) -> Wait:
    """Wait `values[0]` before the first retry, `values[1]` before the next; the last repeats."""
    return Series(values, jitter)


def chain(*strategies: WaitLike) -> Wait:
    """Use the first strategy for the first retry, the second for the next; the last repeats."""
    return Chain([as_wait(s, "waits.chain") for s in strategies])


def from_exception(
    fn: Callable[[BaseException], Duration | None], fallback: WaitLike = 0.0
) -> Wait:
    """Take the wait from the error (`fn(exc)` seconds), or `fallback` when `fn` returns None.

    For an HTTP 429 with `Retry-After: 3`, `fn` returns 3; for other errors it returns None.
    """
    return FromException(fn, as_wait(fallback, "fallback"))


def as_wait(value: Any, argument: str = "wait") -> Wait:
    """Coerce what users may pass as a wait into a `Wait`, raising at decoration on bad input."""
    if isinstance(value, Wait):
        return value
    if isinstance(value, int | float | timedelta) and not isinstance(value, bool):
        return Fixed(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return Series(value)
    if callable(value):
        return _Function(value)
    raise TypeError(
        f"{argument} takes seconds, a timedelta, a sequence of them, a strategy from "
        f"reflow.retry.waits or a function (AttemptState) -> seconds; got {value!r}"
    )
