"""reflow.events: every task state change reaches subscribers, once, in order, cheaply."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from reflow import events, task
from reflow.events import StateChange
from reflow.task import INPUTS, MemoryCacheStore
from reflow.testing import VirtualClock
from tests._support import Script


def changes(seen: list[StateChange]) -> list[tuple[str | None, str]]:
    return [(e.previous.name if e.previous else None, e.state.name) for e in seen]


def test_every_state_change_of_a_retried_task_is_one_event_in_order(
    reflow_clock: VirtualClock,
) -> None:
    flaky = task(retries=2)(Script(ConnectionError, "ok").step)
    seen: list[StateChange] = []

    with events.subscribe(seen.append):
        assert flaky() == "ok"

    assert changes(seen) == [
        (None, "Pending"),
        ("Pending", "Running"),
        ("Running", "AwaitingRetry"),
        ("AwaitingRetry", "Retrying"),
        ("Retrying", "Completed"),
    ]
    assert {e.run_kind for e in seen} == {"task"}
    assert len({e.run_id for e in seen}) == 1
    assert [e.timestamp for e in seen] == sorted(e.timestamp for e in seen)


async def test_async_tasks_publish_the_same_events() -> None:
    @task
    async def fetch() -> int:
        return 1

    seen: list[StateChange] = []
    with events.subscribe(seen.append):
        assert await fetch() == 1
    assert changes(seen) == [(None, "Pending"), ("Pending", "Running"), ("Running", "Completed")]


def test_events_carry_the_state_a_handler_chose() -> None:
    def forgive(t: Any, old: Any, new: Any) -> Any:
        from reflow.states import Completed

        return Completed("fallback") if new.is_failed() else None

    broken = task(state_handlers=[forgive])(Script(ValueError).step)
    seen: list[StateChange] = []
    with events.subscribe(seen.append):
        assert broken() == "fallback"
    assert seen[-1].state.name == "Completed"
    assert seen[-1].state.data == "fallback"


def test_a_cache_hit_and_a_cancelled_run_are_events_too() -> None:
    store = MemoryCacheStore()
    cached = task(cache_policy=INPUTS, cache_store=store)(lambda x: x)
    interrupted = task(retries=3)(Script(KeyboardInterrupt).step)
    seen: list[StateChange] = []

    with events.subscribe(seen.append):
        cached(1)
        cached(1)
        with pytest.raises(KeyboardInterrupt):
            interrupted()

    assert [e.state.name for e in seen] == [
        "Pending", "Running", "Completed",
        "Pending", "Cached",
        "Pending", "Running", "Cancelled",
    ]  # fmt: skip


def test_unsubscribing_stops_events_and_twice_is_harmless() -> None:
    quick = task(lambda: 1)
    seen: list[StateChange] = []
    subscription = events.subscribe(seen.append)
    quick()
    subscription.unsubscribe()
    subscription.unsubscribe()
    quick()

    assert len(seen) == 3
    assert events.subscribers == ()


def test_subscribers_are_called_in_the_order_they_subscribed() -> None:
    calls: list[str] = []
    with (
        events.subscribe(lambda e: calls.append("first")),
        events.subscribe(lambda e: calls.append("second")),
    ):
        task(lambda: 1)()
    assert calls == ["first", "second"] * 3


def test_a_raising_subscriber_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[StateChange] = []

    def broken(event: StateChange) -> None:
        raise RuntimeError("disk full")

    with events.subscribe(broken), events.subscribe(seen.append):
        assert task(lambda: 7)() == 7

    assert len(seen) == 3  # later subscribers still get every event
    assert "the event subscriber" in caplog.text
    assert "disk full" in caplog.text
    assert all(r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.parametrize("bad", [None, "print"])
def test_subscribe_takes_functions(bad: Any) -> None:
    with pytest.raises(TypeError, match="takes a function"):
        events.subscribe(bad)


def test_subscribe_refuses_async_functions() -> None:
    async def handler(event: StateChange) -> None: ...

    with pytest.raises(TypeError, match="is async"):
        events.subscribe(handler)


def test_events_from_many_threads_are_all_delivered() -> None:
    quick = task(lambda x: x)
    seen: list[StateChange] = []
    lock = threading.Lock()

    def record(event: StateChange) -> None:
        with lock:
            seen.append(event)

    with events.subscribe(record):
        threads = [threading.Thread(target=lambda: [quick(i) for i in range(50)]) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(seen) == 8 * 50 * 3
    by_run: dict[str, list[str]] = {}
    for event in seen:
        by_run.setdefault(event.run_id, []).append(event.state.name)
    assert len(by_run) == 400
    assert all(names == ["Pending", "Running", "Completed"] for names in by_run.values())
