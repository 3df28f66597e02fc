"""Bad configuration fails when decorating, with a message naming the argument."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from reflow import attempting, attempting_async, retry, waits
from reflow.retry import (
    AttemptsExhausted,
    AttemptState,
    ExceptionMatches,
    ResultMatches,
    TimeElapsed,
)
from reflow.retry.hooks import HOOK_NAMES


async def _async_predicate(state: AttemptState) -> bool:
    return True


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"attempts": 0}, ValueError, "attempts must be 1 or more"),
    ({"attempts": -2}, ValueError, "attempts must be 1 or more"),
    ({"attempts": "3"}, TypeError, "attempts must be an int"),
    ({"attempts": 2.5}, TypeError, "attempts must be an int"),
    ({"attempts": True}, TypeError, "attempts must be an int"),
    ({"wait": -1}, ValueError, "wait must be zero or more"),
    ({"wait": timedelta(seconds=-1)}, ValueError, "wait must be zero or more"),
    ({"wait": float("nan")}, ValueError, "wait must be zero or more"),
    ({"wait": [1, -2]}, ValueError, r"wait\[1\] must be zero or more"),
    ({"wait": [1, "2"]}, TypeError, r"wait\[1\] must be a number"),
    ({"wait": []}, ValueError, "sequence of waits needs at least one"),
    ({"wait": "1"}, TypeError, "wait takes seconds"),
    ({"wait": True}, TypeError, "wait takes seconds"),
    ({"deadline": -1}, ValueError, "deadline must be more than zero"),
    ({"deadline": 0}, ValueError, "deadline must be more than zero"),
    ({"deadline": "60"}, TypeError, "deadline must be a number"),
    ({"timeout": 0}, ValueError, "timeout must be more than zero"),
    ({"timeout": -0.5}, ValueError, "timeout must be more than zero"),
    ({"timeout": timedelta(0)}, ValueError, "timeout must be more than zero"),
    ({"on": KeyboardInterrupt}, TypeError, "on got KeyboardInterrupt"),
    ({"on": (ValueError, SystemExit)}, TypeError, "on got SystemExit"),
    ({"on": BaseException}, TypeError, "on got BaseException"),
    ({"on": "x"}, TypeError, "on takes exception classes"),
    ({"on": int}, TypeError, "on takes exception classes"),
    ({"on": (ValueError, "x")}, TypeError, "on takes exception classes"),
    ({"on": [ValueError]}, TypeError, "on takes exception classes"),
    ({"on": ()}, ValueError, "on needs at least one exception type"),
    ({"until": 3}, TypeError, "until takes a stop condition"),
    ({"until": _async_predicate}, TypeError, "until takes a stop condition"),
    ({"budget": 10}, TypeError, "budget takes a RetryBudget"),
    *[({kind: 5}, TypeError, f"{kind} takes a function") for kind in HOOK_NAMES],
    *[({kind: [print, None]}, TypeError, f"{kind} takes functions") for kind in HOOK_NAMES],
    *[({kind: "print"}, TypeError, f"{kind} takes functions") for kind in HOOK_NAMES],
    ({"on_failure": b"print"}, TypeError, "on_failure takes functions"),
    ({"deadline": float("inf")}, ValueError, r"deadline must be finite; leave it out \(None\)"),
    ({"timeout": float("inf")}, ValueError, r"timeout must be finite; leave it out \(None\)"),
    ({"wait": float("inf")}, ValueError, r"wait must be finite$"),
    ({"wait": float("-inf")}, ValueError, "wait must be finite"),
    ({"wait": [1, float("inf")]}, ValueError, r"wait\[1\] must be finite"),
]


def _option_id(option: dict[str, Any]) -> str:
    ((key, value),) = option.items()
    return f"{key}={value!r}"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    BAD_OPTIONS,
    ids=[_option_id(options) for options, _, _ in BAD_OPTIONS],
)
def test_bad_option_fails_when_decorating(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        retry(**options)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    BAD_OPTIONS[:6],
    ids=[_option_id(options) for options, _, _ in BAD_OPTIONS[:6]],
)
def test_bad_option_fails_before_the_function_is_called(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    calls: list[int] = []

    def fetch() -> None:
        calls.append(1)

    with pytest.raises(error, match=message):
        retry(**options)(fetch)
    assert calls == []


BAD_BUILDERS: list[tuple[Callable[[], object], type[Exception], str]] = [
    (lambda: waits.fixed(1, jitter=2), ValueError, "jitter must be a factor between 0 and 1"),
    (lambda: waits.fixed(1, jitter=-0.1), ValueError, "jitter must be a factor"),
    (lambda: waits.exponential(jitter=1.5), ValueError, "jitter must be a factor"),
    (lambda: waits.sequence([1], jitter=2), ValueError, "jitter must be a factor"),
    (lambda: waits.fixed(-1), ValueError, "wait must be zero or more"),
    (lambda: waits.exponential(initial=-1), ValueError, "initial must be zero or more"),
    (lambda: waits.exponential(max=-1), ValueError, "max must be zero or more"),
    (lambda: waits.exponential(base=0.5), ValueError, "base must be a number of at least 1"),
    (lambda: waits.chain(), ValueError, "waits.chain needs at least one strategy"),
    (lambda: waits.chain(1, "x"), TypeError, "waits.chain takes seconds"),
    (lambda: waits.from_exception("x"), TypeError, "from_exception takes a function"),  # type: ignore[arg-type]
    (lambda: waits.from_exception(len, -1), ValueError, "wait must be zero or more"),
    (lambda: waits.fixed(1) + "x", TypeError, r"\+ takes seconds"),
    (lambda: AttemptsExhausted(0), ValueError, "attempts must be 1 or more"),
    (lambda: ExceptionMatches(KeyboardInterrupt), TypeError, "ExceptionMatches got"),
    (lambda: ExceptionMatches(3), TypeError, "ExceptionMatches takes exception classes"),  # type: ignore[arg-type]
    (lambda: ResultMatches(3), TypeError, "ResultMatches takes a predicate"),  # type: ignore[arg-type]
    (lambda: TimeElapsed(-1), ValueError, "TimeElapsed must be more than zero"),
    (lambda: TimeElapsed(float("inf")), ValueError, "TimeElapsed must be finite"),
    (lambda: waits.fixed(float("inf")), ValueError, "wait must be finite"),
    (lambda: waits.exponential(max=float("inf")), ValueError, "max must be finite"),
    (lambda: attempting(attempts=0), ValueError, "attempts must be 1 or more"),
    (lambda: attempting_async(on=SystemExit), TypeError, "on got SystemExit"),
]


@pytest.mark.parametrize(
    ("build", "error", "message"), BAD_BUILDERS, ids=[m for _, _, m in BAD_BUILDERS]
)
def test_bad_strategy_or_condition_fails_when_built(
    build: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        build()


def _generator() -> Iterator[int]:
    yield 1


async def _async_generator() -> AsyncIterator[int]:
    yield 1


@pytest.mark.parametrize("fn", [_generator, _async_generator], ids=lambda f: f.__name__)
def test_generator_function_is_refused(fn: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match=f"cannot retry the generator function {fn.__name__}"):
        retry(attempts=2)(fn)


def test_bare_retry_refuses_a_generator_function() -> None:
    with pytest.raises(TypeError, match="generator function"):
        retry(_generator)


def test_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="retry\\(\\) decorates a function"):
        retry(attempts=2)(5)  # type: ignore[arg-type]


def test_policy_is_checked_once_and_shared_by_calls() -> None:
    fetch = retry(attempts=3, wait=[1, 2])(len)

    assert fetch.policy is fetch.policy
    assert fetch.policy.timeout is None
    assert fetch("abc") == 3
