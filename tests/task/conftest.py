"""Fixtures of the task tests."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from reflow.task import MemoryCacheStore
from reflow.task.cache import DEFAULT_CACHE_STORE
from tests.task._support import Flavor


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    """Runs the test once with a sync task and once with an `async def` one."""
    return Flavor(is_async=request.param)


@pytest.fixture
def store() -> MemoryCacheStore:
    """A cache store of the test's own."""
    return MemoryCacheStore()


@pytest.fixture(autouse=True)
def _clean_default_cache_store() -> Iterator[None]:
    """Tasks without `cache_store=` share a process-wide store: empty it around each test."""
    DEFAULT_CACHE_STORE.clear()
    yield
    DEFAULT_CACHE_STORE.clear()


class WallClock:
    """A fake `time.time()` for the cache: it moves only when the test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    """Cache expiry reads this clock instead of `time.time()` (no real sleeping)."""
    clock = WallClock()
    fake_time = SimpleNamespace(time=clock.time)
    # `reflow.task` the attribute is the decorator, so the modules are fetched by name.
    monkeypatch.setattr(importlib.import_module("reflow.task.decorator"), "time", fake_time)
    monkeypatch.setattr(importlib.import_module("reflow.task.cache"), "time", fake_time)
    return clock
