"""Checked by mypy --strict from test_typing.py; never collected or run by pytest.

Every line here must type-check: a Task keeps the signature of the function it wraps.
"""

from __future__ import annotations

from typing import Any, assert_type

from reflow import Task, task
from reflow.states import State
from reflow.task import INPUTS, TaskRun, exponential_backoff


@task
def bare(path: str) -> bytes:
    return path.encode()


@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_on=(ConnectionError, TimeoutError),
    timeout_seconds=5,
    cache_policy=INPUTS - "scale",
    cache_expiration=60,
    tags=["io"],
)
def fetch(n: int, *, scale: float = 1.0) -> str:
    return str(n * scale)


def keep_going(t: Task[..., Any], run: TaskRun, state: State[Any]) -> bool:
    return state.is_failed()


@task(retries=1, retry_delay_seconds=[1, 2], retry_condition_fn=keep_going)
async def fetch_async(n: int) -> list[int]:
    return [n]


@fetch.on_failure
def alert(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
    print(run.id, state.message)


def use() -> None:
    data: bytes = bare("/x")
    text: str = fetch(3, scale=2.0)
    state = fetch(1, return_state=True)
    assert_type(state, State[str])
    result: str = state.result()
    same: Task[[str], bytes] = bare.with_options(retries=2)
    print(data, text, result, same, fetch.fn(2))


async def use_async() -> None:
    numbers: list[int] = await fetch_async(1)
    print(numbers)
