"""Caching: policies, keys, expiration, refresh, stores; failures and skips are never cached."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from reflow import task
from reflow.states import State
from reflow.task import (
    INPUTS,
    NO_CACHE,
    TASK_SOURCE,
    CacheEntry,
    CacheKeyWarning,
    CachePolicy,
    CacheStore,
    MemoryCacheStore,
    Skip,
    TaskRun,
)
from reflow.task.cache import DEFAULT_CACHE_STORE
from reflow.testing import VirtualClock
from tests.task._support import Flavor, Recorder, Script, names
from tests.task.conftest import WallClock


class Counter:
    """A function `(x, y=0) -> x + y` counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any, y: Any = 0) -> Any:
        self.calls += 1
        return (x, y, self.calls)


def counted(flavor: Flavor) -> tuple[Counter, Any]:
    counter = Counter()

    def add(x: Any, y: Any = 0) -> Any:
        return counter(x, y)

    return counter, flavor.wrap(add)


# --- INPUTS ----------------------------------------------------------------------------------


def test_inputs_caches_by_arguments(flavor: Flavor, store: MemoryCacheStore) -> None:
    counter, fn = counted(flavor)
    t = task(cache_policy=INPUTS, cache_store=store)(fn)

    first = flavor.call(t, 1)
    assert flavor.call(t, 1) == first
    assert flavor.call(t, x=1) == first  # bound to parameter names
    assert flavor.call(t, 1, 0) == first  # defaults applied
    assert counter.calls == 1
    assert flavor.call(t, 2) != first
    assert flavor.call(t, 1, y=5) != first
    assert counter.calls == 3
    assert len(store) == 3


def test_a_cache_hit_is_a_cached_state_and_the_function_is_not_called(
    flavor: Flavor, store: MemoryCacheStore
) -> None:
    counter, fn = counted(flavor)
    recorder = Recorder(is_async=flavor.is_async)
    t = task(cache_policy=INPUTS, cache_store=store, **recorder.hooks())(fn)

    flavor.call(t, 1)
    state: State[Any] = flavor.state(t, 1)

    assert counter.calls == 1
    assert state.name == "Cached"
    assert state.is_cached()
    assert state.is_completed()
    assert state.result() == (1, 0, 1)
    assert names(recorder.runs[-1].states) == ["Pending", "Cached"]
    assert recorder.events == [
        ("on_running", "Running", 1),
        ("on_completion", "Completed", 1),
        ("on_completion", "Cached", 0),
    ]
    assert recorder.runs[-1].cache_key is not None


def test_equal_values_of_different_types_are_different_keys(store: MemoryCacheStore) -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS, cache_store=store)(counter)

    t((1, 2))
    t([1, 2])

    assert counter.calls == 2


def test_inputs_minus_an_argument_ignores_it(flavor: Flavor, store: MemoryCacheStore) -> None:
    counter, fn = counted(flavor)
    t = task(cache_policy=INPUTS - "y", cache_store=store)(fn)

    flavor.call(t, 1, y="session-a")
    assert flavor.call(t, 1, y="session-b") == (1, "session-a", 1)
    assert counter.calls == 1
    assert repr(INPUTS - "y") == "INPUTS - 'y'"


def test_inputs_minus_makes_a_new_policy() -> None:
    less = INPUTS - "y"

    assert less is not INPUTS
    assert repr(INPUTS) == "INPUTS"
    assert repr(less - "z") == "INPUTS - 'y' - 'z'"


def test_only_inputs_can_leave_out_an_argument() -> None:
    with pytest.raises(TypeError, match="only INPUTS"):
        TASK_SOURCE - "x"
    with pytest.raises(TypeError, match="argument name"):
        INPUTS - 3  # type: ignore[operator]


def test_an_unpicklable_argument_runs_uncached_with_a_warning(
    flavor: Flavor, store: MemoryCacheStore
) -> None:
    counter, fn = counted(flavor)
    t = task(cache_policy=INPUTS, cache_store=store)(fn)

    for value in (lambda: None, threading.Lock()):
        with pytest.warns(CacheKeyWarning, match="runs without its cache"):
            flavor.call(t, value)
        with pytest.warns(CacheKeyWarning):
            flavor.call(t, value)

    assert counter.calls == 4
    assert len(store) == 0


def test_leaving_the_unpicklable_argument_out_caches_again(store: MemoryCacheStore) -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS - "y", cache_store=store)(counter)
    lock = threading.Lock()

    t(1, lock)
    t(1, lock)

    assert counter.calls == 1


def test_uncacheable_run_has_no_cache_key(store: MemoryCacheStore) -> None:
    recorder = Recorder()
    t = task(cache_policy=INPUTS, cache_store=store, **recorder.hooks())(Counter())

    with pytest.warns(CacheKeyWarning):
        t(threading.Lock())
    assert recorder.run.cache_key is None


# --- TASK_SOURCE, NO_CACHE, combinations -----------------------------------------------------


def test_task_source_keys_on_the_code_only(store: MemoryCacheStore) -> None:
    counter = Counter()
    t = task(cache_policy=TASK_SOURCE, cache_store=store)(counter.__call__)

    first = t(1)
    assert t(2) == first  # the inputs are not part of the key
    assert counter.calls == 1


def test_task_source_differs_between_functions(store: MemoryCacheStore) -> None:
    def one() -> int:
        return 1

    def two() -> int:
        return 2

    first = task(cache_policy=TASK_SOURCE, cache_store=store)(one)
    second = task(cache_policy=TASK_SOURCE, cache_store=store)(two)

    assert first() == 1
    assert second() == 2
    assert first.source_hash != second.source_hash
    assert first.source_hash == task(one).source_hash


def test_task_source_without_source_uses_the_bytecode() -> None:
    namespace: dict[str, Any] = {}
    exec("def made(x):\n    return x + 1\n", namespace)
    exec("def other(x):\n    return x + 2\n", namespace)

    made = task(cache_policy=TASK_SOURCE)(namespace["made"])
    other = task(cache_policy=TASK_SOURCE)(namespace["other"])

    assert made.source_hash != other.source_hash
    assert made(1) == 2


def test_no_cache_never_caches(flavor: Flavor, store: MemoryCacheStore) -> None:
    counter, fn = counted(flavor)
    t = task(cache_policy=NO_CACHE, cache_store=store)(fn)

    flavor.call(t, 1)
    flavor.call(t, 1)

    assert counter.calls == 2
    assert len(store) == 0


def test_inputs_plus_task_source_keys_on_both(store: MemoryCacheStore) -> None:
    counter = Counter()
    policy = INPUTS + TASK_SOURCE
    t = task(cache_policy=policy, cache_store=store)(counter)

    t(1)
    t(1)
    t(2)

    assert counter.calls == 2
    assert repr(policy) == "INPUTS + TASK_SOURCE"
    assert isinstance(policy, CachePolicy)


def test_no_cache_in_a_combination_disables_caching(store: MemoryCacheStore) -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS + NO_CACHE, cache_store=store)(counter)

    t(1)
    t(1)

    assert counter.calls == 2


def test_combinations_flatten() -> None:
    policy = (INPUTS + TASK_SOURCE) + (NO_CACHE + (INPUTS - "x"))

    assert repr(policy) == "INPUTS + TASK_SOURCE + NO_CACHE + INPUTS - 'x'"


def test_a_policy_plus_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        INPUTS + "x"  # type: ignore[operator]


# --- cache_key_fn ----------------------------------------------------------------------------


def test_cache_key_fn_gets_the_run_and_the_arguments(
    flavor: Flavor, store: MemoryCacheStore
) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []

    def key(context: TaskRun, args: dict[str, Any]) -> str:
        seen.append((context, args))
        return f"{context.task_name}-{args['x'] % 2}"

    counter, fn = counted(flavor)
    t = task(cache_key_fn=key, cache_store=store)(fn)

    assert flavor.call(t, 1) == (1, 0, 1)
    assert flavor.call(t, 3) == (1, 0, 1)  # same parity, same key
    assert flavor.call(t, 2) == (2, 0, 2)
    assert counter.calls == 2
    context, args = seen[0]
    assert isinstance(context, TaskRun)
    assert context.task is t
    assert args == {"x": 1, "y": 0}
    assert store.get("add-1") is not None


def test_cache_key_fn_returning_none_runs_uncached(store: MemoryCacheStore) -> None:
    counter = Counter()
    t = task(cache_key_fn=lambda context, args: None, cache_store=store)(counter)

    t(1)
    t(1)

    assert counter.calls == 2


def test_cache_key_fn_combines_with_a_policy(store: MemoryCacheStore) -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS, cache_key_fn=lambda c, a: "v1", cache_store=store)(counter)

    t(1)
    t(1)
    t(2)

    assert counter.calls == 2
    assert "cache_key_fn" in repr(t.cache_policy)


def test_cache_key_fn_must_return_a_string(store: MemoryCacheStore) -> None:
    t = task(cache_key_fn=lambda c, a: 42, cache_store=store)(Counter())  # type: ignore[arg-type,return-value]

    with pytest.warns(CacheKeyWarning, match="must return a str or None, got int"):
        assert t(1) == (1, 0, 1)
    with pytest.warns(CacheKeyWarning):
        assert t(1) == (1, 0, 2)  # ran again: nothing was cached
    assert len(store) == 0


def test_a_raising_cache_key_fn_runs_the_task_uncached_and_says_why(
    store: MemoryCacheStore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_key(context: object, args: dict[str, object]) -> str:
        raise KeyError("tenant")

    t = task(cache_key_fn=broken_key, cache_store=store)(Counter())

    with pytest.warns(CacheKeyWarning, match="raised KeyError"):
        assert t(1) == (1, 0, 1)
    assert "computing the cache key of task Counter raised" in caplog.text
    assert len(store) == 0


def test_equal_inputs_of_two_tasks_never_share_a_cache_entry(store: MemoryCacheStore) -> None:
    def double(x: int) -> int:
        return 2 * x

    def square(x: int) -> int:
        return x * x

    d = task(cache_policy=INPUTS, cache_store=store)(double)
    s = task(cache_policy=INPUTS, cache_store=store)(square)

    assert d(5) == 10
    assert s(5) == 25
    assert len(store) == 2


def test_a_cache_key_fn_alone_lets_tasks_share_entries_on_purpose(store: MemoryCacheStore) -> None:
    def key(context: object, args: dict[str, object]) -> str:
        return f"x={args['x']}"

    first = task(cache_key_fn=key, cache_store=store)(lambda x: f"first {x}")
    second = task(cache_key_fn=key, cache_store=store)(lambda x: f"second {x}")

    assert first(1) == "first 1"
    assert second(1) == "first 1"


# --- expiration and refresh ------------------------------------------------------------------


def test_cache_expiration(flavor: Flavor, store: MemoryCacheStore, wall_clock: WallClock) -> None:
    counter, fn = counted(flavor)
    t = task(cache_policy=INPUTS, cache_expiration=60, cache_store=store)(fn)

    flavor.call(t, 1)
    wall_clock.advance(59)
    assert flavor.state(t, 1).name == "Cached"
    wall_clock.advance(1)
    assert flavor.state(t, 1).name == "Completed"
    assert counter.calls == 2
    assert flavor.state(t, 1).name == "Cached"  # the new result is cached anew


def test_cache_expiration_as_timedelta(store: MemoryCacheStore, wall_clock: WallClock) -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1), cache_store=store)(counter)

    t(1)
    key = next(iter(store._entries))
    entry = store.get(key)
    assert entry is not None
    assert entry.created_at == wall_clock.now
    assert entry.expires_at == wall_clock.now + 3600
    wall_clock.advance(3600)
    t(1)
    assert counter.calls == 2


def test_no_expiration_by_default(store: MemoryCacheStore, wall_clock: WallClock) -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS, cache_store=store)(counter)

    t(1)
    wall_clock.advance(10 * 365 * 86400)
    t(1)

    assert counter.calls == 1


def test_an_expired_entry_from_a_store_is_not_served(wall_clock: WallClock) -> None:
    class Stale:
        def get(self, key: str) -> CacheEntry | None:
            return CacheEntry("stale", created_at=0, expires_at=wall_clock.now - 1)

        def put(self, key: str, entry: CacheEntry) -> None:
            pass

    t = task(cache_policy=INPUTS, cache_store=Stale())(lambda x: "fresh")

    assert t(1) == "fresh"


def test_refresh_cache_runs_and_replaces_the_entry(flavor: Flavor, store: MemoryCacheStore) -> None:
    counter, fn = counted(flavor)
    t = task(cache_policy=INPUTS, cache_store=store)(fn)
    refreshing = t.with_options(refresh_cache=True)

    assert flavor.call(t, 1) == (1, 0, 1)
    assert flavor.call(refreshing, 1) == (1, 0, 2)
    assert flavor.call(refreshing, 1) == (1, 0, 3)
    assert flavor.call(t, 1) == (1, 0, 3)  # the refreshed result is what is cached now
    assert counter.calls == 3


# --- failures and skips ----------------------------------------------------------------------


def test_a_failed_run_is_never_cached(
    flavor: Flavor, store: MemoryCacheStore, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError, ValueError, "ok")
    t = task(cache_policy=INPUTS, cache_store=store)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t, 1)
    assert len(store) == 0
    with pytest.raises(ValueError, match="failure"):
        flavor.call(t, 1)  # not served from the cache: the function ran again
    assert script.calls == 2
    assert flavor.call(t, 1) == "ok"
    assert flavor.state(t, 1).name == "Cached"
    assert script.calls == 3


def test_a_run_that_succeeds_after_retries_is_cached(
    flavor: Flavor, store: MemoryCacheStore, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError, "ok")
    t = task(retries=1, cache_policy=INPUTS, cache_store=store)(flavor.function(script))

    assert flavor.call(t, 1) == "ok"
    assert flavor.call(t, 1) == "ok"
    assert script.calls == 2


def test_a_skipped_run_is_not_cached(flavor: Flavor, store: MemoryCacheStore) -> None:
    script = Script(Skip("not now", result="skip"), "done")
    t = task(cache_policy=INPUTS, cache_store=store)(flavor.function(script))

    assert flavor.call(t, 1) == "skip"
    assert len(store) == 0
    assert flavor.call(t, 1) == "done"
    assert flavor.call(t, 1) == "done"
    assert script.calls == 2


def test_a_cache_hit_does_not_retry_or_fail(store: MemoryCacheStore) -> None:
    script = Script("ok", ValueError)
    t = task(retries=2, cache_policy=INPUTS, cache_store=store)(lambda x: script.step())

    t(1)
    assert t(1) == "ok"
    assert script.calls == 1


# --- stores ----------------------------------------------------------------------------------


class DictStore:
    """A custom store: any object with get() and put()."""

    def __init__(self) -> None:
        self.entries: dict[str, CacheEntry] = {}
        self.gets: list[str] = []

    def get(self, key: str) -> CacheEntry | None:
        self.gets.append(key)
        return self.entries.get(key)

    def put(self, key: str, entry: CacheEntry) -> None:
        self.entries[key] = entry


def test_a_custom_store(flavor: Flavor) -> None:
    custom = DictStore()
    counter, fn = counted(flavor)
    t = task(cache_policy=INPUTS, cache_store=custom)(fn)

    flavor.call(t, 1)
    flavor.call(t, 1)

    assert isinstance(custom, CacheStore)
    assert t.cache_store is custom
    assert counter.calls == 1
    assert len(custom.entries) == 1
    [entry] = custom.entries.values()
    assert entry.value == (1, 0, 1)
    assert entry.expires_at is None
    assert len(custom.gets) == 2


def test_a_store_entry_put_by_hand_is_served() -> None:
    custom = DictStore()
    custom.entries["by-hand"] = CacheEntry("prepared", created_at=0)
    t = task(cache_key_fn=lambda c, a: "by-hand", cache_store=custom)(lambda: "computed")

    assert t() == "prepared"


def test_an_empty_memory_store_given_is_the_store_used(store: MemoryCacheStore) -> None:
    assert len(store) == 0
    t = task(cache_policy=INPUTS, cache_store=store)(Counter())

    t(1)

    assert t.cache_store is store
    assert len(store) == 1
    assert len(DEFAULT_CACHE_STORE) == 0


def test_tasks_share_the_default_store() -> None:
    counter = Counter()
    t = task(cache_policy=INPUTS)(counter)

    t(1)
    t(1)

    assert t.cache_store is DEFAULT_CACHE_STORE
    assert len(DEFAULT_CACHE_STORE) == 1
    assert counter.calls == 1


def test_memory_store_drops_expired_entries(wall_clock: WallClock) -> None:
    memory = MemoryCacheStore()
    memory.put("old", CacheEntry(1, created_at=0, expires_at=wall_clock.now))
    memory.put("new", CacheEntry(2, created_at=0, expires_at=wall_clock.now + 1))
    memory.put("forever", CacheEntry(3, created_at=0))

    assert memory.get("old") is None
    assert len(memory) == 2
    assert memory.get("new") == CacheEntry(2, created_at=0, expires_at=wall_clock.now + 1)
    assert memory.get("missing") is None
    memory.put("forever", CacheEntry(4, created_at=1))
    entry = memory.get("forever")
    assert entry is not None
    assert entry.value == 4
    memory.clear()
    assert len(memory) == 0


def test_cache_entry_freshness() -> None:
    assert CacheEntry(1, 0).is_fresh(1e12)
    assert CacheEntry(1, 0, expires_at=10).is_fresh(9.9)
    assert not CacheEntry(1, 0, expires_at=10).is_fresh(10)


def test_a_store_without_get_and_put_is_refused() -> None:
    with pytest.raises(TypeError, match="cache_store"):
        task(cache_store=object())(Counter())  # type: ignore[arg-type]
