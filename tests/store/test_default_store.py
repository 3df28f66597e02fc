"""Flow runs are kept by default: in `$REFLOW_HOME/reflow.db`, else `.reflow/` in the working
directory; `persist=False` or `REFLOW_STORE=memory` keep them in memory."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import reflow
from reflow import flow, task
from reflow.executors import ProcessExecutor
from reflow.store import SQLiteStore, StoreError
from reflow.store.persistence import persistence
from reflow.store.writer import Recorder

from . import default_flow

HERE = Path(__file__).parent
BOUND = 60.0
"""A safety bound (seconds) on every wait for a child process."""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A REFLOW_HOME of the test's own: its default store is this test's alone."""
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return tmp_path / "home"


@task
def double(x: int) -> int:
    return x * 2


@flow
def pipeline(n: int) -> list[int]:
    return double.map(range(n)).result()


def test_a_flow_without_options_is_kept_in_reflow_home(home: Path) -> None:
    flow_run = pipeline.run(2)

    with SQLiteStore(home / "reflow.db") as store:
        record = store.flow_run(flow_run.id)
        assert record is not None
        assert (record.name, record.state, record.parameters) == ("pipeline", "Completed", {"n": 2})
        assert record.flow_path is not None
        assert record.flow_path.endswith(":pipeline")
        assert [t.key for t in store.task_runs(flow_run.id)] == ["double-0[0]", "double-0[1]"]
        assert [s.name for s in store.states(flow_run.id)] == ["Pending", "Running", "Completed"]


def test_without_reflow_home_runs_are_kept_in_dot_reflow_of_the_working_directory(
    tmp_path: Path,
) -> None:
    script = (
        "from reflow import flow, task\n"
        "@task\n"
        "def inc(x: int) -> int:\n"
        "    return x + 1\n"
        "@flow\n"
        "def plain(x: int) -> int:\n"
        "    return inc(x)\n"
        "print(plain.run(1).id)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("REFLOW_HOME", "REFLOW_STORE")}
    child = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=BOUND, check=False,
    )  # fmt: skip

    assert child.returncode == 0, child.stderr
    with SQLiteStore(tmp_path / ".reflow" / "reflow.db") as store:
        record = store.flow_run(child.stdout.strip())
        assert record is not None
        assert (record.name, record.state) == ("plain", "Completed")
    assert (tmp_path / ".reflow" / "key").exists()  # its signing key beside it


def test_persist_false_keeps_the_run_in_memory(home: Path) -> None:
    in_memory = pipeline.with_options(persist=False)

    flow_run = in_memory.run(2)

    assert flow_run.state.result() == [0, 2]
    assert flow_run.persistence is None
    assert not (home / "reflow.db").exists()


def test_reflow_store_memory_keeps_every_run_in_memory(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_STORE", "memory")

    assert pipeline.run(2).persistence is None
    assert pipeline.with_options(persist=True).run(2).persistence is None
    assert not (home / "reflow.db").exists()


def test_reflow_store_names_the_store_of_flows_without_options(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_STORE", str(tmp_path / "elsewhere.db"))

    flow_run = pipeline.run(1)

    with SQLiteStore(tmp_path / "elsewhere.db") as store:
        assert store.flow_run(flow_run.id) is not None
    assert not (home / "reflow.db").exists()


@flow
def plain_child(x: int) -> int:
    return double(x)


def test_a_subflow_without_options_is_kept_as_its_parent_is(home: Path) -> None:
    @flow(persist=False)
    def in_memory() -> int:
        return plain_child(1)

    @flow
    def kept() -> int:
        return plain_child(2)

    remembered = in_memory.run()
    (forgotten_child,) = remembered.subflow_runs
    assert forgotten_child.persistence is None
    assert not (home / "reflow.db").exists()

    flow_run = kept.run()
    (child,) = flow_run.subflow_runs
    with SQLiteStore(home / "reflow.db") as store:
        record = store.flow_run(child.id)
        assert record is not None
        assert (record.parent_id, record.state) == (flow_run.id, "Completed")


def test_a_run_kept_by_default_resumes_in_another_process(tmp_path: Path, home: Path) -> None:
    side = tmp_path / "side.txt"
    env = dict(
        os.environ, DEFAULT_SIDE=str(side), DIE_AT="3",
        PYTHONPATH=os.pathsep.join([str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    child = subprocess.run(
        [sys.executable, "-c", "from tests.store import default_flow; default_flow.chain(5)"],
        env=env, capture_output=True, text=True, timeout=BOUND, check=False,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr
    with SQLiteStore(home / "reflow.db") as store:
        (died,) = store.flow_runs()
    assert died.state == "Running"  # its process died: nothing ended it

    os.environ["DEFAULT_SIDE"] = str(side)
    try:
        state = reflow.resume(died.id)  # no store named: the default one
    finally:
        del os.environ["DEFAULT_SIDE"]

    assert state.result() == sum(i * 10 for i in range(5))
    assert [int(line) for line in side.read_text().split()] == [0, 1, 2, 3, 3, 4]
    with SQLiteStore(home / "reflow.db") as store:
        record = store.flow_run(died.id)
        assert record is not None
        assert record.state == "Completed"


def test_a_flow_called_in_a_worker_process_is_not_written_there(home: Path) -> None:
    @flow(executor=ProcessExecutor(1))
    def outer(x: int) -> str:
        return default_flow.nested.submit(x).result()  # shipped: .submit, not a call

    flow_run = outer.run(1)

    inner_id = flow_run.state.result()
    with SQLiteStore(home / "reflow.db") as store:
        assert store.flow_run(flow_run.id) is not None  # the flow's own process writes
        assert [t.key for t in store.task_runs(flow_run.id)] == ["nested-0"]
        assert store.flow_run(inner_id) is None  # the worker process wrote nothing


def test_each_store_is_opened_once_per_process_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = persistence(None, None)
    assert persistence(None, None) is first
    assert persistence(True, None) is first

    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "other"))
    other = persistence(None, None)
    assert other is not None
    assert other is not first
    assert persistence(None, str(tmp_path / "other" / "reflow.db")) is other  # same file

    monkeypatch.chdir(tmp_path)
    assert persistence(None, "sqlite:///other/reflow.db") is other


def test_flows_called_from_many_threads_are_all_kept(home: Path) -> None:
    ids: list[str] = []
    start = threading.Barrier(8)

    def caller() -> None:
        start.wait(BOUND)
        for i in range(10):
            ids.append(pipeline.run(i % 3).id)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)

    with SQLiteStore(home / "reflow.db") as store:
        records = [store.flow_run(run_id) for run_id in ids]
        assert len(ids) == 80
        assert all(r is not None and r.state == "Completed" for r in records)
        assert store.integrity_check() == "ok"


def test_a_loop_of_small_flows_keeps_one_writer_thread(home: Path) -> None:
    pipeline(1)
    kept = persistence(None, None)
    assert kept is not None
    writer = kept.recorder._writer

    for _ in range(50):
        pipeline(1)

    assert writer is not None
    assert kept.recorder._writer is writer


_parent_kept: list[object] = []


def _run_flows_in_a_forked_child(out: str) -> None:
    """In the forked child: its own store, not the parent's; its runs written by it."""
    kept = persistence(None, None)
    if kept is None or kept is _parent_kept[0]:
        os._exit(3)
    with open(out, "w") as ids:
        for i in range(5):
            ids.write(pipeline.run(i).id + "\n")


def test_a_forked_child_keeps_its_runs_through_a_store_of_its_own(
    tmp_path: Path, home: Path
) -> None:
    before = pipeline.run(1)  # the parent's store is open, its writer thread running
    _parent_kept[:] = [persistence(None, None)]
    out = tmp_path / "child-ids.txt"
    child = multiprocessing.get_context("fork").Process(
        target=_run_flows_in_a_forked_child, args=(str(out),)
    )
    child.start()
    during = [pipeline.run(i).id for i in range(5)]  # the parent goes on writing meanwhile
    child.join(BOUND)
    after = pipeline.run(2)

    assert child.exitcode == 0
    children = out.read_text().split()
    assert len(children) == 5
    with SQLiteStore(home / "reflow.db") as store:
        for run_id in [before.id, *during, *children, after.id]:
            record = store.flow_run(run_id)
            assert record is not None, run_id
            assert record.state == "Completed", run_id
        assert store.integrity_check() == "ok"


def test_at_exit_a_run_still_going_is_written_and_the_process_ends(home: Path) -> None:
    script = (
        "import threading\n"
        "from reflow import flow\n"
        "running = threading.Event()\n"
        "@flow\n"
        "def forever() -> None:\n"
        "    running.set()\n"
        "    threading.Event().wait()\n"
        "threading.Thread(target=forever, daemon=True).start()\n"
        "running.wait()\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND,
        check=False,
    )  # fmt: skip

    assert child.returncode == 0, child.stderr
    with SQLiteStore(home / "reflow.db") as store:
        (record,) = store.flow_runs()
    assert (record.name, record.state) == ("forever", "Running")  # written, not lost


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"mount {' '.join(args)} failed")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder no process can write in: a read-only bind mount (root ignores permissions)."""
    where = tmp_path / "ro"
    where.mkdir()
    if os.geteuid() != 0:
        where.chmod(0o555)
        yield where
        where.chmod(0o755)
        return
    try:
        _mount("--bind", str(where), str(where))
        _mount("-o", "remount,bind,ro", str(where))
    except OSError as exc:
        pytest.skip(f"cannot make a read-only bind mount here: {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_read_only_working_directory_is_an_error_naming_the_fixes(
    read_only_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as inside:  # left before the mount goes
        inside.delenv("REFLOW_HOME")
        inside.chdir(read_only_dir)

        with pytest.raises(StoreError) as caught:
            pipeline(1)

        message = str(caught.value)
        for fix in ("REFLOW_HOME", "persist=False", "REFLOW_STORE=memory"):
            assert fix in message
        assert pipeline.with_options(persist=False)(1) == [0]  # the fix works
        inside.setenv("REFLOW_STORE", "memory")
        assert pipeline(1) == [0]


def _wait_for(check: Callable[[], object]) -> None:
    """Poll `check` until it is true (the writer commits on its own time): at most BOUND s."""
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, "the store never showed it"
        time.sleep(0.02)


def test_a_running_flows_store_shows_its_running_and_waiting_task_runs(home: Path) -> None:
    release = threading.Event()

    @task
    def slow() -> int:
        release.wait(BOUND)
        return 1

    @task
    def after(x: int) -> int:
        return x + 1

    @flow
    def waiting() -> int:
        return after.submit(slow.submit()).result()

    done: list[reflow.FlowRun] = []
    runner = threading.Thread(target=lambda: done.append(waiting.run()))
    runner.start()
    try:
        with SQLiteStore(home / "reflow.db") as store:

            def shown() -> dict[str, str]:
                runs = store.flow_runs(name="waiting")
                return {t.key: t.state for t in store.task_runs(runs[0].id)} if runs else {}

            _wait_for(lambda: shown() == {"slow-0": "Running", "after-0": "Pending"})
    finally:
        release.set()
        runner.join(BOUND)

    (flow_run,) = done
    with SQLiteStore(home / "reflow.db") as store:
        states = {t.key: t.state for t in store.task_runs(flow_run.id)}
    assert states == {"slow-0": "Completed", "after-0": "Completed"}


def test_the_writer_thread_ends_when_idle_and_the_next_run_starts_another(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Recorder, "idle_exit", 0.05)
    first = pipeline.run(1)
    kept = persistence(None, None)
    assert kept is not None
    _wait_for(lambda: kept.recorder._writer is None)

    second = pipeline.run(2)

    with SQLiteStore(home / "reflow.db") as store:
        for flow_run in (first, second):
            record = store.flow_run(flow_run.id)
            assert record is not None
            assert record.state == "Completed"
