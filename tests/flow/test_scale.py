"""Flows at scale: ten thousand mapped runs, a thousand-long chain, a thousand-wide fan-in.

Each finishes well within a second or two here; none is timed, each is checked for the
results and the state of every run.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest

from reflow import concurrency_limit, flow, task
from reflow.executors import InlineExecutor, ProcessExecutor, ThreadExecutor

MAP_SIZE = 10_000
CHAIN = 1_000
BOUND = 30.0


@task
def inc(x: int) -> int:
    return x + 1


@task
async def ainc(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


@task
def total(values: list[int]) -> int:
    return sum(values)


EXECUTORS = [
    pytest.param(None, id="default"),
    pytest.param(lambda: InlineExecutor(), id="inline"),
    pytest.param(lambda: ThreadExecutor(8), id="thread8"),
]


def executor_of(make: Any) -> Any:
    return None if make is None else make()


# --- a big map -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", EXECUTORS)
def test_a_ten_thousand_element_map_completes(make: Any) -> None:
    @flow(executor=executor_of(make))
    def pipeline() -> list[int]:
        return inc.map(range(MAP_SIZE)).result()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed"
    assert flow_run.result() == list(range(1, MAP_SIZE + 1))
    runs = flow_run.task_runs
    assert len(runs) == MAP_SIZE
    assert all(r.state.name == "Completed" for r in runs)
    assert [r.key for r in runs[:2]] == ["inc-0[0]", "inc-0[1]"]
    assert runs[-1].key == f"inc-0[{MAP_SIZE - 1}]"
    assert len({r.id for r in runs}) == MAP_SIZE


async def test_a_ten_thousand_element_async_map_completes() -> None:
    @flow
    async def pipeline() -> list[int]:
        return [await f for f in ainc.map(range(MAP_SIZE))]

    flow_run = await pipeline.run()

    assert flow_run.result() == list(range(1, MAP_SIZE + 1))
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)


def test_a_ten_thousand_element_map_of_maps() -> None:
    @flow
    def pipeline() -> list[int]:
        once = inc.map(range(MAP_SIZE))
        return inc.map(once).result()  # mapped over the first map's results

    assert pipeline() == list(range(2, MAP_SIZE + 2))


@pytest.mark.slow
def test_a_ten_thousand_element_map_on_worker_processes() -> None:
    @flow(executor=ProcessExecutor(2))
    def pipeline() -> list[int]:
        return inc.map(range(MAP_SIZE)).result()

    flow_run = pipeline.run()

    assert flow_run.result() == list(range(1, MAP_SIZE + 1))
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)


@pytest.mark.parametrize("make", EXECUTORS)
def test_ten_thousand_runs_through_a_concurrency_limit(make: Any) -> None:
    lock = threading.Lock()
    running, most = [0], [0]

    @task(tags=["scale-limited"])
    def counted(x: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        with lock:
            running[0] -= 1
        return x + 1

    @flow(executor=executor_of(make))
    def pipeline() -> list[int]:
        return counted.map(range(MAP_SIZE)).result()

    with concurrency_limit("scale-limited", 2):
        flow_run = pipeline.run()

    assert flow_run.result() == list(range(1, MAP_SIZE + 1))
    assert most[0] <= 2


def test_a_flow_returning_a_map_gets_its_values() -> None:
    @flow
    def pipeline() -> list[int]:
        return inc.map(range(MAP_SIZE))  # type: ignore[return-value]

    assert pipeline() == list(range(1, MAP_SIZE + 1))


def test_a_flow_returning_a_map_with_a_failed_element_fails() -> None:
    @task
    def fragile(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    @task
    def cleanup() -> str:
        return "clean"

    @flow(reference_tasks=[cleanup])  # only the returned map can fail it
    def pipeline() -> list[int]:
        cleanup.submit()
        return fragile.map(range(10))  # type: ignore[return-value]

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, ValueError)


# --- a long chain ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", EXECUTORS)
def test_a_thousand_long_chain_of_submitted_tasks(make: Any) -> None:
    gate = threading.Event()

    @task
    def first() -> int:
        assert gate.wait(BOUND)
        return 0

    executor = executor_of(make)
    if isinstance(executor, InlineExecutor):
        gate.set()  # it runs `first` inside submit(): nothing can wait for a later gate

    @flow(executor=executor)
    def pipeline() -> int:
        future = first.submit()
        for _ in range(CHAIN):
            future = inc.submit(future)
        gate.set()  # only now does the first link end: every later one starts from a callback
        return future.result()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed"
    assert flow_run.result() == CHAIN
    runs = flow_run.task_runs
    assert len(runs) == CHAIN + 1
    assert all(r.state.name == "Completed" for r in runs)
    for upstream, downstream in itertools.pairwise(runs):
        assert downstream.upstream == (upstream.id,)
    assert flow_run.graph().count(" --> ") == CHAIN


async def test_a_thousand_long_chain_of_async_tasks() -> None:
    gate = asyncio.Event()

    @task
    async def first() -> int:
        async with asyncio.timeout(BOUND):
            await gate.wait()
        return 0

    @flow
    async def pipeline() -> int:
        future = first.submit()
        for _ in range(CHAIN):
            future = ainc.submit(future)
        gate.set()
        return await future

    flow_run = await pipeline.run()

    assert flow_run.result() == CHAIN
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)


def test_a_thousand_long_chain_alternating_sync_and_async_tasks() -> None:
    gate = threading.Event()

    @task
    def first() -> int:
        assert gate.wait(BOUND)
        return 0

    @flow
    def pipeline() -> int:
        future = first.submit()
        for i in range(CHAIN):
            future = (inc if i % 2 else ainc).submit(future)
        gate.set()
        return future.result()

    assert pipeline() == CHAIN


def test_a_thousand_long_chain_of_direct_calls() -> None:
    @flow
    def pipeline() -> int:
        value = 0
        for _ in range(CHAIN):
            value = inc(value)
        return value

    flow_run = pipeline.run()

    assert flow_run.result() == CHAIN
    assert [r.key for r in flow_run.task_runs[-2:]] == [f"inc-{CHAIN - 2}", f"inc-{CHAIN - 1}"]


# --- a wide fan-in ---------------------------------------------------------------------------


def test_one_task_waits_for_a_thousand_futures_in_a_list() -> None:
    gate = threading.Event()

    @task
    def gated(x: int) -> int:
        assert gate.wait(BOUND)
        return x

    @flow(executor=ThreadExecutor(8))
    def pipeline() -> int:
        futures = [gated.submit(i) for i in range(CHAIN)]
        summed = total.submit(futures)
        gate.set()
        return summed.result()

    flow_run = pipeline.run()

    assert flow_run.result() == sum(range(CHAIN))
    (summed,) = [r for r in flow_run.task_runs if r.task_name == "total"]
    assert len(summed.upstream) == CHAIN
