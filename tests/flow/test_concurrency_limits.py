"""`reflow.concurrency_limit(tag, n)`: at most `n` runs of tasks tagged `tag` at once.

A `Gauge` counts the runs inside a tagged task (under a lock) and keeps the most at once. That
the limit is reached, not only respected, is proven with barriers: runs meet in groups of the
limit's size, which they can only do if that many run at the same time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import reflow
from reflow import concurrency_limit, flow, task
from reflow.executors import InlineExecutor, ThreadExecutor
from reflow.task import limits

BOUND = 30.0
"""A safety bound (seconds) on every wait: a limit that is wrong fails a test, never hangs it."""

_tags = itertools.count()


@pytest.fixture
def tag() -> str:
    """A tag of the test's own (limits are process-wide)."""
    return f"limited-{next(_tags)}"


@pytest.fixture(autouse=True)
def _no_limit_outlives_its_test() -> Iterator[None]:
    before = dict(limits.registry)
    yield
    leaked = set(limits.registry) - set(before)
    for name in leaked:
        limits.registry.pop(name, None)
    assert not leaked, f"limits left in force: {leaked}"


class Gauge:
    """How many runs are inside at once (now, and the most ever)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.entered = 0

    def __enter__(self) -> Gauge:
        with self._lock:
            self.now += 1
            self.entered += 1
            self.most = max(self.most, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


def paired_task(tag: str, gauge: Gauge, group: int = 2, **options: Any) -> Any:
    """A task tagged `tag` whose runs meet in groups of `group` inside the gauge."""
    barrier = threading.Barrier(group, timeout=BOUND)

    @task(tags=[tag], **options)
    def paired(i: int) -> int:
        with gauge:
            barrier.wait()
        return i

    return paired


def async_paired_task(tag: str, gauge: Gauge, group: int = 2) -> Any:
    barrier = asyncio.Barrier(group)

    @task(tags=[tag])
    async def paired(i: int) -> int:
        with gauge:
            async with asyncio.timeout(BOUND):
                await barrier.wait()
        return i

    return paired


# --- the limit holds, and is reached -------------------------------------------------------


def test_submitted_tagged_tasks_never_exceed_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = paired_task(tag, gauge)

    @flow(executor=ThreadExecutor(8))
    def pipeline() -> list[int]:
        futures = [paired.submit(i) for i in range(20)]
        return [f.result() for f in futures]

    with concurrency_limit(tag, 2):
        flow_run = pipeline.run()

    assert flow_run.result() == list(range(20))
    assert gauge.entered == 20
    assert gauge.most == 2
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)


def test_mapped_tagged_tasks_never_exceed_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = paired_task(tag, gauge, group=3)

    @flow(executor=ThreadExecutor(8))
    def pipeline() -> list[int]:
        return paired.map(range(21)).result()

    with concurrency_limit(tag, 3):
        assert pipeline() == list(range(21))

    assert gauge.most == 3


def test_a_limit_of_one_serialises_tagged_tasks(tag: str) -> None:
    gauge = Gauge()

    @task(tags=[tag])
    def alone(i: int) -> int:
        with gauge:
            return i

    @flow(executor=ThreadExecutor(8))
    def pipeline() -> list[int]:
        return alone.map(range(50)).result()

    with concurrency_limit(tag, 1):
        assert pipeline() == list(range(50))

    assert gauge.most == 1


async def test_async_tagged_tasks_never_exceed_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = async_paired_task(tag, gauge)

    @flow
    async def pipeline() -> list[int]:
        futures = [paired.submit(i) for i in range(20)]
        return [await f for f in futures]

    with concurrency_limit(tag, 2):
        assert await pipeline() == list(range(20))

    assert gauge.entered == 20
    assert gauge.most == 2


async def test_gathered_direct_async_calls_in_a_flow_never_exceed_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = async_paired_task(tag, gauge)

    @flow
    async def pipeline() -> list[int]:
        return list(await asyncio.gather(*[paired(i) for i in range(20)]))

    with concurrency_limit(tag, 2):
        assert await pipeline() == list(range(20))

    assert gauge.most == 2


def test_async_tagged_tasks_from_a_sync_flow_never_exceed_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = async_paired_task(tag, gauge)

    @flow
    def pipeline() -> list[int]:
        return paired.map(range(20)).result()

    with concurrency_limit(tag, 2):
        assert pipeline() == list(range(20))

    assert gauge.most == 2


def test_direct_calls_outside_flows_from_several_threads_never_exceed_the_limit(
    tag: str,
) -> None:
    gauge = Gauge()
    paired = paired_task(tag, gauge)

    with concurrency_limit(tag, 2), concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(paired, range(12), timeout=BOUND))

    assert results == list(range(12))
    assert gauge.most == 2


async def test_direct_async_calls_outside_flows_never_exceed_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = async_paired_task(tag, gauge)

    with concurrency_limit(tag, 2):
        results = await asyncio.gather(*[paired(i) for i in range(12)])

    assert results == list(range(12))
    assert gauge.most == 2


def test_the_limit_holds_across_flow_runs_at_once(tag: str) -> None:
    gauge = Gauge()
    paired = paired_task(tag, gauge)

    @flow(executor=ThreadExecutor(4))
    def pipeline(start: int) -> list[int]:
        return paired.map(range(start, start + 5)).result()

    with concurrency_limit(tag, 2), concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(pipeline, start) for start in (0, 5)]  # 10 runs in all: 5 pairs
        results = [run.result(BOUND) for run in runs]

    assert results == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert gauge.most == 2


def test_untagged_and_other_tags_are_not_limited(tag: str) -> None:
    gauge = Gauge()
    meet = threading.Barrier(3, timeout=BOUND)

    @task
    def untagged(i: int) -> int:
        with gauge:
            meet.wait()
        return i

    @task(tags=["not-" + tag])
    def other(i: int) -> int:
        with gauge:
            meet.wait()
        return i

    @flow(executor=ThreadExecutor(6))
    def pipeline() -> list[int]:
        return untagged.map(range(3)).result() + other.map(range(3)).result()

    with concurrency_limit(tag, 1):
        assert pipeline() == [0, 1, 2, 0, 1, 2]

    assert gauge.most == 3


def test_a_limited_flow_on_the_inline_executor_completes(tag: str) -> None:
    gauge = Gauge()

    @task(tags=[tag])
    def counted(i: int) -> int:
        with gauge:
            return i * i

    @flow(executor=InlineExecutor())
    def pipeline() -> list[int]:
        return counted.map(range(10)).result()

    with concurrency_limit(tag, 1):
        assert pipeline() == [i * i for i in range(10)]
    assert gauge.most == 1


# --- scoping, removing, changing ---------------------------------------------------------------


def three_meet(tag: str) -> list[int]:
    """Run three tagged tasks that can only finish if all three run at once."""
    meet = threading.Barrier(3, timeout=BOUND)

    @task(tags=[tag])
    def together(i: int) -> int:
        meet.wait()
        return i

    @flow(executor=ThreadExecutor(3))
    def pipeline() -> list[int]:
        return together.map(range(3)).result()

    return pipeline()


def test_the_with_block_scopes_the_limit(tag: str) -> None:
    gauge = Gauge()
    paired = paired_task(tag, gauge)

    with concurrency_limit(tag, 2) as handle:
        assert handle.tag == tag
        assert handle.limit == 2
        assert tag in repr(handle)
        assert tag in limits.registry
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(paired, range(8), timeout=BOUND))
    assert gauge.most == 2

    assert tag not in limits.registry
    assert three_meet(tag) == [0, 1, 2]  # three at once: no limit any more


def test_remove_ends_the_limit(tag: str) -> None:
    handle = concurrency_limit(tag, 1)
    handle.remove()

    assert tag not in limits.registry
    assert three_meet(tag) == [0, 1, 2]
    handle.remove()  # a second time is harmless


def test_nested_limits_on_one_tag_restore_the_outer_one(tag: str) -> None:
    with concurrency_limit(tag, 2):
        with concurrency_limit(tag, 1):
            gauge = Gauge()

            @task(tags=[tag])
            def counted(i: int) -> int:
                with gauge:
                    return i

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(counted, range(20), timeout=BOUND))
            assert gauge.most == 1

        assert limits.registry[tag].limit == 2
        outer_gauge = Gauge()
        paired = paired_task(tag, outer_gauge)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(paired, range(8), timeout=BOUND))
        assert outer_gauge.most == 2

    assert tag not in limits.registry


def test_a_task_with_several_limited_tags_respects_the_tightest(tag: str) -> None:
    wide, narrow = f"{tag}-wide", f"{tag}-narrow"
    gauge = Gauge()

    @task(tags=[wide, narrow])
    def both(i: int) -> int:
        with gauge:
            return i

    @flow(executor=ThreadExecutor(8))
    def pipeline() -> list[int]:
        return both.map(range(30)).result()

    with concurrency_limit(wide, 5), concurrency_limit(narrow, 1):
        assert pipeline() == list(range(30))

    assert gauge.most == 1


def test_tasks_sharing_one_tag_share_its_limit(tag: str) -> None:
    gauge = Gauge()
    pairs = threading.Barrier(2, timeout=BOUND)

    @task(tags=[tag])
    def reader(i: int) -> str:
        with gauge:
            pairs.wait()
        return f"r{i}"

    @task(tags=[tag, f"{tag}-writes"])
    def writer(i: int) -> str:
        with gauge:
            pairs.wait()
        return f"w{i}"

    @flow(executor=ThreadExecutor(8))
    def pipeline() -> list[str]:
        reads = reader.map(range(6))
        writes = writer.map(range(6))
        return reads.result() + writes.result()

    with concurrency_limit(tag, 2):
        assert pipeline() == [f"r{i}" for i in range(6)] + [f"w{i}" for i in range(6)]

    assert gauge.most == 2


def test_raising_the_limit_at_runtime_starts_parked_runs(tag: str) -> None:
    meet = threading.Barrier(3, timeout=BOUND)  # needs all three runs at once

    @task(tags=[tag])
    def together(i: int) -> int:
        meet.wait()
        return i

    @flow(executor=ThreadExecutor(4))
    def pipeline() -> list[int]:
        futures = [together.submit(i) for i in range(3)]
        # One run holds the only slot (waiting at the barrier); two are parked, not started.
        assert [f.state.name for f in futures].count("Pending") >= 2
        concurrency_limit(tag, 3)  # raised while they wait
        return [f.result() for f in futures]

    with concurrency_limit(tag, 1):
        flow_run = pipeline.run()

    assert flow_run.result() == [0, 1, 2]


def test_removing_the_limit_at_runtime_starts_parked_runs(tag: str) -> None:
    meet = threading.Barrier(3, timeout=BOUND)
    handle = concurrency_limit(tag, 1)

    @task(tags=[tag])
    def together(i: int) -> int:
        meet.wait()
        return i

    @flow(executor=ThreadExecutor(4))
    def pipeline() -> list[int]:
        futures = [together.submit(i) for i in range(3)]
        handle.remove()
        return [f.result() for f in futures]

    assert pipeline() == [0, 1, 2]
    assert tag not in limits.registry


def test_a_direct_call_waiting_for_a_slot_starts_when_the_limit_is_raised(tag: str) -> None:
    meet = threading.Barrier(2, timeout=BOUND)
    holding = threading.Event()

    @task(tags=[tag])
    def together(i: int) -> int:
        holding.set()
        meet.wait()
        return i

    with concurrency_limit(tag, 1), concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(together, 1)
        assert holding.wait(BOUND)  # the first call holds the slot, waiting for the second
        second = pool.submit(together, 2)  # which waits for a slot until the limit goes up
        concurrency_limit(tag, 2)
        assert (first.result(BOUND), second.result(BOUND)) == (1, 2)


def test_failed_and_retried_runs_give_their_slots_back(tag: str) -> None:
    attempts = Gauge()

    @task(tags=[tag], retries=1)
    def failing(i: int) -> int:
        with attempts:
            raise ValueError(i)

    @flow(executor=ThreadExecutor(4))
    def pipeline() -> None:
        failing.map(range(5))

    with concurrency_limit(tag, 1):
        flow_run = pipeline.run()
        assert [r.state.name for r in flow_run.task_runs] == ["Failed"] * 5
        assert attempts.entered == 10
        assert attempts.most == 1
        assert three_meet_with_limit(tag, 3) == [0, 1, 2]  # every slot is free again


def test_a_cancelled_flow_run_ends_its_parked_runs_and_gives_the_slots_back(tag: str) -> None:
    holding, release = threading.Event(), threading.Event()

    @task(tags=[tag])
    def hold(i: int) -> int:
        if i == 0:
            holding.set()
            assert release.wait(BOUND)
        return i

    @flow(executor=ThreadExecutor(4))
    def pipeline() -> None:
        for i in range(3):
            hold.submit(i)  # run 0 takes the slot, runs 1 and 2 are parked
        assert holding.wait(BOUND)  # run 0 is running: the cancel cannot stop it
        run = reflow.get_run_context().flow_run
        assert run is not None
        run.cancel()
        release.set()

    with concurrency_limit(tag, 1):
        flow_run = pipeline.run()
        assert flow_run.state.name == "Cancelled"
        assert [r.state.name for r in flow_run.task_runs] == ["Completed", "Cancelled", "Cancelled"]
        assert three_meet_with_limit(tag, 3) == [0, 1, 2]


def three_meet_with_limit(tag: str, limit: int) -> list[int]:
    """`three_meet` under a raised limit (restored after)."""
    with concurrency_limit(tag, limit):
        return three_meet(tag)


# --- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, "-1", "2", True, False, 1.5, None])
def test_a_bad_limit_is_refused(tag: str, limit: Any) -> None:
    with pytest.raises(ValueError, match="whole number >= 1"):
        concurrency_limit(tag, limit)
    assert tag not in limits.registry


@pytest.mark.parametrize("bad_tag", ["", None, 3, b"db", ["db"]])
def test_a_bad_tag_is_refused(bad_tag: Any) -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        concurrency_limit(bad_tag, 2)


def test_the_top_level_name_is_the_same_function() -> None:
    assert reflow.concurrency_limit is limits.concurrency_limit


# --- a limit and a flow run that ends before its parked runs ---------------------------------


def test_a_timed_out_flow_with_parked_runs_gives_every_slot_back(tag: str) -> None:
    holding, release = threading.Event(), threading.Event()

    @task(tags=[tag])
    def hold(i: int) -> int:
        if i == 0:
            holding.set()
            release.wait(BOUND)
        return i

    @flow(timeout_seconds=0.2)
    def pipeline() -> None:
        for i in range(3):
            hold.submit(i)  # run 0 takes the slot, runs 1 and 2 are parked
        assert holding.wait(BOUND)
        never = threading.Event()
        for _ in range(int(BOUND / 0.01)):  # short waits: the timeout lands between them
            never.wait(0.01)

    concurrency_limit(tag, 1)
    try:
        flow_run = pipeline.run()
        assert flow_run.state.name == "TimedOut"
        assert [r.state.name for r in flow_run.task_runs][1:] == ["Cancelled", "Cancelled"]

        release.set()  # run 0 ends and gives its slot back
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            later = pool.submit(hold, 9)  # waits for the slot
            try:
                assert later.result(timeout=5) == 9, "the slot was never given back"
            finally:
                limits.registry.pop(tag, None)  # let a stuck call through
    finally:
        release.set()
        limits.registry.pop(tag, None)
