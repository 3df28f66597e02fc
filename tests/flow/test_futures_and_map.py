"""Futures from `submit()`, upstream edges through arguments, `wait`/`as_completed`, and `map()`."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import pytest

import reflow
from reflow import Future, FutureList, flow, task, unmapped
from reflow.executors import ThreadExecutor
from reflow.states import State
from reflow.testing import VirtualClock


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def echo(value: Any) -> Any:
    return value


@task
def wait_on(gate: threading.Event, value: Any = None) -> Any:
    assert gate.wait(10), "the test never opened the gate"
    return value


def two_workers() -> ThreadExecutor:
    """Enough threads for a blocked task and the one that releases it."""
    return ThreadExecutor(max_workers=4)


# --- the Future API --------------------------------------------------------------------------


def test_submit_returns_a_future_with_the_result() -> None:
    seen: dict[str, Any] = {}

    @flow
    def pipeline() -> int:
        future = inc.submit(1)
        seen["future"] = future
        seen["result"] = future.result()
        seen["state"] = future.wait()
        seen["done"] = future.done()
        return future.result()

    assert pipeline() == 2
    future = seen["future"]
    assert isinstance(future, Future)
    assert seen["result"] == 2
    assert seen["state"].name == "Completed"
    assert seen["done"] is True
    assert future.state is future.task_run.state
    assert future.task_run.task_name == "inc"
    assert "inc" in repr(future)


def test_a_future_is_pending_until_its_upstream_is_done() -> None:
    gate = threading.Event()
    seen: dict[str, Any] = {}

    @flow(executor=two_workers())
    def pipeline() -> int:
        first = wait_on.submit(gate, 1)
        second = inc.submit(first)
        seen["before"] = (first.done(), second.done(), second.state.name)
        gate.set()
        return second.result()

    assert pipeline() == 2
    first_done, second_done, second_state = seen["before"]
    assert (first_done, second_done) == (False, False)
    assert second_state == "Pending"


def test_result_of_a_failed_future_raises_or_returns_the_exception() -> None:
    seen: dict[str, Any] = {}

    @task
    def broken() -> None:
        raise KeyError("nope")

    @flow
    def pipeline() -> None:
        future = broken.submit()
        state = future.wait()
        seen["state"] = state
        seen["quiet"] = future.result(raise_on_failure=False)
        try:
            future.result()
        except KeyError as exc:
            seen["raised"] = exc

    assert pipeline.run().state.is_failed()
    assert seen["state"].name == "Failed"
    assert isinstance(seen["quiet"], KeyError)
    assert seen["raised"] is seen["quiet"]


def test_result_with_a_timeout_raises_timeout_error_while_unfinished() -> None:
    gate = threading.Event()
    seen: dict[str, Any] = {}

    @flow(executor=two_workers())
    def pipeline() -> str:
        future = wait_on.submit(gate, "late")
        try:
            future.result(timeout=0.05)
        except TimeoutError as exc:
            seen["error"] = exc
        seen["wait"] = future.wait(timeout=0.01).name
        gate.set()
        return future.result()

    assert pipeline() == "late"
    assert "wait_on" in str(seen["error"])
    assert seen["wait"] in ("Pending", "Running")


def test_add_done_callback_runs_once_settled_and_at_once_if_already_settled() -> None:
    gate = threading.Event()
    called: list[tuple[str, Any]] = []

    @flow(executor=two_workers())
    def pipeline() -> None:
        future = wait_on.submit(gate, 5)
        future.add_done_callback(lambda f: called.append(("early", f.result())))
        assert called == []
        gate.set()
        future.wait()
        future.add_done_callback(lambda f: called.append(("late", f.result())))
        assert called[-1] == ("late", 5)  # already settled: called here, at once

    pipeline()
    assert sorted(called) == [("early", 5), ("late", 5)]


async def test_an_async_flow_awaits_futures() -> None:
    @flow
    async def pipeline() -> int:
        first = inc.submit(1)
        second = inc.submit(first)
        return await second

    assert await pipeline() == 3


# --- futures in arguments are upstream edges -------------------------------------------------


def test_a_future_argument_passes_its_result_and_records_the_edge() -> None:
    @flow
    def pipeline() -> int:
        return inc.submit(inc.submit(1)).result()

    flow_run = pipeline.run()

    assert flow_run.result() == 3
    first, second = flow_run.task_runs
    assert first.upstream == ()
    assert second.upstream == (first.id,)
    assert second.args == (2,)
    assert second.parameters == {"x": 2}


def test_futures_nested_in_lists_and_dicts_are_resolved_and_recorded() -> None:
    received: list[Any] = []

    @task
    def gather(items: list[Any], mapping: dict[str, Any], pair: tuple[Any, ...]) -> int:
        received.append((items, mapping, pair))
        return len(items)

    @flow
    def pipeline() -> int:
        a, b, c, d = inc.submit(0), inc.submit(1), inc.submit(2), inc.submit(3)
        nested = gather.submit([a, [b, "x"]], {"c": c, "deep": {"d": d}}, (a, 9))
        return nested.result()

    flow_run = pipeline.run()

    assert flow_run.result() == 2
    assert received == [([1, [2, "x"]], {"c": 3, "deep": {"d": 4}}, (1, 9))]
    *ups, gathered = flow_run.task_runs
    assert gathered.task_name == "gather"
    assert gathered.upstream == tuple(u.id for u in ups)  # each once, in order of appearance


def test_a_direct_call_with_futures_waits_and_records_the_edges() -> None:
    @flow
    def pipeline() -> int:
        left, right = inc.submit(1), inc.submit(10)
        return add(left, y=right)

    flow_run = pipeline.run()

    assert flow_run.result() == 13
    left, right, total = flow_run.task_runs
    assert total.upstream == (left.id, right.id)


def test_wait_for_adds_an_edge_without_passing_data() -> None:
    order: list[str] = []

    @task
    def first() -> None:
        order.append("first")

    @task
    def second() -> str:
        order.append("second")
        return "ok"

    @flow
    def pipeline() -> str:
        done = first.submit()
        return second.submit(wait_for=[done]).result()

    flow_run = pipeline.run()

    assert flow_run.result() == "ok"
    assert order == ["first", "second"]
    assert flow_run.task_runs[1].upstream == (flow_run.task_runs[0].id,)
    assert flow_run.task_runs[1].parameters == {}


def test_a_returned_future_is_the_flows_result() -> None:
    @flow
    def pipeline() -> Any:
        return {"a": inc.submit(1), "b": [inc.submit(2)]}

    assert pipeline() == {"a": 2, "b": [3]}


# --- reflow.wait and as_completed ------------------------------------------------------------


def test_wait_splits_done_and_not_done() -> None:
    gate = threading.Event()
    seen: dict[str, Any] = {}

    @flow(executor=two_workers())
    def pipeline() -> None:
        slow = wait_on.submit(gate, "slow")
        fast = inc.submit(1)
        fast.wait()
        done, not_done = reflow.wait([slow, fast], timeout=0.05)
        seen["first"] = (done == {fast}, not_done == {slow})
        gate.set()
        done, not_done = reflow.wait([slow, fast])
        seen["second"] = (done == {slow, fast}, not_done)

    pipeline()
    assert seen["first"] == (True, True)
    assert seen["second"] == (True, set())


def test_as_completed_yields_first_finished_first() -> None:
    gate = threading.Event()
    order: list[Any] = []

    @flow(executor=two_workers())
    def pipeline() -> None:
        slow = wait_on.submit(gate, "slow")
        fast = echo.submit("fast")
        iterator = reflow.as_completed([slow, fast])
        order.append(next(iterator).result())
        gate.set()
        order.extend(f.result() for f in iterator)

    pipeline()
    assert order == ["fast", "slow"]


def test_as_completed_times_out_on_unfinished_futures() -> None:
    gate = threading.Event()
    seen: list[BaseException] = []

    @flow(executor=two_workers())
    def pipeline() -> None:
        slow = wait_on.submit(gate)
        try:
            list(reflow.as_completed([slow], timeout=0.05))
        except TimeoutError as exc:
            seen.append(exc)
        gate.set()

    pipeline()
    assert len(seen) == 1


def test_wait_refuses_things_that_are_not_futures() -> None:
    with pytest.raises(TypeError, match="futures"):
        reflow.wait([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="futures"):
        list(reflow.as_completed(["x"]))  # type: ignore[list-item]


# --- outside a flow --------------------------------------------------------------------------


def test_submit_outside_a_flow_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"inc\.submit\(\) runs inside a flow"):
        inc.submit(1)


def test_map_outside_a_flow_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"inc\.map\(\) runs inside a flow"):
        inc.map([1, 2])


# --- map -------------------------------------------------------------------------------------


def test_map_zips_its_iterables() -> None:
    @flow
    def pipeline() -> list[int]:
        futures = add.map([1, 2, 3], (10, 20, 30))
        assert isinstance(futures, FutureList)
        assert len(futures) == 3
        return futures.result()

    assert pipeline() == [11, 22, 33]


def test_map_over_generators_and_ranges() -> None:
    @flow
    def pipeline() -> list[int]:
        return add.map(range(3), (10 * i for i in range(3))).result()

    assert pipeline() == [0, 11, 22]


def test_unmapped_passes_a_value_whole() -> None:
    @flow
    def pipeline() -> list[int]:
        return add.map([1, 2, 3], unmapped(100)).result()

    assert pipeline() == [101, 102, 103]


def test_unmapped_list_is_given_whole_to_every_call() -> None:
    received: list[Any] = []

    @task
    def take(x: int, items: list[int]) -> None:
        received.append((x, items))

    @flow
    def pipeline() -> None:
        take.map([1, 2], unmapped([7, 8, 9])).wait()

    pipeline()
    assert sorted(received) == [(1, [7, 8, 9]), (2, [7, 8, 9])]


def test_map_maps_keyword_arguments_too() -> None:
    @flow
    def pipeline() -> list[int]:
        return add.map(x=[1, 2], y=[5, 6]).result()

    flow_run = pipeline.run()

    assert flow_run.result() == [6, 8]
    assert [r.parameters for r in flow_run.task_runs] == [{"x": 1, "y": 5}, {"x": 2, "y": 6}]


def test_strings_and_dicts_are_passed_whole() -> None:
    received: list[Any] = []

    @task
    def take(x: int, text: str, data: dict[str, int], raw: bytes) -> None:
        received.append((x, text, data, raw))

    @flow
    def pipeline() -> None:
        take.map([1, 2], "ab", {"k": 1, "j": 2}, raw=b"xy").wait()

    pipeline()
    assert sorted(received) == [
        (1, "ab", {"k": 1, "j": 2}, b"xy"),
        (2, "ab", {"k": 1, "j": 2}, b"xy"),
    ]


def test_non_iterables_are_passed_whole() -> None:
    @flow
    def pipeline() -> list[int]:
        return add.map([1, 2], 5).result()

    assert pipeline() == [6, 7]


def test_mismatched_lengths_raise_value_error_naming_them_and_nothing_runs() -> None:
    calls = Counter[int]()

    @task
    def count(x: int, y: int) -> None:
        calls[x] += 1

    @flow
    def pipeline() -> None:
        count.map([1, 2, 3], y=[1, 2])

    flow_run = pipeline.run()

    error = flow_run.state.exception
    assert isinstance(error, ValueError)
    assert "different lengths" in str(error)
    assert "argument 1: 3" in str(error)
    assert "y: 2" in str(error)
    assert flow_run.state.is_failed()
    assert calls == Counter()
    assert flow_run.task_runs == []


def test_map_with_nothing_to_map_is_a_value_error() -> None:
    @flow
    def pipeline() -> None:
        inc.map("abc")

    with pytest.raises(ValueError, match="at least one iterable"):
        pipeline()


def test_an_empty_map_makes_no_runs() -> None:
    @flow
    def pipeline() -> list[int]:
        futures = inc.map([])
        assert futures.wait() == []
        return futures.result()

    flow_run = pipeline.run()

    assert flow_run.result() == []
    assert flow_run.task_runs == []
    assert flow_run.state.name == "Completed"


def test_map_over_a_futures_result() -> None:
    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @flow
    def pipeline() -> list[int]:
        return inc.map(numbers.submit(3)).result()

    flow_run = pipeline.run()

    assert flow_run.result() == [1, 2, 3]
    source, *mapped = flow_run.task_runs
    assert len(mapped) == 3
    assert all(r.upstream == (source.id,) for r in mapped)


def test_map_over_a_list_of_futures_maps_element_wise() -> None:
    @flow
    def pipeline() -> list[int]:
        firsts = inc.map([1, 2])
        return inc.map(firsts).result()

    flow_run = pipeline.run()

    assert flow_run.result() == [3, 4]
    a0, a1, b0, b1 = flow_run.task_runs
    assert b0.upstream == (a0.id,)
    assert b1.upstream == (a1.id,)


def test_map_keys_name_the_call_and_the_element() -> None:
    @flow
    def pipeline() -> None:
        inc(0)
        inc.map([1, 2, 3])
        add.map([1], [2])
        inc.submit(9)

    flow_run = pipeline.run()

    assert [r.key for r in flow_run.task_runs] == [
        "inc-0", "inc-1[0]", "inc-1[1]", "inc-1[2]", "add-0[0]", "inc-2"
    ]  # fmt: skip
    assert all(r.parent_id == flow_run.id for r in flow_run.task_runs)


def test_futurelist_states_and_wait() -> None:
    @task
    def maybe(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    seen: dict[str, Any] = {}

    @flow
    def pipeline() -> None:
        futures = maybe.map([1, 2, 3])
        seen["wait"] = [s.name for s in futures.wait()]
        seen["states"] = [s.name for s in futures.states]
        seen["quiet"] = futures.result(raise_on_failure=False)

    pipeline.run()
    assert seen["wait"] == ["Completed", "Failed", "Completed"]
    assert seen["states"] == seen["wait"]
    assert seen["quiet"][0] == 1
    assert seen["quiet"][2] == 3
    assert isinstance(seen["quiet"][1], ValueError)


def test_a_failing_element_with_retries_does_not_rerun_its_neighbours(
    reflow_clock: VirtualClock,
) -> None:
    calls = Counter[int]()
    lock = threading.Lock()

    @task(retries=2)
    def flaky(x: int) -> int:
        with lock:
            calls[x] += 1
            n = calls[x]
        if x == 1 and n < 3:
            raise ConnectionError(f"element {x} attempt {n}")
        return x * 10

    @flow
    def pipeline() -> list[int]:
        return flaky.map([0, 1, 2]).result()

    flow_run = pipeline.run()

    assert flow_run.result() == [0, 10, 20]
    assert calls == Counter({0: 1, 1: 3, 2: 1})
    assert [len(r.attempts) for r in flow_run.task_runs] == [1, 3, 1]


def test_a_failing_element_fails_only_itself() -> None:
    calls = Counter[int]()
    lock = threading.Lock()

    @task
    def maybe(x: int) -> int:
        with lock:
            calls[x] += 1
        if x == 1:
            raise ValueError("one")
        return x

    @flow
    def pipeline() -> list[Any]:
        return maybe.map([0, 1, 2])

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, ValueError)
    assert [r.state.name for r in flow_run.task_runs] == ["Completed", "Failed", "Completed"]
    assert calls == Counter({0: 1, 1: 1, 2: 1})


def test_map_with_wait_for() -> None:
    order: list[str] = []

    @task
    def setup() -> None:
        order.append("setup")

    @task
    def work(x: int) -> None:
        order.append(f"work {x}")

    @flow
    def pipeline() -> None:
        ready = setup.submit()
        work.map([1, 2], wait_for=[ready]).wait()

    flow_run = pipeline.run()

    assert order[0] == "setup"
    assert sorted(order[1:]) == ["work 1", "work 2"]
    setup_run = flow_run.task_runs[0]
    assert all(r.upstream == (setup_run.id,) for r in flow_run.task_runs[1:])


def test_a_failed_state_is_a_state_not_a_result() -> None:
    """`return_state=True` on a submit is ignored: a future's state is `future.state`."""

    @flow
    def pipeline() -> State[Any]:
        future = inc.submit(1, return_state=True)
        return future.wait()

    assert pipeline() == 2


# --- map results as arguments and return values; callbacks that raise -----------------------


def test_a_map_result_passed_to_a_task_is_resolved_and_recorded() -> None:
    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def pipeline() -> int:
        return total.submit(inc.map([1, 2, 3])).result()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed", flow_run.state
    assert flow_run.result() == 9
    *mapped, reduced = flow_run.task_runs
    assert reduced.upstream == tuple(r.id for r in mapped)


def test_a_map_result_passed_to_a_direct_call_is_resolved() -> None:
    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def pipeline() -> int:
        return total(inc.map([1, 2]))

    assert pipeline() == 5


def test_a_failed_element_of_a_returned_map_result_fails_the_flow() -> None:
    @task
    def maybe(x: int) -> int:
        if x:
            raise ValueError(f"element {x}")
        return x

    @flow(reference_tasks=[inc])
    def pipeline() -> Any:
        inc.submit(0)
        return maybe.map([0, 1])

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert str(flow_run.state.exception) == "element 1"


def test_a_returned_map_result_is_its_values() -> None:
    @flow
    def pipeline() -> list[int]:
        return inc.map([1, 2])

    assert pipeline() == [2, 3]


def test_a_raising_done_callback_does_not_stop_the_flow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()
    futures: list[Future[Any]] = []
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def bad_callback(future: Future[Any]) -> None:
        raise RuntimeError("callback bug")

    @flow(executor=two_workers())
    def pipeline() -> int:
        first = wait_on.submit(gate, 1)
        first.add_done_callback(bad_callback)
        second = inc.submit(first)
        futures.extend([first, second])
        gate.set()
        return second  # type: ignore[return-value]

    def run() -> None:
        outcome["run"] = pipeline.run()
        finished.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert finished.wait(5), "the flow run never ended"
        assert outcome["run"].result() == 2
        logged = [r for r in caplog.records if "bad_callback" in r.getMessage()]
        assert len(logged) == 1
        assert logged[0].levelno == logging.ERROR
    finally:
        for future in futures:  # release a hung run so no thread is left behind
            if not future.done():
                future.set_done()
        thread.join(10)


def test_runs_submitted_by_a_running_task_are_awaited_and_recorded() -> None:
    finished: list[int] = []

    @task
    def leaf(x: int) -> int:
        finished.append(x)
        return x

    @task
    def fan_out(n: int) -> int:
        for i in range(n):
            leaf.submit(i)
        return n

    @flow
    def pipeline() -> int:
        return fan_out(3)

    flow_run = pipeline.run()

    assert flow_run.result() == 3
    assert sorted(finished) == [0, 1, 2]
    assert sorted(r.key or "" for r in flow_run.task_runs) == [
        "fan_out-0", "fan_out-0/leaf-0", "fan_out-0/leaf-1", "fan_out-0/leaf-2"
    ]  # fmt: skip
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)
