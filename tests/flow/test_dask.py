"""`DaskExecutor` on a real cluster: what it promises beyond the executor conformance suite
(which it passes too, in test_executors.py).

The tests share the session's `LocalCluster` of two single-threaded worker processes
(tests/flow/conftest.py). The tasks are module-level, so the workers import them from here;
they count their attempts in files, which the workers and the test share.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from reflow import flow, task, unmapped
from reflow.executors import (
    DaskExecutor,
    InlineExecutor,
    ProcessExecutor,
    SerializationError,
    ThreadExecutor,
    default_executor,
)
from reflow.executors.default import parse
from reflow.store import SQLiteStore

BOUND = 30.0
"""A safety bound (seconds) on every wait: a broken executor fails a test, never hangs it."""


def count_attempt(marks: str, name: str) -> int:
    """Record one more attempt of `name` in the directory `marks`; return its number."""
    with open(Path(marks) / f"{name}.attempts", "a+") as file:
        file.write(".")
        file.seek(0)
        return len(file.read())


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def pid(x: int) -> int:
    return os.getpid()


@task(retries=1)
def flaky(x: int, marks: str) -> int:
    if count_attempt(marks, f"flaky-{x}") == 1:
        raise ConnectionError(f"first attempt of {x}")
    return 10 * x


@task(retries=3)
def returns_a_lock(x: int) -> Any:
    return threading.Lock()


def publish_and_hang(marks: str, variable: str) -> int:
    """The first attempt says on which worker it runs, then hangs (to be killed there); a
    later attempt returns its worker's pid."""
    from distributed import Variable, get_worker

    if count_attempt(marks, "hang") == 1:
        Variable(variable).set(get_worker().address)
        end = time.monotonic() + BOUND
        while time.monotonic() < end:
            time.sleep(0.05)
    return os.getpid()


survives_a_lost_worker = task(retries=1, retry_on=ValueError, name="survives")(publish_and_hang)
dies_with_its_worker = task(name="dies")(publish_and_hang)


@pytest.fixture
def cluster_executor(dask_cluster: Any) -> Iterator[DaskExecutor]:
    """An executor on the session's cluster, held started by the test."""
    executor = DaskExecutor(address=dask_cluster.scheduler_address)
    executor.start()
    try:
        yield executor
    finally:
        executor.shutdown()


# --- results and mapping ---------------------------------------------------------------------


class CountingDaskExecutor(DaskExecutor):
    """Counts what the flow engine hands over: single attempts, and batches."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.singles = 0
        self.batches: list[int] = []

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        self.singles += 1
        return super().submit(fn, *args, **kwargs)

    def submit_many(self, calls: Sequence[Any], /) -> list[concurrent.futures.Future[Any]]:
        self.batches.append(len(calls))
        return super().submit_many(calls)


def test_a_map_of_ten_thousand_goes_to_the_cluster_in_one_batch(dask_cluster: Any) -> None:
    executor = CountingDaskExecutor(dask_cluster.scheduler_address)

    @flow(executor=executor)
    def pipeline(n: int) -> list[int]:
        return inc.map(range(n)).result()

    flow_run = pipeline.run(10_000)

    assert flow_run.result() == list(range(1, 10_001))
    assert len(flow_run.task_runs) == 10_000
    assert {r.state.name for r in flow_run.task_runs} == {"Completed"}
    assert (executor.batches, executor.singles) == ([10_000], 0)


def test_mapped_runs_retry_one_at_a_time_on_the_cluster(dask_cluster: Any, tmp_path: Path) -> None:
    executor = CountingDaskExecutor(dask_cluster.scheduler_address)

    @flow(executor=executor)
    def pipeline() -> list[int]:
        return flaky.map(range(5), unmapped(str(tmp_path))).result()

    flow_run = pipeline.run()

    assert flow_run.result() == [0, 10, 20, 30, 40]
    assert (executor.batches, executor.singles) == ([5], 5)  # first attempts batched
    for run in flow_run.task_runs:
        assert [a.state.name for a in run.attempts if a.state] == ["Failed", "Completed"]
        assert isinstance(
            run.attempts[0].state and run.attempts[0].state.exception, ConnectionError
        )


def test_a_chain_of_submitted_tasks_runs_on_the_workers(cluster_executor: DaskExecutor) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> tuple[int, set[int]]:
        total = inc.submit(0)
        for _ in range(9):
            total = inc.submit(total)
        pids = set(pid.map(range(4)).result())
        return add.submit(total, 0).result(), pids

    total, pids = pipeline()

    assert total == 10
    assert os.getpid() not in pids


# --- what cannot travel ----------------------------------------------------------------------


def test_an_unpicklable_function_is_an_error_naming_the_task(
    cluster_executor: DaskExecutor,
) -> None:
    lock = threading.Lock()

    def guarded(x: int) -> int:  # a closure over a lock: cloudpickle cannot send it
        with lock:
            return x

    guarded_task = task(retries=2)(guarded)

    @flow(executor=cluster_executor)
    def submitted() -> int:
        return guarded_task.submit(1).result()

    @flow(executor=cluster_executor)
    def mapped() -> list[int]:
        return guarded_task.map(range(3)).result()

    for pipeline, runs in ((submitted, 1), (mapped, 3)):
        flow_run = pipeline.run()

        assert flow_run.state.is_failed()
        error = flow_run.state.exception
        assert isinstance(error, SerializationError)
        assert "guarded" in str(error)
        assert "lock" in str(error)
        assert len(flow_run.task_runs) == runs
        for run in flow_run.task_runs:
            assert run.state.name == "Failed"
            assert len(run.attempts) == 1  # retries=2, but sending it again fails the same way


def test_an_unpicklable_result_is_an_error_naming_the_task(cluster_executor: DaskExecutor) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> Any:
        return returns_a_lock.submit(1).result()

    flow_run = pipeline.run()

    error = flow_run.state.exception
    assert isinstance(error, SerializationError)
    assert "returns_a_lock" in str(error)
    (run,) = flow_run.task_runs
    assert len(run.attempts) == 1


# --- a worker lost mid-attempt ---------------------------------------------------------------


def kill_the_worker_running_it(
    pipeline: Any, executor: DaskExecutor, variable: str
) -> tuple[Any, int]:
    """Run the flow in a thread; once its attempt runs on a worker, SIGKILL that worker's
    process. Returns the flow run and the killed pid."""
    from distributed import Variable

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(pipeline.run)
        address = Variable(variable, client=executor.client).get(timeout=BOUND)
        victim = executor.client.run(os.getpid)[address]
        os.kill(victim, signal.SIGKILL)
        return running.result(timeout=BOUND), victim


def test_a_worker_killed_mid_attempt_crashes_it_and_the_retry_completes(
    cluster_executor: DaskExecutor, tmp_path: Path
) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> int:
        return survives_a_lost_worker.submit(str(tmp_path), "reflow-test-survives").result()

    flow_run, victim = kill_the_worker_running_it(
        pipeline, cluster_executor, "reflow-test-survives"
    )

    assert flow_run.state.is_completed()
    assert flow_run.result() not in (victim, os.getpid())  # the retry ran on another worker
    (run,) = flow_run.task_runs
    first, second = (a.state for a in run.attempts)
    assert first is not None
    assert second is not None
    assert first.name == "Crashed"
    assert first.is_crashed()
    assert type(first.exception).__name__ == "KilledWorker"
    assert "died" in "".join(getattr(first.exception, "__notes__", []))
    assert second.is_completed()  # retried although retry_on=ValueError: a crash is retried
    assert [s.name for s in run.states] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"
    ]  # fmt: skip


def test_a_worker_killed_in_the_last_attempt_ends_the_run_crashed(
    cluster_executor: DaskExecutor, tmp_path: Path
) -> None:
    @flow(executor=cluster_executor)
    def pipeline() -> int:
        return dies_with_its_worker.submit(str(tmp_path), "reflow-test-dies").result()

    flow_run, _ = kill_the_worker_running_it(pipeline, cluster_executor, "reflow-test-dies")

    (run,) = flow_run.task_runs
    assert run.state.name == "Crashed"
    assert len(run.attempts) == 1
    assert flow_run.state.is_failed()
    assert type(flow_run.state.exception).__name__ == "KilledWorker"


# --- the store -------------------------------------------------------------------------------


def test_a_persisted_flow_on_dask_keeps_the_records_the_thread_executor_keeps(
    dask_cluster: Any, tmp_path: Path
) -> None:
    def records(executor: Any, name: str) -> tuple[Any, ...]:
        marks = tmp_path / name
        marks.mkdir()
        path = tmp_path / f"{name}.db"

        @flow(store=path, executor=executor)
        def pipeline(n: int) -> int:
            tens = flaky.map(range(n), unmapped(str(marks)))
            return add.submit(inc.submit(tens[0]), tens[n - 1]).result()

        flow_run = pipeline.run(3)
        with SQLiteStore(path) as store:
            kept = store.flow_run(flow_run.id)
            tasks = store.task_runs(flow_run.id)
            states = [s.name for s in store.states(flow_run.id)]
        assert kept is not None
        described = sorted(
            (t.key, t.task_name, t.state, t.attempts, t.error, [s.name for s in t.states])
            for t in tasks
        )
        upstream = sorted(len(t.upstream) for t in tasks)
        return kept.state, kept.parameters, kept.result, states, described, upstream

    on_threads = records(ThreadExecutor(2), "thread")
    on_dask = records(DaskExecutor(dask_cluster.scheduler_address), "dask")

    assert on_dask == on_threads
    assert on_dask[0] == "Completed"
    assert ("flaky-0[1]", "flaky", "Completed", 2, None) in [d[:5] for d in on_dask[4]]


# --- starting, stopping, choosing --------------------------------------------------------------


def test_without_an_address_a_local_cluster_lives_as_long_as_the_flow_run() -> None:
    executor = DaskExecutor(
        cluster_kwargs={
            "n_workers": 1, "threads_per_worker": 2, "processes": False, "dashboard_address": ":0"
        }
    )  # fmt: skip
    seen: list[Any] = []

    @flow(executor=executor)
    def pipeline() -> list[int]:
        seen.append(executor.client.cluster)
        return inc.map(range(3)).result()

    assert pipeline() == [1, 2, 3]
    (cluster,) = seen
    assert executor.max_workers == 2  # the cluster's threads
    assert cluster.status.name == "closed"
    with pytest.raises(RuntimeError, match="before start"):
        executor.client  # noqa: B018 - the client went with the cluster


def test_reflow_executor_dask_url_runs_flows_without_an_executor_on_that_cluster(
    dask_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_port = dask_cluster.scheduler_address.removeprefix("tcp://")
    monkeypatch.setenv("REFLOW_EXECUTOR", f"dask://{host_port}")

    @flow
    def pipeline() -> list[int]:
        return pid.map(range(3)).result()

    chosen = default_executor()
    assert isinstance(chosen, DaskExecutor)
    assert chosen.address == dask_cluster.scheduler_address
    assert default_executor() is chosen  # one per value, shared by the process's flow runs
    assert os.getpid() not in set(pipeline())


@pytest.mark.parametrize(
    ("value", "kind"),
    [("thread", ThreadExecutor), ("inline", InlineExecutor), ("process", ProcessExecutor)],
)
def test_reflow_executor_names_the_other_executors(value: str, kind: type) -> None:
    assert type(parse(value)) is kind


@pytest.mark.parametrize("value", ["threads", "dask://", "dask://host", "tcp://h:1", "dask://h:x"])
def test_a_bad_reflow_executor_is_an_error_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_EXECUTOR", value)

    @flow
    def pipeline() -> int:
        return 1

    with pytest.raises(ValueError, match=r"REFLOW_EXECUTOR must be thread, .*dask://HOST:PORT"):
        pipeline()


def test_an_unreachable_scheduler_is_a_connection_error_naming_it() -> None:
    executor = DaskExecutor("tcp://127.0.0.1:9", client_kwargs={"timeout": 0.25})

    @flow(executor=executor)
    def pipeline() -> int:
        return 1

    with pytest.raises(ConnectionError, match=r"Dask scheduler at 'tcp://127\.0\.0\.1:9'"):
        pipeline()


def test_bad_arguments_are_refused_when_made() -> None:
    with pytest.raises(ValueError, match="cluster_kwargs"):
        DaskExecutor("tcp://127.0.0.1:8786", cluster_kwargs={"n_workers": 2})
    with pytest.raises(TypeError, match="scheduler address"):
        DaskExecutor(8786)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="client_kwargs"):
        DaskExecutor(client_kwargs=[("timeout", 1)])  # type: ignore[arg-type]
    for bad in (-1, 1.5, True, "64k"):
        with pytest.raises(ValueError, match=r"reference_bytes=\.\.\.\) takes a size in bytes"):
            DaskExecutor(reference_bytes=bad)  # type: ignore[arg-type]


def test_without_dask_installed_starting_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails

    with pytest.raises(ImportError, match=r"pip install 'reflow\[dask\]'"):
        DaskExecutor().start()


def test_the_dask_executor_is_imported_without_importing_dask() -> None:
    probe = (
        "import sys; from reflow.executors import DaskExecutor; DaskExecutor(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
