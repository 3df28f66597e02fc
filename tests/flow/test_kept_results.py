"""The engine's side of results left where they were made (`reflow.executors.KeepsResults`):
which attempts are sent a reference instead of a value, and when references are released.

An executor in this process stands in for a cluster: it keeps every bytes result, records
what each call was sent, and resolves references itself. The Dask executor's side, on a real
cluster, is in test_dask_references.py.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reflow import allow_failure, flow, task, unmapped
from reflow.executors import KeepsResults


class Ref:
    """A result kept by the executor: the value, and whether the executor still holds it."""

    def __init__(self, value: Any, name: str) -> None:
        self.value = value
        self.name = name
        self.held = True


class Sent:
    """One call the executor was handed: the function's name and its arguments as sent."""

    def __init__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.args = args
        self.kwargs = kwargs

    def refs(self) -> list[Ref]:
        found: list[Ref] = []
        _collect((self.args, self.kwargs), found)
        return found


def _collect(value: Any, found: list[Ref]) -> None:
    if isinstance(value, Ref):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple | set):
        for item in value:
            _collect(item, found)


def _opened(value: Any) -> Any:
    """The arguments with references replaced by their values, as a worker would load them."""
    if isinstance(value, Ref):
        assert value.held, f"a released reference to {value.name} was sent"
        return value.value
    if isinstance(value, dict):
        return {k: _opened(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return type(value)(_opened(v) for v in value)
    return value


class KeepingExecutor:
    """Runs calls on threads of this process, and keeps every bytes result "where it ran"."""

    max_workers = 4
    ships_code = True

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.released: list[tuple[Ref, list[str]]] = []
        """Each released reference, and the names of the calls unfinished at that moment."""
        self.unfinished: dict[int, str] = {}
        self.a_release = threading.Event()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(self.max_workers)

    def shutdown(self) -> None:
        assert self._pool is not None
        self._pool.shutdown()

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        name = fn.__name__
        with self._lock:
            self.sent.append(Sent(name, args, kwargs))
        assert self._pool is not None
        future = self._pool.submit(fn, *_opened(args), **_opened(kwargs))
        with self._lock:
            self.unfinished[id(future)] = name
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self.unfinished.pop(id(future), None)

    def kept(self, future: concurrent.futures.Future[Any], /) -> Ref | None:
        value = future.result()
        return Ref(value, "result") if isinstance(value, bytes) else None

    def release(self, ref: Ref, /) -> None:
        ref.held = False
        with self._lock:
            self.released.append((ref, sorted(self.unfinished.values())))
        self.a_release.set()

    def calls_of(self, name: str) -> list[Sent]:
        return [s for s in self.sent if s.name == name]


@task
def produce(size: int, gate: threading.Event | None = None) -> bytes:
    """`size` bytes; with a gate, once it is set (the test has submitted the downstream runs:
    a result whose run ends before any run takes it is released at once)."""
    if gate is not None:
        assert gate.wait(10)
    return b"x" * size


@task
def measure(data: bytes) -> int:
    return len(data)


@task
def lengths(items: Any) -> Any:
    if isinstance(items, dict):
        return {k: len(v) for k, v in items.items()}
    return [len(v) for v in items]


@task
def nth(i: int, data: bytes) -> int:
    return data[i]


def test_the_executor_keeps_results_by_the_protocol() -> None:
    assert isinstance(KeepingExecutor(), KeepsResults)


def test_a_downstream_attempt_is_sent_a_reference_and_it_is_released_after() -> None:
    executor = KeepingExecutor()

    gate = threading.Event()

    @flow(executor=executor)
    def pipeline() -> tuple[int, bytes]:
        data = produce.submit(1000, gate)
        size = measure.submit(data)
        gate.set()
        return size.result(), data.result()

    size, data = pipeline()

    assert (size, data) == (1000, b"x" * 1000)  # the flow's process has the value too
    (call,) = executor.calls_of("measure")
    (ref,) = call.refs()
    assert ref.value is data
    assert [released for released, _ in executor.released] == [ref]


def test_references_go_inside_lists_dicts_maps_and_unmapped() -> None:
    executor = KeepingExecutor()
    gate = threading.Event()

    @flow(executor=executor)
    def pipeline() -> Any:
        a, b = produce.submit(10, gate), produce.submit(20, gate)
        futures = (
            lengths.submit([a, b, a]),
            lengths.submit({"a": a, "b": b}),
            measure.map([a, b]),
            nth.map(range(3), unmapped(a)),
            measure.submit(allow_failure(b)),
        )
        gate.set()
        return tuple(f.result() for f in futures)

    assert pipeline() == ([10, 20, 10], {"a": 10, "b": 20}, [10, 20], [120] * 3, 20)
    sent = [s for s in executor.sent if s.name != "produce"]
    assert len(sent) == 8
    for call in sent:
        assert call.refs(), f"{call.name} was sent values, not references"
    assert len(executor.released) == 2  # a and b, each once


def test_a_retried_downstream_gets_the_reference_again_and_it_is_held_until_the_end(
    tmp_path: Path,
) -> None:
    executor = KeepingExecutor()
    marks = tmp_path / "tries"

    @task(retries=2)
    def flaky_measure(data: bytes) -> int:
        with open(marks, "a") as file:
            file.write(".")
        if len(marks.read_text()) < 3:
            raise ConnectionError("not yet")
        return len(data)

    gate = threading.Event()

    @flow(executor=executor)
    def pipeline() -> int:
        size = flaky_measure.submit(produce.submit(100, gate))
        gate.set()
        return size.result()

    assert pipeline() == 100
    calls = executor.calls_of("flaky_measure")
    assert len(calls) == 3
    (ref,) = {id(r): r for call in calls for r in call.refs()}.values()
    ((released, running_then),) = executor.released
    assert released is ref
    assert running_then == []  # not before the last attempt ended


def test_the_reference_stays_until_the_last_of_its_downstream_runs_settles() -> None:
    executor = KeepingExecutor()
    produced, gate = threading.Event(), threading.Event()

    @task
    def wait_then_measure(data: bytes) -> int:
        assert gate.wait(10)
        return len(data)

    @flow(executor=executor)
    def pipeline() -> list[int]:
        data = produce.submit(50, produced)
        quick = measure.submit(data)
        slow = wait_then_measure.submit(data)
        produced.set()
        quick.result()
        held_while_slow_runs = executor.released == []
        gate.set()
        return [quick.result(), slow.result(), int(held_while_slow_runs)]

    assert pipeline() == [50, 50, 1]
    assert len(executor.released) == 1


def test_a_run_submitted_after_the_release_is_sent_the_value() -> None:
    executor = KeepingExecutor()

    gate = threading.Event()

    @flow(executor=executor)
    def pipeline() -> int:
        data = produce.submit(30, gate)
        first = measure.submit(data)
        gate.set()
        first.result()
        assert executor.a_release.wait(10)  # its only taker settled: released
        return measure.submit(data).result()

    assert pipeline() == 30
    first, second = executor.calls_of("measure")
    assert first.refs()
    assert not second.refs()
    assert second.args == (b"x" * 30,)


def test_a_result_nobody_takes_is_released_when_its_run_ends() -> None:
    executor = KeepingExecutor()

    @flow(executor=executor)
    def pipeline() -> bytes:
        return produce.submit(5).result()

    assert pipeline() == b"xxxxx"
    (released, _), *_ = executor.released
    assert released.value == b"xxxxx"


def test_small_or_unkept_results_are_sent_as_values() -> None:
    executor = KeepingExecutor()

    @task
    def number() -> int:
        return 7

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(executor=executor)
    def pipeline() -> int:
        return double.submit(number.submit()).result()

    assert pipeline() == 14
    (call,) = executor.calls_of("double")
    assert call.args == (7,)
    assert executor.released == []
