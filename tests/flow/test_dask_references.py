"""`DaskExecutor` passing large results between tasks by reference, on a real cluster: the
downstream attempt depends on the upstream's cluster task, its worker fetches the data from
the worker that made it, and the flow's process does not send the value again.

The tests share the session's `LocalCluster` of two single-threaded worker processes
(tests/flow/conftest.py); the tasks are module-level so the workers import them from here.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reflow import flow, task, unmapped
from reflow.executors import DaskExecutor
from reflow.flow.triggers import all_successful
from reflow.store import SQLiteStore

BOUND = 30.0
"""A safety bound (seconds) on every wait: a broken executor fails a test, never hangs it."""
SIZE = 2_000_000
"""Bytes of the large results: far over `reference_bytes`, so they stay on the cluster."""
SMALL = 100_000
"""Bytes an attempt's arguments may take when its large arguments go by reference."""


def count_run(marks: str, name: str) -> int:
    """Record one more run of `name` in the directory `marks`; return its number."""
    with open(Path(marks) / f"{name}.runs", "a+") as file:
        file.write(".")
        file.seek(0)
        return len(file.read())


@task
def produce(size: int, fill: int = 0) -> bytes:
    return bytes([fill]) * size


@task
def measure(data: bytes) -> tuple[int, int]:
    return len(data), data[0]


@task
def measure_all(items: Any) -> Any:
    if isinstance(items, dict):
        return {k: len(v) for k, v in items.items()}
    return [len(v) for v in items]


@task
def byte_at(i: int, data: bytes) -> int:
    return data[i]


@task(retries=1)
def measure_on_second_try(data: bytes, marks: str) -> int:
    if count_run(marks, "measure") == 1:
        raise ConnectionError("first attempt")
    return len(data)


def produce_where_seen(size: int, marks: str, variable: str, fail_again: bool) -> bytes:
    """A large result; says on which worker it was made. Run again (the cluster recomputing
    it), it returns the same, or raises if `fail_again`."""
    from distributed import Variable, get_worker

    if count_run(marks, "produce") == 1:
        Variable(variable).set(get_worker().address)
    elif fail_again:
        raise RuntimeError("recomputed, and failed this time")
    return b"r" * size


produce_where_seen_task = task(produce_where_seen)


@pytest.fixture
def cluster_executor(dask_cluster: Any) -> Iterator[DaskExecutor]:
    """An executor on the session's cluster, held started by the test (its byte counts are
    the test's alone)."""
    executor = DaskExecutor(address=dask_cluster.scheduler_address)
    executor.start()
    try:
        yield executor
    finally:
        executor.shutdown()


def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait (polling, within BOUND) for a change the cluster makes on its own time."""
    end = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < end, f"not within {BOUND} s: {what}"
        time.sleep(0.02)


def held_by_the_cluster(executor: DaskExecutor, prefix: str) -> list[str]:
    """The keys starting with `prefix` whose data the cluster's workers hold."""

    def in_memory(dask_scheduler: Any) -> list[str]:
        return [str(k) for k, t in dask_scheduler.tasks.items() if t.state == "memory"]

    return [key for key in executor.client.run_on_scheduler(in_memory) if key.startswith(prefix)]


# --- what travels where -----------------------------------------------------------------------


def test_a_large_result_goes_to_its_downstream_task_by_reference(
    cluster_executor: DaskExecutor,
) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> tuple[tuple[int, int], int]:
        data = produce.submit(SIZE, 7)
        return measure.submit(data).result(), len(data.result())

    assert pipeline() == ((SIZE, 7), SIZE)
    assert cluster_executor.bytes_sent < SMALL  # neither attempt carried the data
    assert SIZE <= cluster_executor.bytes_received < SIZE + SMALL  # fetched once, for its state


def test_without_references_the_flow_process_sends_the_value_again(dask_cluster: Any) -> None:
    executor = DaskExecutor(dask_cluster.scheduler_address, reference_bytes=None)
    executor.start()
    try:

        @flow(executor=executor)
        def pipeline() -> tuple[int, int]:
            return measure.submit(produce.submit(SIZE, 7)).result()

        assert pipeline() == (SIZE, 7)
        assert executor.bytes_sent >= SIZE
    finally:
        executor.shutdown()


def test_references_go_in_lists_dicts_maps_and_unmapped(cluster_executor: DaskExecutor) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> Any:
        a, b = produce.submit(SIZE, 1), produce.submit(SIZE // 2, 2)
        taking = (
            measure_all.submit([a, b, a]),
            measure_all.submit({"a": a, "b": b}),
            measure.map([a, b]),
            byte_at.map(range(3), unmapped(b)),
        )  # all submitted before a and b end (a result nobody takes then is released)
        return tuple(f.result() for f in taking)

    assert pipeline() == (
        [SIZE, SIZE // 2, SIZE],
        {"a": SIZE, "b": SIZE // 2},
        [(SIZE, 1), (SIZE // 2, 2)],
        [2, 2, 2],
    )
    assert cluster_executor.bytes_sent < SMALL


def test_a_retried_downstream_takes_the_reference_again(
    cluster_executor: DaskExecutor, tmp_path: Path
) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> Any:
        return measure_on_second_try.submit(produce.submit(SIZE), str(tmp_path))

    flow_run = pipeline.run()

    assert flow_run.result() == SIZE
    run = next(r for r in flow_run.task_runs if r.task_name == "measure_on_second_try")
    assert [a.state.name for a in run.attempts if a.state] == ["Failed", "Completed"]
    assert cluster_executor.bytes_sent < SMALL


def test_the_cluster_frees_a_kept_result_once_no_run_takes_it(
    cluster_executor: DaskExecutor,
) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> int:
        data = produce.submit(SIZE)
        first = measure.submit(data)
        assert first.result() == (SIZE, 0)
        eventually(
            lambda: held_by_the_cluster(cluster_executor, "produce-") == [],
            "the cluster forgets the result its only taker has used",
        )
        return len(data.result())  # the flow's process still has it

    assert pipeline() == SIZE


def test_a_persisted_flow_records_results_passed_by_reference(
    dask_cluster: Any, tmp_path: Path
) -> None:
    path = tmp_path / "runs.db"

    @flow(store=path, executor=DaskExecutor(dask_cluster.scheduler_address))
    def pipeline() -> tuple[int, int]:
        return measure.submit(produce.submit(300_000, 3)).result()

    flow_run = pipeline.run()

    assert flow_run.result() == (300_000, 3)
    with SQLiteStore(path) as store:
        kept = {t.task_name: t for t in store.task_runs(flow_run.id)}
    assert kept["produce"].state == "Completed"
    assert kept["produce"].result is not None
    assert kept["measure"].state == "Completed"


# --- a worker holding a kept result is lost -----------------------------------------------------


def lose_the_holder(tmp_path: Path, executor: DaskExecutor, fail_again: bool) -> tuple[Any, Path]:
    """Run a flow whose upstream's result stays on a worker; once the upstream has completed
    and before its downstream (retries=1) is sent, SIGKILL the worker holding the result,
    then let the downstream go. Returns the flow run and the marks directory."""
    from distributed import Variable

    marks = tmp_path / "marks"
    marks.mkdir()
    variable = f"reflow-test-holder-{tmp_path.name}"
    judged, killed = threading.Event(), threading.Event()

    def after_the_kill(states: Any) -> bool:
        judged.set()
        assert killed.wait(BOUND)
        return all_successful(states)

    measure_after = measure.with_options(trigger=after_the_kill, retries=1)

    @flow(executor=executor)
    def pipeline() -> tuple[int, int]:
        data = produce_where_seen_task.submit(SIZE, str(marks), variable, fail_again)
        return measure_after.submit(data).result()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(pipeline.run)
        assert judged.wait(BOUND)
        holder = Variable(variable, client=executor.client).get(timeout=BOUND)
        os.kill(executor.client.run(os.getpid)[holder], signal.SIGKILL)
        eventually(
            lambda: holder not in executor.client.scheduler_info()["workers"],
            "the scheduler notices the worker is gone",
        )
        killed.set()
        return running.result(timeout=BOUND), marks


def attempts(flow_run: Any, name: str) -> list[str]:
    (run,) = [r for r in flow_run.task_runs if r.task_name == name]
    return [a.state.name for a in run.attempts if a.state]


def test_a_kept_result_lost_with_its_worker_is_recomputed_by_the_cluster(
    cluster_executor: DaskExecutor, tmp_path: Path
) -> None:
    flow_run, marks = lose_the_holder(tmp_path, cluster_executor, fail_again=False)

    assert flow_run.result() == (SIZE, ord("r"))
    assert attempts(flow_run, "produce_where_seen") == ["Completed"]  # reflow ran it once,
    assert (marks / "produce.runs").read_text() == ".."  # the cluster ran it again
    assert attempts(flow_run, "measure") == ["Completed"]
    assert cluster_executor.bytes_sent < SMALL


def test_a_lost_result_the_cluster_cannot_remake_crashes_the_attempt_and_the_retry_takes_the_value(
    cluster_executor: DaskExecutor, tmp_path: Path
) -> None:
    flow_run, _ = lose_the_holder(tmp_path, cluster_executor, fail_again=True)

    assert flow_run.result() == (SIZE, ord("r"))
    assert attempts(flow_run, "measure") == ["Crashed", "Completed"]
    (run,) = [r for r in flow_run.task_runs if r.task_name == "measure"]
    crash = run.attempts[0].state
    assert crash is not None
    assert "recomputation of it failed" in str(crash.exception)
    assert "recomputed, and failed this time" in str(crash.exception)
    assert cluster_executor.bytes_sent >= SIZE  # the retry carried the value itself
