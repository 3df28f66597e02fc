"""Bad options fail when decorating, naming the option; good ones are kept on the task."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from reflow import task
from reflow.task import INPUTS, MemoryCacheStore


def plain(x: int) -> int:
    return x


BAD_OPTIONS = [
    ({"retries": -1}, ValueError, "retries"),
    ({"retries": "2"}, ValueError, "retries"),
    ({"retries": 1.5}, ValueError, "retries"),
    ({"retries": True}, ValueError, "retries"),
    ({"retry_delay_seconds": -1}, ValueError, "retry_delay_seconds"),
    ({"retry_delay_seconds": [1, -2]}, ValueError, r"retry_delay_seconds\[1\]"),
    ({"retry_delay_seconds": "soon"}, TypeError, "retry_delay_seconds"),
    ({"retry_delay_seconds": float("nan")}, ValueError, "retry_delay_seconds"),
    ({"retry_jitter_factor": -1}, ValueError, "retry_jitter_factor"),
    ({"retry_jitter_factor": "big"}, ValueError, "retry_jitter_factor"),
    ({"retry_condition_fn": True}, TypeError, "retry_condition_fn"),
    ({"timeout_seconds": 0}, ValueError, "timeout_seconds"),
    ({"timeout_seconds": -1}, ValueError, "timeout_seconds"),
    ({"timeout_seconds": float("inf")}, ValueError, "timeout_seconds"),
    ({"retry_on": KeyboardInterrupt}, TypeError, "retry_on"),
    ({"retry_on": "ValueError"}, TypeError, "retry_on"),
    ({"retry_on": ()}, ValueError, "retry_on"),
    ({"cache_policy": "x"}, TypeError, "cache_policy"),
    ({"cache_key_fn": 5}, TypeError, "cache_key_fn"),
    ({"cache_expiration": -1}, ValueError, "cache_expiration"),
    ({"cache_store": {}}, TypeError, "cache_store"),
    ({"on_failure": "print"}, TypeError, "on_failure"),
    ({"on_completion": [print, 3]}, TypeError, "on_completion"),
    ({"on_running": 3}, TypeError, "on_running"),
    ({"on_retry": b"x"}, TypeError, "on_retry"),
    ({"state_handlers": "h"}, TypeError, "state_handlers"),
    ({"revert": "undo"}, TypeError, "revert"),
    ({"persist_result": "no"}, TypeError, "persist_result"),
    ({"persist_result": 0}, TypeError, "persist_result"),
    ({"tags": "io"}, TypeError, "tags"),
    ({"tags": ["io", 3]}, TypeError, "tags"),
    ({"name": 3}, TypeError, "name"),
    ({"retrys": 3}, TypeError, "retrys"),
    ({"timeout": 3}, TypeError, "timeout"),
]


@pytest.mark.parametrize(
    ("options", "error", "named"), BAD_OPTIONS, ids=[repr(o) for o, _, _ in BAD_OPTIONS]
)
def test_a_bad_option_fails_at_decoration_naming_it(
    options: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        task(**options)
    with pytest.raises(error, match=named):
        task(plain, **options)


def test_a_bad_option_fails_for_async_functions_too() -> None:
    async def fetch() -> None:
        pass

    with pytest.raises(ValueError, match="retries"):
        task(retries=-1)(fetch)
    with pytest.raises(ValueError, match="timeout_seconds"):
        task(fetch, timeout_seconds=0)


def test_generator_functions_are_refused() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    async def numbers_async() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        task(numbers)
    with pytest.raises(TypeError, match="generator function"):
        task(retries=1)(numbers_async)


def test_a_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        task(retries=1)(42)  # type: ignore[arg-type]


def test_good_options_are_kept_on_the_task() -> None:
    store = MemoryCacheStore()

    def handler(t: Any, old: Any, new: Any) -> None:
        return None

    def hook(t: Any, run: Any, state: Any) -> None:
        pass

    t = task(
        retries=2,
        timeout_seconds=1.5,
        cache_policy=INPUTS,
        cache_expiration=60,
        refresh_cache=True,
        cache_store=store,
        persist_result=True,
        skip_on_upstream_skip=False,
        state_handlers=handler,
        on_failure=[hook, hook],
    )(plain)

    assert t.retries == 2
    assert t.timeout_seconds == 1.5
    assert t.cache_policy is INPUTS
    assert t.cache_expiration == 60
    assert t.refresh_cache is True
    assert t.cache_store is store
    assert t.persist_result is True
    assert t.skip_on_upstream_skip is False
    assert t.state_handlers == (handler,)
    assert t.hooks["on_failure"] == (hook, hook)
    assert t.hooks["on_running"] == ()


def test_defaults() -> None:
    t = task(plain)

    assert t.retries == 0
    assert t.timeout_seconds is None
    assert t.cache_policy is None
    assert t.cache_expiration is None
    assert t.refresh_cache is False
    assert t.persist_result is None
    assert t.skip_on_upstream_skip is True
    assert t.trigger is None
    assert t.revert_fn is None
    assert t.tags == frozenset()
    assert t.retry_condition_fn is None
    assert t.state_handlers == ()
    assert not t.is_async


def test_persist_result_is_kept_and_with_options_replaces_it() -> None:
    t = task(persist_result=False)(plain)
    assert t.persist_result is False
    assert t.with_options(retries=1).persist_result is False
    assert t.with_options(persist_result=None).persist_result is None
    assert task(plain).persist_result is None


def test_a_task_whose_results_are_not_kept_caches_in_the_process() -> None:
    from reflow.task.cache import DEFAULT_CACHE_STORE

    calls: list[int] = []

    @task(cache_policy=INPUTS, persist_result=False)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(12345) == square(12345) == 12345 * 12345
    assert calls == [12345]
    assert any(e.value == 12345 * 12345 for e in DEFAULT_CACHE_STORE.memory._entries.values())
