"""Async flows and async tasks: they run concurrently on the flow's event loop.

An async flow's tasks run on the loop that awaits it; async tasks submitted from a sync flow
run on a loop thread of that flow run. Overlap is proven, not timed: `N` tasks each wait for an
`asyncio.Event` that only the N-th to arrive sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

import reflow
from reflow import Future, flow, task
from reflow.executors import InlineExecutor, ThreadExecutor
from reflow.retry import AttemptTimeout
from tests._support import Script

N = 1000
BOUND = 30.0
"""A safety bound (seconds) on every wait: a run that does not overlap fails, never hangs."""


class Crowd:
    """Counts the tasks inside it; the `size`-th to arrive lets them all go."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.inside = 0
        self.most = 0
        self.arrived = 0
        self.all_here = asyncio.Event()
        self.loops: set[int] = set()
        self.threads: set[int] = set()

    async def gather_here(self) -> None:
        self.loops.add(id(asyncio.get_running_loop()))
        self.threads.add(threading.get_ident())
        self.inside += 1
        self.arrived += 1
        self.most = max(self.most, self.inside)
        if self.arrived == self.size:
            self.all_here.set()
        try:
            async with asyncio.timeout(BOUND):
                await self.all_here.wait()
        finally:
            self.inside -= 1


def crowd_task(crowd: Crowd) -> Any:
    @task
    async def meet(i: int) -> tuple[int, str | None]:
        await crowd.gather_here()
        run = reflow.get_run_context().task_run
        return 2 * i, run.key if run else None  # each task still sees its own run

    return meet


# --- many async tasks at once ----------------------------------------------------------------


async def test_an_async_flow_runs_a_thousand_submitted_async_tasks_at_once() -> None:
    crowd = Crowd(N)
    meet = crowd_task(crowd)

    @flow
    async def pipeline() -> list[tuple[int, str | None]]:
        futures = [meet.submit(i) for i in range(N)]
        return [await f for f in futures]

    flow_run = await pipeline.run()

    assert flow_run.state.name == "Completed"
    results = flow_run.result()
    assert [value for value, _ in results] == [2 * i for i in range(N)]
    assert [key for _, key in results] == [f"meet-{i}" for i in range(N)]
    assert crowd.most == N
    assert crowd.loops == {id(asyncio.get_running_loop())}  # the loop that awaited the flow
    assert crowd.threads == {threading.get_ident()}
    assert len(flow_run.task_runs) == N
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)


async def test_an_async_flow_gathers_a_thousand_direct_async_calls() -> None:
    crowd = Crowd(N)
    meet = crowd_task(crowd)

    @flow
    async def pipeline() -> list[tuple[int, str | None]]:
        return list(await asyncio.gather(*[meet(i) for i in range(N)]))

    flow_run = await pipeline.run()

    assert flow_run.state.name == "Completed"
    results = flow_run.result()
    assert [value for value, _ in results] == [2 * i for i in range(N)]
    assert sorted(key for _, key in results) == sorted(f"meet-{i}" for i in range(N))
    assert crowd.most == N
    assert len(flow_run.task_runs) == N


async def test_an_async_flow_maps_an_async_task() -> None:
    crowd = Crowd(N)
    meet = crowd_task(crowd)

    @flow
    async def pipeline() -> list[int]:
        mapped = meet.map(range(N))
        return [(await f)[0] for f in mapped]

    assert await pipeline() == [2 * i for i in range(N)]
    assert crowd.most == N


@pytest.mark.parametrize(
    "executor", [None, InlineExecutor(), ThreadExecutor(2)], ids=["default", "inline", "thread"]
)
def test_async_tasks_submitted_from_a_sync_flow_run_on_its_event_loop_thread(
    executor: Any,
) -> None:
    crowd = Crowd(N)
    meet = crowd_task(crowd)

    @flow(executor=executor)
    def pipeline() -> tuple[list[int], int]:
        futures = [meet.submit(i) for i in range(N)]
        return [f.result()[0] for f in futures], threading.get_ident()

    values, flow_thread = pipeline()

    assert values == [2 * i for i in range(N)]
    assert crowd.most == N
    assert len(crowd.loops) == 1  # one loop for the whole flow run
    (loop_thread,) = crowd.threads
    assert loop_thread != flow_thread


def test_every_sync_flow_run_gets_its_own_event_loop_closed_after_it() -> None:
    @task
    async def where() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        return asyncio.get_running_loop(), threading.current_thread()

    @flow
    def pipeline() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        return where.submit().result()

    (loop1, thread1), (loop2, thread2) = pipeline(), pipeline()

    assert loop1 is not loop2
    assert loop1.is_closed()
    assert loop2.is_closed()
    assert not thread1.is_alive()
    assert not thread2.is_alive()


# --- mixing sync and async -------------------------------------------------------------------


def test_an_async_task_called_directly_in_a_sync_flow_runs_on_its_loop() -> None:
    @task
    async def where(x: int) -> tuple[int, int]:
        await asyncio.sleep(0)
        return x + 1, threading.get_ident()

    @task
    async def fails(x: int) -> int:
        raise KeyError(x)

    seen: dict[str, int] = {}

    @flow
    def pipeline() -> None:
        first, seen["direct"] = where(1)  # a value, not a coroutine
        seen["value"], seen["submitted"] = where.submit(first).result()
        seen["flow"] = threading.get_ident()
        with pytest.raises(KeyError):
            fails(3)

    flow_run = pipeline.run()

    assert seen["value"] == 3
    assert seen["direct"] == seen["submitted"]  # the flow run's one event loop thread
    assert seen["direct"] != seen["flow"]
    assert [r.key for r in flow_run.task_runs] == ["where-0", "where-1", "fails-0"]
    assert isinstance(flow_run.state.exception, KeyError)  # fails-0 is a terminal run
    assert [r.state.name for r in flow_run.task_runs] == ["Completed", "Completed", "Failed"]


async def test_sync_tasks_in_an_async_flow() -> None:
    @task
    def where(x: int) -> tuple[int, int]:
        return x + 1, threading.get_ident()

    @flow(executor=ThreadExecutor(2))
    async def pipeline() -> tuple[int, int, int, int]:
        direct, direct_thread = where(1)
        submitted, submitted_thread = await where.submit(direct)
        return direct, submitted, direct_thread, submitted_thread

    direct, submitted, direct_thread, submitted_thread = await pipeline()

    assert (direct, submitted) == (2, 3)
    assert direct_thread == threading.get_ident()  # a direct call runs where the flow runs
    assert submitted_thread != threading.get_ident()  # a submitted one goes to the executor


async def test_futures_chain_across_sync_and_async_tasks() -> None:
    @task
    async def aplus(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @task
    def times(x: int) -> int:
        return x * 10

    @flow
    async def pipeline() -> int:
        a = aplus.submit(1)  # 2
        b = times.submit(a)  # 20
        c = aplus.submit(b)  # 21
        return await times.submit(c)  # 210

    flow_run = await pipeline.run()

    assert flow_run.result() == 210
    runs = {r.key: r for r in flow_run.task_runs}
    assert runs["times-1"].upstream == (runs["aplus-1"].id,)
    assert runs["aplus-1"].upstream == (runs["times-0"].id,)


async def test_awaiting_a_failed_future_raises_its_exception() -> None:
    @task
    async def fails(x: int) -> int:
        await asyncio.sleep(0)
        raise KeyError(x)

    @task
    def fails_sync(x: int) -> int:
        raise LookupError(x)

    @flow
    async def pipeline() -> str:
        with pytest.raises(KeyError):
            await fails.submit(1)
        with pytest.raises(LookupError):
            await fails_sync.submit(2)
        return "caught"

    flow_run = await pipeline.run()

    assert flow_run.state.is_failed()  # the failed runs are terminal
    assert [r.state.name for r in flow_run.task_runs] == ["Failed", "Failed"]
    assert isinstance(flow_run.state.exception, KeyError)


async def test_await_future_does_not_block_the_loop() -> None:
    release = asyncio.Event()

    @task
    async def waits_for_release() -> str:
        async with asyncio.timeout(BOUND):
            await release.wait()
        return "released"

    @task
    async def releases() -> str:
        release.set()
        return "set"

    @flow
    async def pipeline() -> tuple[str, str]:
        waiting = waits_for_release.submit()
        setting = releases.submit()
        return await waiting, await setting  # awaiting the first must let the second run

    assert await pipeline() == ("released", "set")


# --- retries and timeouts --------------------------------------------------------------------


async def test_an_async_task_with_retries_in_a_flow() -> None:
    scripts = {i: Script(ValueError, i * 3) for i in range(3)}

    @task(retries=2)
    async def flaky(i: int) -> int:
        await asyncio.sleep(0)
        return scripts[i].step()  # type: ignore[no-any-return]

    @flow
    async def pipeline() -> list[int]:
        return [await f for f in flaky.map(range(3))]

    flow_run = await pipeline.run()

    assert flow_run.result() == [0, 3, 6]
    for run in flow_run.task_runs:
        assert [s.name for s in run.states] == [
            "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"
        ]  # fmt: skip
        assert [a.number for a in run.attempts] == [1, 2]
        first = run.attempts[0].state
        assert first is not None
        assert isinstance(first.exception, ValueError)
    assert [s.calls for s in scripts.values()] == [2, 2, 2]


def test_an_async_task_with_retries_in_a_sync_flow() -> None:
    script = Script(ValueError, ValueError, "third time")

    @task(retries=2)
    async def flaky() -> str:
        await asyncio.sleep(0)
        return script.step()  # type: ignore[no-any-return]

    @flow
    def pipeline() -> str:
        return flaky.submit().result()

    flow_run = pipeline.run()

    assert flow_run.result() == "third time"
    (run,) = flow_run.task_runs
    assert len(run.attempts) == 3


async def test_an_async_task_timing_out_in_a_flow_is_timed_out() -> None:
    @task(timeout_seconds=0.05)
    async def hangs() -> None:
        await asyncio.Event().wait()

    @task
    async def fine() -> str:
        return "fine"

    @flow
    async def pipeline() -> str:
        hangs.submit()
        return await fine.submit()

    flow_run = await pipeline.run()

    runs = {r.key: r for r in flow_run.task_runs}
    assert runs["hangs-0"].state.name == "TimedOut"
    assert isinstance(runs["hangs-0"].state.exception, AttemptTimeout)
    assert runs["fine-0"].state.name == "Completed"
    assert flow_run.state.is_failed()  # hangs-0 is a terminal run that did not complete


async def test_an_async_flow_is_retried() -> None:
    script = Script(RuntimeError, "ok")

    @task
    async def step(x: int) -> int:
        return x + 1

    @flow(retries=1)
    async def pipeline() -> Any:
        await step(1)
        return script.step()

    flow_run = await pipeline.run()

    assert flow_run.result() == "ok"
    assert flow_run.attempts == 2
    names = [s.name for s in flow_run.states]
    assert names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]


async def test_an_async_flow_with_tasks_in_flight_times_out() -> None:
    started = asyncio.Event()

    @task
    async def first() -> str:
        started.set()
        return "first"

    @flow(timeout_seconds=0.1)
    async def pipeline() -> None:
        first.submit()
        await asyncio.Event().wait()

    flow_run = await pipeline.run()

    assert started.is_set()
    assert flow_run.state.name == "TimedOut"
    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, AttemptTimeout)
    with pytest.raises(TimeoutError):
        await pipeline()


async def test_a_timed_out_async_flow_cancels_its_running_async_tasks() -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    futures: list[Future[Any]] = []

    @task
    async def waits() -> str:
        started.set()
        async with asyncio.timeout(BOUND):
            await release.wait()
        return "released"

    @flow(timeout_seconds=0.1)
    async def pipeline() -> None:
        futures.append(waits.submit())
        await asyncio.Event().wait()

    try:
        flow_run = await pipeline.run()

        assert started.is_set()
        assert flow_run.state.name == "TimedOut"
        (run,) = flow_run.task_runs
        assert run.state.is_final(), f"the flow run ended, its task run is {run.state.name}"
        assert run.state.name == "Cancelled"
    finally:
        release.set()  # leave nothing running on the test's loop
        for future in futures:
            with contextlib.suppress(Exception):
                await future
