"""How a task is called: bad arguments, methods, coroutine detection, names in the retry layer."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys

import pytest

from reflow import task
from reflow.retry import waits
from reflow.testing import VirtualClock


def test_a_call_whose_arguments_do_not_fit_is_not_retried() -> None:
    calls = 0

    @task(retries=3)
    def add(x: int, y: int) -> int:
        nonlocal calls
        calls += 1
        return x + y

    with pytest.raises(TypeError) as caught:
        add(1, 2, 3)  # type: ignore[call-arg]

    assert calls == 0
    assert any("called with arguments that do not fit" in n for n in caught.value.__notes__)


def test_a_type_error_raised_inside_the_task_is_retried_like_any_failure() -> None:
    calls = 0

    @task(retries=2)
    def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TypeError("a bug in a dependency, not in the call")
        return x

    assert flaky(7) == 7
    assert calls == 3


async def test_an_async_task_with_bad_arguments_is_not_retried() -> None:
    calls = 0

    @task(retries=3)
    async def add(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    with pytest.raises(TypeError):
        await add(1, 2)  # type: ignore[call-arg]
    assert calls == 0


def test_a_task_works_as_a_method() -> None:
    class Repo:
        def __init__(self) -> None:
            self.rows = [1, 2, 3]

        @task(retries=1)
        def count(self, above: int) -> int:
            return sum(1 for r in self.rows if r > above)

    assert Repo().count(1) == 2
    assert isinstance(Repo.__dict__["count"], type(task(lambda: None)))


def test_an_async_task_is_a_coroutine_function() -> None:
    @task
    async def fetch() -> int:
        return 1

    if sys.version_info >= (3, 12):
        assert inspect.iscoroutinefunction(fetch)
    else:
        assert asyncio.iscoroutinefunction(fetch)
    assert asyncio.run(fetch()) == 1


def test_a_retry_condition_saying_no_gives_its_reason_in_the_note() -> None:
    @task(retries=3, retry_condition_fn=lambda t, run, state: False)
    def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no") as caught:
        fails()
    assert caught.value.__notes__[-1].endswith("(retry_condition_fn returned False)")


def test_the_retry_layer_logs_name_the_task(caplog: pytest.LogCaptureFixture) -> None:
    @task(retries=1)
    def refresh_token() -> None:
        raise ConnectionError("down")

    with caplog.at_level(logging.DEBUG, logger="reflow.retry"), pytest.raises(ConnectionError):
        refresh_token()
    assert "retrying test_the_retry_layer_logs_name_the_task.<locals>.refresh_token" in caplog.text
    assert "_attempt_sync" not in caplog.text


def test_a_waits_strategy_is_accepted_as_retry_delay_seconds(reflow_clock: VirtualClock) -> None:
    @task(retries=3, retry_delay_seconds=waits.exponential(initial=1, max=3))
    def down() -> None:
        raise ConnectionError("down")

    assert down(return_state=True).is_failed()
    assert reflow_clock.waits == [1, 2, 3]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"revert": ["undo"]}, TypeError, "revert takes one function"),
        ({"cache_expiration": 0}, ValueError, "cache_expiration must be more than zero"),
    ],
)
def test_more_bad_options_fail_at_decoration(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        task(**options)  # type: ignore[call-overload]
