"""Executors: a conformance suite every executor passes, then what each one promises of its own.

The conformance suite runs over `CONFORMERS`; a new executor joins it with one more entry there
(`DaskExecutor` did, on the session's two-worker `LocalCluster`). The functions the tasks run
are module-level, so a worker process imports them from this module; they keep their state in
files (`tmp_path`), which every executor shares, where memory is not.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import reflow
from reflow import events, flow, task, unmapped
from reflow.executors import (
    DaskExecutor,
    Executor,
    InlineExecutor,
    ProcessExecutor,
    RemoteError,
    SerializationError,
    ThreadExecutor,
)
from reflow.retry import AttemptTimeout

BOUND = 30.0
"""A safety bound (seconds) on every wait, so a broken executor fails a test, never hangs it."""


# --- what the tasks run: module-level, so worker processes can import it -----------------------


class Flaky(Exception):
    """What a first attempt raises."""


class Boom(Exception):
    """What a failing task raises, to be recognised by type and message wherever it ran."""


class NeedsTwoArguments(Exception):
    """An exception that pickles but cannot be rebuilt from its args (a common mistake)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def count_attempt(marks: str, name: str) -> int:
    """Record one more attempt of `name` in the directory `marks`; return its number."""
    with open(Path(marks) / f"{name}.attempts", "a+") as file:
        file.write(".")
        file.seek(0)
        return len(file.read())


def attempts_of(marks: Path, name: str) -> int:
    path = marks / f"{name}.attempts"
    return len(path.read_text()) if path.exists() else 0


def wait_for_file(path: str, bound: float = BOUND) -> None:
    """Poll for `path` (a Python loop, so a timeout interrupt gets through between polls)."""
    end = time.monotonic() + bound
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.01)


def rendezvous(marks: str, parties: int) -> int:
    """Announce this process and wait until `parties` calls have: they all run at once."""
    Path(marks, f"party-{os.getpid()}-{threading.get_ident()}").touch()
    end = time.monotonic() + BOUND
    while len(list(Path(marks).glob("party-*"))) < parties and time.monotonic() < end:
        time.sleep(0.01)
    return os.getpid()


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def where(x: int) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


@task(retries=2)
def flaky_double(x: int, marks: str) -> int:
    if count_attempt(marks, f"flaky-{x}") == 1:
        raise Flaky(f"first attempt of {x}")
    return 2 * x


@task(retries=1)
def always_boom(x: int, marks: str) -> int:
    count_attempt(marks, f"boom-{x}")
    raise Boom(f"boom {x}")


@task
def boom(x: int) -> int:
    raise Boom(f"boom {x}")


@task(retries=1, timeout_seconds=0.5)
def hangs_first(marks: str, release: str) -> str:
    if count_attempt(marks, "hangs") == 1:
        wait_for_file(release)
        return "too late"
    return "second attempt"


@task(retries=1, timeout_seconds=3)  # room for a worker process to start within the timeout
def hangs_first_slowly(marks: str, release: str) -> str:
    if count_attempt(marks, "hangs") == 1:
        wait_for_file(release)
        return "too late"
    return "second attempt"


@task(timeout_seconds=0.5)
def hangs(release: str) -> str:
    wait_for_file(release)
    return "too late"


@task
def logs(x: int) -> dict[str, Any]:
    logger = reflow.get_run_logger()
    logger.info("running with %s", x)
    return dict(logger.extra or {})


@task
def asks_for_its_context(x: int) -> Any:
    return reflow.get_run_context()


@task(retries=3)
def takes_a_lock(x: int, lock: Any) -> int:
    return x


@task(retries=3)
def returns_a_lock(x: int) -> Any:
    return threading.Lock()


@task
def raises_with_a_lock(x: int) -> int:
    raise Boom("holding a lock", threading.Lock())


@task(retries=2)
def raises_needs_two_arguments(x: int, marks: str) -> int:
    count_attempt(marks, "needs-two")
    raise NeedsTwoArguments(7, f"code 7 for {x}")


class Payload:
    """A result a test can watch with a weak reference: it tells when the result was freed."""

    def __init__(self, size: int) -> None:
        self.data = bytes(size)


@task
def payload(size: int) -> Payload:
    return Payload(size)


@task
def payload_size(p: Payload) -> int:
    return len(p.data)


@task
async def async_where(x: int) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


# --- the conformance suite -------------------------------------------------------------------


@dataclass(frozen=True)
class Conformer:
    """One executor the suite runs against."""

    id: str
    make: Callable[[pytest.FixtureRequest], Executor]
    """A new executor; the request gives it the fixtures it needs (a cluster)."""
    remote: bool
    """Whether attempts run in another process (they see none of the test's memory)."""
    runs_async: bool = True
    """Whether async tasks run (on the flow's loop); if not, they are refused, saying why."""


def on_the_dask_cluster(request: pytest.FixtureRequest) -> Executor:
    return DaskExecutor(address=request.getfixturevalue("dask_cluster").scheduler_address)


CONFORMERS = [
    Conformer("inline", lambda _: InlineExecutor(), remote=False),
    Conformer("thread", lambda _: ThreadExecutor(4), remote=False),
    Conformer("process", lambda _: ProcessExecutor(2), remote=True),
    Conformer("dask", on_the_dask_cluster, remote=True, runs_async=False),
]


@dataclass(frozen=True)
class Running:
    """A started executor shared by the tests of one conformer."""

    case: Conformer
    executor: Executor


@pytest.fixture(scope="module", params=CONFORMERS, ids=lambda case: case.id)
def conforming(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The executor started once for the module (starts are counted, so the flow runs of the
    tests share its pool instead of each starting its own)."""
    case: Conformer = request.param
    executor = case.make(request)
    executor.start()
    try:
        if case.remote:  # bring every worker up now, so no test's timeout pays for a start
            marks = tmp_path_factory.mktemp(f"warm-{case.id}")
            calls = [
                executor.submit(rendezvous, str(marks), executor.max_workers)
                for _ in range(executor.max_workers)
            ]
            for call in calls:
                call.result(BOUND)
        yield Running(case, executor)
    finally:
        executor.shutdown()


def test_conformer_is_an_executor(conforming: Running) -> None:
    executor = conforming.executor
    assert isinstance(executor, Executor)
    assert isinstance(executor.max_workers, int)
    assert executor.max_workers >= 1
    assert executor.ships_code is conforming.case.remote


def test_submitted_results_come_back_in_order(conforming: Running) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> list[int]:
        futures = [double.submit(i) for i in range(6)]
        return [f.result() for f in futures]

    assert pipeline() == [0, 2, 4, 6, 8, 10]


def test_map_results_with_unmapped_arguments(conforming: Running) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> list[int]:
        return add.map(range(5), unmapped(100)).result()

    assert pipeline() == [100, 101, 102, 103, 104]


def test_futures_passed_downstream_carry_their_results(conforming: Running) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> int:
        doubled = double.map(range(4))
        total = add.submit(add.submit(doubled[0], doubled[1]), add.submit(doubled[2], doubled[3]))
        return total.result()

    flow_run = pipeline.run()

    assert flow_run.result() == 12
    assert all(r.state.name == "Completed" for r in flow_run.task_runs)
    by_key = {r.key: r for r in flow_run.task_runs}
    assert set(by_key["add-2"].upstream) == {by_key["add-0"].id, by_key["add-1"].id}


def test_a_finished_flow_run_frees_its_results_without_the_garbage_collector(
    conforming: Running,
) -> None:
    @flow(executor=conforming.executor, persist=False)
    def pipeline() -> tuple[int, Any]:
        made = payload.submit(200_000)  # large enough to stay on a cluster
        size = payload_size.submit(made)
        return size.result(), weakref.ref(made.result())

    gc.collect()
    gc.disable()  # no cycle collection: the run's records must not be held in a cycle
    try:
        size, result = pipeline()
        assert size == 200_000
        end = time.monotonic() + BOUND  # the executor's threads may still be unwinding
        while result() is not None and time.monotonic() < end:
            time.sleep(0.01)
        assert result() is None
    finally:
        gc.enable()


def test_tasks_run_where_the_executor_says(conforming: Running) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> list[tuple[int, int]]:
        return where.map(range(4)).result()

    pids = {pid for pid, _ in pipeline()}
    if conforming.case.remote:
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}


def test_a_first_failure_per_element_is_retried(conforming: Running, tmp_path: Path) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> list[int]:
        return flaky_double.map(range(4), unmapped(str(tmp_path))).result()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed"
    assert flow_run.result() == [0, 2, 4, 6]
    assert [attempts_of(tmp_path, f"flaky-{i}") for i in range(4)] == [2, 2, 2, 2]
    assert [r.key for r in flow_run.task_runs] == [f"flaky_double-0[{i}]" for i in range(4)]
    for run in flow_run.task_runs:
        assert run.parent_id == flow_run.id
        assert [s.name for s in run.states] == [
            "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"
        ]  # fmt: skip
        assert [a.number for a in run.attempts] == [1, 2]
        first, second = run.attempts
        assert first.state is not None
        assert first.state.name == "Failed"
        assert isinstance(first.state.exception, Flaky)
        assert str(first.state.exception).startswith("first attempt of")
        assert second.state is not None
        assert second.state.name == "Completed"


def test_a_failing_task_brings_back_its_exception_type_and_message(
    conforming: Running,
) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> str:
        future = boom.submit(3)
        with pytest.raises(Boom) as raised:
            future.result()
        assert type(raised.value) is Boom
        assert str(raised.value) == "boom 3"
        assert raised.value.args == ("boom 3",)
        return "caught"

    flow_run = pipeline.run()

    # The body caught it, but the failed run is terminal: it fails the flow with that exception.
    assert flow_run.state.is_failed()
    assert type(flow_run.state.exception) is Boom
    (run,) = flow_run.task_runs
    assert run.state.name == "Failed"
    assert type(run.state.exception) is Boom
    assert len(run.attempts) == 1
    with pytest.raises(Boom) as raised:
        pipeline()
    assert str(raised.value) == "boom 3"


def test_exhausted_retries_record_every_failed_attempt(conforming: Running, tmp_path: Path) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> int:
        return always_boom.submit(5, str(tmp_path)).result()

    flow_run = pipeline.run()

    assert attempts_of(tmp_path, "boom-5") == 2
    (run,) = flow_run.task_runs
    assert run.state.name == "Failed"
    assert [a.state.name for a in run.attempts if a.state] == ["Failed", "Failed"]
    assert all(isinstance(a.state.exception, Boom) for a in run.attempts if a.state)
    assert isinstance(flow_run.state.exception, Boom)
    assert str(flow_run.state.exception) == "boom 5"


def test_a_timed_out_attempt_is_recorded_and_retried(conforming: Running, tmp_path: Path) -> None:
    release = tmp_path / "release"
    try:

        @flow(executor=conforming.executor)
        def pipeline() -> str:
            return hangs_first.submit(str(tmp_path), str(release)).result()

        flow_run = pipeline.run()

        assert flow_run.result() == "second attempt"
        (run,) = flow_run.task_runs
        first, second = run.attempts
        assert first.state is not None
        assert first.state.name == "TimedOut"
        assert isinstance(first.state.exception, AttemptTimeout)
        assert second.state is not None
        assert second.state.name == "Completed"
    finally:
        release.touch()  # a worker process may still be polling for it


def test_async_tasks_run_in_the_flows_process_or_are_refused(conforming: Running) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> list[tuple[int, int]]:
        return async_where.map(range(3)).result()

    if not conforming.case.runs_async:
        flow_run = pipeline.run()
        assert flow_run.state.is_failed()
        assert isinstance(flow_run.state.exception, TypeError)
        assert "async_where is an async function" in str(flow_run.state.exception)
        assert [r.state.name for r in flow_run.task_runs] == ["Failed"] * 3
        assert all(not r.attempts for r in flow_run.task_runs)  # refused, never attempted
        return
    results = pipeline()

    assert {pid for pid, _ in results} == {os.getpid()}
    assert len({ident for _, ident in results}) == 1  # the flow's one event loop thread


def test_the_run_logger_names_the_run_wherever_the_task_runs(conforming: Running) -> None:
    @flow(executor=conforming.executor)
    def pipeline() -> list[dict[str, Any]]:
        return logs.map(range(3)).result()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed", flow_run.state.exception
    assert [extra["task_run_id"] for extra in flow_run.result()] == [
        r.id for r in flow_run.task_runs
    ]
    for extra in flow_run.result():
        assert extra["flow_run_id"] == flow_run.id
        assert extra["flow_name"] == "pipeline"
        assert extra["task_name"] == "logs"


@pytest.mark.parametrize("case", CONFORMERS, ids=lambda case: case.id)
def test_a_fresh_executor_serves_flow_runs_one_after_another(
    case: Conformer, request: pytest.FixtureRequest
) -> None:
    executor = case.make(request)

    @flow(executor=executor)
    def pipeline(n: int) -> list[int]:
        return double.map(range(n)).result()

    assert pipeline(3) == [0, 2, 4]
    assert pipeline(4) == [0, 2, 4, 6]  # started again after the first run shut it down


# --- the Executor protocol: any object that follows it plugs in ------------------------------


class RecordingExecutor:
    """A minimal executor: one thread per call. Counts its starts and shutdowns; with
    `ships_code=True` it round-trips each call through cloudpickle, like a remote one."""

    max_workers = 2

    def __init__(self, ships_code: bool = False) -> None:
        self.ships_code = ships_code
        self.starts = 0
        self.shutdowns = 0
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.starts += 1

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        with self._lock:
            self.calls.append((fn, args))
        if self.ships_code:
            fn, args, kwargs = cloudpickle.loads(cloudpickle.dumps((fn, args, kwargs)))
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def go() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        thread = threading.Thread(target=go)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return future

    def shutdown(self) -> None:
        with self._lock:
            self.shutdowns += 1

    def join(self) -> None:
        for thread in self._threads:
            thread.join(BOUND)


@pytest.fixture
def recording() -> Iterator[RecordingExecutor]:
    executor = RecordingExecutor()
    yield executor
    executor.join()


def test_a_custom_executor_is_started_and_shut_down_once_per_flow_run(
    recording: RecordingExecutor,
) -> None:
    assert isinstance(recording, Executor)
    seen: list[tuple[int, int]] = []

    @flow(executor=recording)
    def pipeline() -> int:
        seen.append((recording.starts, recording.shutdowns))
        doubled = double.map(range(5))
        return add.submit(double.submit(doubled[4]), doubled[3]).result()

    assert pipeline() == 22
    assert seen == [(1, 0)]
    assert (recording.starts, recording.shutdowns) == (1, 1)
    assert recording.calls  # the runs went through it

    assert pipeline() == 22
    assert (recording.starts, recording.shutdowns) == (2, 2)


def test_a_custom_executor_is_shut_down_when_the_flow_fails(
    recording: RecordingExecutor,
) -> None:
    @flow(executor=recording, retries=2)
    def pipeline() -> int:
        return boom.submit(1).result()

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert flow_run.attempts == 3
    assert (recording.starts, recording.shutdowns) == (1, 1)


def test_a_custom_executor_is_shut_down_when_the_body_raises(
    recording: RecordingExecutor,
) -> None:
    @flow(executor=recording)
    def pipeline() -> None:
        double.submit(1)
        raise Boom("in the body")

    with pytest.raises(Boom, match="in the body"):
        pipeline()
    assert (recording.starts, recording.shutdowns) == (1, 1)


def test_a_subflow_is_a_flow_run_of_its_own_on_the_same_executor(
    recording: RecordingExecutor,
) -> None:
    @flow(executor=recording)
    def child(x: int) -> int:
        return double.submit(x).result()

    @flow(executor=recording)
    def parent() -> int:
        return child(double.submit(1).result())

    assert parent() == 4
    assert (recording.starts, recording.shutdowns) == (2, 2)


def test_a_code_shipping_executor_receives_each_attempt_of_the_tasks_function(
    tmp_path: Path,
) -> None:
    shipping = RecordingExecutor(ships_code=True)

    @flow(executor=shipping)
    def pipeline() -> list[int]:
        return flaky_double.map(range(3), unmapped(str(tmp_path))).result()

    try:
        assert pipeline() == [0, 2, 4]
    finally:
        shipping.join()
    assert (shipping.starts, shipping.shutdowns) == (1, 1)
    assert len(shipping.calls) == 6  # two attempts each, each shipped on its own
    assert all("flaky_double" in getattr(fn, "__qualname__", "") for fn, _ in shipping.calls)
    assert sorted(args for _, args in shipping.calls) == sorted(
        [(i, str(tmp_path)) for i in range(3)] * 2
    )


def test_one_executor_serves_two_flow_runs_at_once() -> None:
    shared = ThreadExecutor(2)
    second_started, first_done = threading.Event(), threading.Event()

    @flow(executor=shared)
    def first() -> int:
        return double.submit(1).result()

    @flow(executor=shared)
    def second() -> int:
        second_started.set()
        assert first_done.wait(BOUND)  # the first run has ended and shut the executor down once
        return double.submit(2).result()  # still served: the second run's start is counted

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        later = pool.submit(second)
        assert second_started.wait(BOUND)
        assert first() == 2
        first_done.set()
        assert later.result(BOUND) == 4


class RefusingExecutor(RecordingExecutor):
    """An executor out of capacity: every submit() raises."""

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        raise RuntimeError("no capacity")


def test_an_executor_refusing_a_call_fails_the_flow_run_instead_of_hanging_it() -> None:
    from reflow.task import context

    engines: list[Any] = []

    @flow(executor=RefusingExecutor())
    def pipeline() -> int:
        engines.append(context.runner.get())
        return double.submit(1).result()

    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            outcome.set_result(pipeline.run())
        except BaseException as exc:
            outcome.set_exception(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        flow_run = outcome.result(timeout=5)
        assert flow_run.state.is_failed()
        assert isinstance(flow_run.state.exception, RuntimeError)
        assert "no capacity" in str(flow_run.state.exception)
    finally:
        for engine in engines:  # unstick a flow run that waits for a run nothing will start
            for future in engine.futures:
                if not future.done():
                    future.set_done()
        thread.join(BOUND)


def test_a_code_shipping_executor_refusing_a_call_fails_the_attempt() -> None:
    refusing = RefusingExecutor(ships_code=True)

    @flow(executor=refusing)
    def pipeline() -> int:
        return flaky_double.submit(1, "unused").result()

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, RuntimeError)
    (run,) = flow_run.task_runs
    assert run.state.name == "Failed"
    assert len(run.attempts) == 3  # retries=2: a refusal is a failed attempt like any other
    assert (refusing.starts, refusing.shutdowns) == (1, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (ThreadExecutor, r"write executor=ThreadExecutor\(\)"),
        (ProcessExecutor, r"write executor=ProcessExecutor\(\)"),
        (object(), r"max_workers, ships_code, start\(\), submit\(\) and shutdown\(\)"),
        ("threads", r"reflow\.executors\.Executor.*'threads'"),
    ],
    ids=["thread-class", "process-class", "object", "str"],
)
def test_a_bad_executor_is_a_helpful_type_error(value: Any, message: str) -> None:
    def body() -> None:
        return None

    with pytest.raises(TypeError, match=message):
        flow(executor=value)
    with pytest.raises(TypeError, match=message):
        flow(body).with_options(executor=value)


def test_an_executor_missing_a_method_is_refused() -> None:
    class NoShutdown:
        max_workers = 1
        ships_code = False

        def start(self) -> None: ...

        def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...

    with pytest.raises(TypeError, match="shutdown"):

        @flow(executor=NoShutdown())
        def body() -> None: ...


@pytest.mark.parametrize("make", [ThreadExecutor, ProcessExecutor], ids=["thread", "process"])
@pytest.mark.parametrize("workers", [0, -1, True, 2.0, "2"])
def test_max_workers_must_be_a_positive_int(make: Callable[[Any], Any], workers: Any) -> None:
    with pytest.raises(ValueError, match="max_workers"):
        make(workers)


def test_an_unknown_start_method_names_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match="spawn"):
        ProcessExecutor(1, mp_context="teleport")


# --- ThreadExecutor --------------------------------------------------------------------------


def test_thread_executor_runs_tasks_at_the_same_time() -> None:
    barrier = threading.Barrier(3, timeout=BOUND)  # breaks (fails the tasks) unless 3 meet

    @task
    def meet(i: int) -> int:
        barrier.wait()
        return threading.get_ident()

    @flow(executor=ThreadExecutor(3))
    def pipeline() -> tuple[list[int], int]:
        futures = [meet.submit(i) for i in range(3)]
        return [f.result() for f in futures], threading.get_ident()

    idents, flow_thread = pipeline()

    assert len(set(idents)) == 3
    assert flow_thread not in idents


def test_thread_executor_runs_at_most_max_workers_at_once() -> None:
    pairs = threading.Barrier(2, timeout=BOUND)  # two at a time meet here, round after round
    lock = threading.Lock()
    running, most = [0], [0]

    @task
    def paired(i: int) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        pairs.wait()
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    @flow(executor=ThreadExecutor(2))
    def pipeline() -> list[str]:
        return paired.map(range(10)).result()

    names = pipeline()

    assert most[0] == 2
    assert all(name.startswith("reflow-worker") for name in names)


# --- InlineExecutor --------------------------------------------------------------------------


def test_inline_executor_runs_each_task_before_submit_returns_in_the_calling_thread() -> None:
    log: list[tuple[int, int]] = []

    @task
    def record(i: int) -> int:
        log.append((i, threading.get_ident()))
        return i

    @flow(executor=InlineExecutor())
    def pipeline() -> list[int]:
        me = threading.get_ident()
        for i in range(3):
            future = record.submit(i)
            assert future.done()
            assert log[-1] == (i, me)
        mapped = record.map(range(3, 6))
        assert all(f.done() for f in mapped)
        return [i for i, _ in log]

    assert pipeline() == [0, 1, 2, 3, 4, 5]
    assert {ident for _, ident in log} == {threading.get_ident()}


# --- ProcessExecutor -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessExecutor]:
    """A started two-worker pool shared by the process tests that leave no worker stuck."""
    executor = ProcessExecutor(2)
    executor.start()
    yield executor
    executor.shutdown()


def test_process_tasks_run_in_other_processes(processes: ProcessExecutor) -> None:
    @flow(executor=processes)
    def pipeline() -> list[tuple[int, int]]:
        return where.map(range(4)).result()

    pids = {pid for pid, _ in pipeline()}

    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


def test_closures_and_lambdas_travel_to_worker_processes(processes: ProcessExecutor) -> None:
    factor = 7
    times = task(name="times")(lambda x: (x * factor, os.getpid()))

    def shifted(x: int) -> int:
        return x + factor

    shift = task(shifted)

    @flow(executor=processes)
    def pipeline() -> tuple[list[tuple[int, int]], list[int]]:
        return times.map(range(3)).result(), shift.map(range(3)).result()

    products, shifts = pipeline()

    assert [p for p, _ in products] == [0, 7, 14]
    assert os.getpid() not in {pid for _, pid in products}
    assert shifts == [7, 8, 9]


def test_an_unpicklable_argument_is_a_serialization_error_not_retried(
    processes: ProcessExecutor,
) -> None:
    @flow(executor=processes)
    def pipeline() -> int:
        return takes_a_lock.submit(1, threading.Lock()).result()

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    error = flow_run.state.exception
    assert isinstance(error, SerializationError)
    assert isinstance(error, TypeError)
    assert "takes_a_lock" in str(error)
    assert "lock" in str(error)
    (run,) = flow_run.task_runs
    assert run.state.name == "Failed"
    assert len(run.attempts) == 1  # retries=3, but sending it again fails the same way
    with pytest.raises(SerializationError, match="takes_a_lock"):
        pipeline()


def test_an_unpicklable_result_is_a_serialization_error_not_retried(
    processes: ProcessExecutor,
) -> None:
    @flow(executor=processes)
    def pipeline() -> Any:
        return returns_a_lock.submit(1).result()

    flow_run = pipeline.run()

    error = flow_run.state.exception
    assert isinstance(error, SerializationError)
    assert "returns_a_lock" in str(error)
    (run,) = flow_run.task_runs
    assert len(run.attempts) == 1


def test_an_exception_from_a_worker_notes_the_worker_process(processes: ProcessExecutor) -> None:
    @flow(executor=processes)
    def pipeline() -> int:
        return boom.submit(2).result()

    with pytest.raises(Boom) as raised:
        pipeline()

    assert str(raised.value) == "boom 2"
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "worker process" in notes
    # The worker's traceback travels in the note. Its frames name the task's function; their
    # source lines may not (cloudpickle >= 3.1.3 ships code by value as "<dynamic-code>").
    assert ", in boom" in notes


def test_an_unpicklable_exception_arrives_as_text(processes: ProcessExecutor) -> None:
    @flow(executor=processes)
    def pipeline() -> int:
        return raises_with_a_lock.submit(1).result()

    with pytest.raises(RemoteError) as raised:
        pipeline()

    assert "Boom" in str(raised.value)
    assert "holding a lock" in str(raised.value)
    assert ", in raises_with_a_lock" in "\n".join(raised.value.__notes__)


def test_an_exception_that_cannot_be_rebuilt_arrives_as_text(
    processes: ProcessExecutor, tmp_path: Path
) -> None:
    @flow(executor=processes)
    def pipeline() -> int:
        return raises_needs_two_arguments.submit(1, str(tmp_path)).result()

    flow_run = pipeline.run()

    error = flow_run.state.exception
    assert isinstance(error, RemoteError)
    assert not isinstance(error, TypeError)  # not the TypeError of rebuilding it
    assert "NeedsTwoArguments" in str(error)
    assert "code 7 for 1" in str(error)
    (run,) = flow_run.task_runs
    # A task failure like any other: retried (retries=2), each attempt raising in the worker.
    assert len(run.attempts) == 3
    assert attempts_of(tmp_path, "needs-two") == 3


def test_get_run_context_in_a_worker_process_says_why_it_is_missing(
    processes: ProcessExecutor,
) -> None:
    @flow(executor=processes)
    def pipeline() -> Any:
        return asks_for_its_context.submit(1).result()

    with pytest.raises(RuntimeError, match="worker process"):
        pipeline()


def test_a_task_hanging_in_a_worker_times_out(processes: ProcessExecutor, tmp_path: Path) -> None:
    release = tmp_path / "release"
    try:

        @flow(executor=processes)
        def pipeline() -> str:
            return hangs.submit(str(release)).result()

        flow_run = pipeline.run()

        (run,) = flow_run.task_runs
        assert run.state.name == "TimedOut"
        assert run.state.is_failed()
        assert isinstance(run.state.exception, AttemptTimeout)
        assert flow_run.state.is_failed()
        assert isinstance(flow_run.state.exception, TimeoutError)
    finally:
        release.touch()


def test_a_flow_run_ends_when_its_task_timed_out_in_a_hung_worker(tmp_path: Path) -> None:
    release = tmp_path / "release"
    timed_out = threading.Event()

    def watch(change: events.StateChange) -> None:
        if change.run_kind == "task" and change.state.name == "TimedOut":
            timed_out.set()

    @flow(executor=ProcessExecutor(1))
    def pipeline() -> str:
        return hangs.submit(str(release)).result()

    with events.subscribe(watch), concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            running = pool.submit(pipeline.run)
            assert timed_out.wait(BOUND)
            # The attempt timed out; the worker still hangs: the flow run ends all the same.
            flow_run = running.result(timeout=BOUND / 2)
            assert flow_run.state.is_failed()
            (run,) = flow_run.task_runs
            assert run.state.name == "TimedOut"
        finally:
            release.touch()  # let the worker (and a flow run stuck on it) finish


@pytest.mark.slow
def test_the_retry_of_an_attempt_hung_in_the_only_worker_runs(tmp_path: Path) -> None:
    release = tmp_path / "release"
    executor = ProcessExecutor(1)
    executor.start()  # held by the test: the worker is up before the flow's clock starts
    try:
        assert executor.submit(os.getpid).result(BOUND) != os.getpid()

        @flow(executor=executor)
        def pipeline() -> str:
            return hangs_first_slowly.submit(str(tmp_path), str(release)).result()

        flow_run = pipeline.run()

        (run,) = flow_run.task_runs
        assert [a.state.name for a in run.attempts if a.state] == ["TimedOut", "Completed"]
        assert flow_run.result() == "second attempt"
    finally:
        release.touch()
        executor.shutdown()


def kill_own_worker_first(marks: str) -> int:
    """Kills its own worker process on the first attempt; the retry returns its pid."""
    if count_attempt(marks, "dies_first") == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


dies_first = task(retries=1, retry_on=ValueError, name="dies_first")(kill_own_worker_first)
dies_once = task(name="dies_once")(kill_own_worker_first)


def test_a_worker_killed_mid_attempt_crashes_it_and_the_retry_runs_on_a_new_worker(
    processes: ProcessExecutor, tmp_path: Path
) -> None:
    @flow(executor=processes)
    def pipeline() -> int:
        return dies_first.submit(str(tmp_path)).result()

    flow_run = pipeline.run()

    assert flow_run.state.is_completed()
    (run,) = flow_run.task_runs
    first, second = (a.state for a in run.attempts)
    assert first is not None
    assert second is not None
    assert first.name == "Crashed"
    assert type(first.exception).__name__ == "ProcessExpired"
    assert "died" in "".join(getattr(first.exception, "__notes__", []))
    assert second.is_completed()  # retried although retry_on=ValueError: a crash is retried
    assert flow_run.result() != os.getpid()
    assert [s.name for s in run.states] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"
    ]  # fmt: skip


def test_a_worker_killed_in_the_last_attempt_ends_the_run_crashed(
    processes: ProcessExecutor, tmp_path: Path
) -> None:
    @flow(executor=processes)
    def pipeline() -> int:
        return dies_once.submit(str(tmp_path)).result()

    flow_run = pipeline.run()

    (run,) = flow_run.task_runs
    assert run.state.name == "Crashed"
    assert len(run.attempts) == 1
    assert flow_run.state.is_failed()
    assert type(flow_run.state.exception).__name__ == "ProcessExpired"
