"""`reflow.testing`: the virtual clock, `instant()` and the `reflow_clock` pytest fixture."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import reflow._pytest_plugin
from reflow import retry
from reflow.retry import _clock
from reflow.testing import VirtualClock, instant

REAL_CLOCK = (_clock.monotonic, _clock.sleep, _clock.async_sleep)


def _real_clock_is_back() -> bool:
    current = (_clock.monotonic, _clock.sleep, _clock.async_sleep)
    return all(now is real for now, real in zip(current, REAL_CLOCK, strict=True))


def test_the_real_clock_is_the_time_module() -> None:
    assert _clock.monotonic is time.monotonic
    assert _clock.sleep is time.sleep


def test_reflow_clock_fixture_is_a_virtual_clock(reflow_clock: VirtualClock) -> None:
    assert isinstance(reflow_clock, VirtualClock)
    assert reflow_clock.waits == []
    assert _clock.sleep == reflow_clock.sleep


def test_plugin_is_registered_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.get_plugin("reflow") is reflow._pytest_plugin


def test_instant_records_waits_without_sleeping() -> None:
    fetch = retry(attempts=3, wait=[30, 60])(lambda: 1 / 0)

    with instant() as clock, pytest.raises(ZeroDivisionError):
        fetch()
    assert clock.waits == [30, 60]
    assert clock.now == 90
    assert clock.total_wait == 90


def test_instant_covers_retriables_decorated_before_it() -> None:
    fetch = retry(attempts=2, wait=3600)(lambda: 1 / 0)

    with instant() as clock, pytest.raises(ZeroDivisionError):
        fetch()
    assert clock.waits == [3600]


def test_instant_restores_the_real_clock() -> None:
    with instant():
        assert not _real_clock_is_back()
    assert _real_clock_is_back()


def test_instant_restores_the_real_clock_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside"), instant():
        raise RuntimeError("inside")
    assert _real_clock_is_back()


def test_instant_starts_at_the_given_time() -> None:
    with instant(start=100.0) as clock:
        assert _clock.monotonic() == 100.0
        clock.advance(2.5)
        assert clock.now == 102.5


def test_advance_refuses_to_go_back() -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        VirtualClock().advance(-1)


async def test_async_waits_are_recorded(reflow_clock: VirtualClock) -> None:
    calls = 0

    @retry(attempts=3, wait=[5, 7])
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("failure")

    with pytest.raises(ValueError, match="failure"):
        await fetch()
    assert calls == 3
    assert reflow_clock.waits == [5, 7]


def test_reflow_home_fixture_keeps_a_tests_runs_in_its_own_folder(
    reflow_home: Path, tmp_path: Path
) -> None:
    from reflow import flow, task
    from reflow.store import SQLiteStore

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def doubled(x: int) -> int:
        return double(x)

    assert reflow_home.parent == tmp_path
    run = doubled.run(4)
    with SQLiteStore(reflow_home / "reflow.db") as store:
        record = store.flow_run(run.id)
        assert record is not None
        assert record.state == "Completed"
