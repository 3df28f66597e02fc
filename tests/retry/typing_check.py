"""Checked by mypy --strict from test_typing.py; never collected or run by pytest.

Every line here must type-check: a Retriable keeps the signature of the function it wraps.
"""

from __future__ import annotations

from datetime import timedelta

from reflow import Retriable, RetryBudget, attempting, attempting_async, retry, waits
from reflow.retry import AttemptsExhausted, AttemptState, ExceptionMatches, ResultMatches


@retry
def bare(path: str) -> bytes:
    return path.encode()


@retry(attempts=3, on=ConnectionError, wait=waits.exponential(initial=0.1, max=10, jitter=1.0))
def fetch(n: int, *, scale: float = 1.0) -> str:
    return str(n * scale)


@retry(until=AttemptsExhausted(5) | ~ExceptionMatches(ValueError), wait=[1, 2, 4], deadline=60)
async def fetch_async(n: int) -> list[int]:
    return [n]


def log_failure(state: AttemptState) -> None:
    print(state.attempt, state.exception)


async def log_async(state: AttemptState) -> None:
    print(state.phase)


@retry(
    until=AttemptsExhausted(5) | ResultMatches(lambda r: r == "ready"),
    wait=timedelta(seconds=1),
    timeout=5,
    budget=RetryBudget(),
    on_failure=[log_failure, log_async],
    before_wait=log_failure,
)
def poll() -> str:
    return "ready"


@fetch.on_giveup
def giving_up(state: AttemptState) -> None:
    print(state.elapsed)


def use() -> None:
    data: bytes = bare("/x")
    text: str = fetch(3, scale=2.0)
    ready: str = poll()
    same: Retriable[[str], bytes] = bare.with_options(attempts=5)
    print(data, text, ready, same)
    for attempt in attempting(attempts=3, wait=0.5):
        with attempt:
            print(attempt.number)


async def use_async() -> None:
    numbers: list[int] = await fetch_async(1)
    print(numbers)
    async for attempt in attempting_async(attempts=2):
        async with attempt:
            print(attempt.number)
