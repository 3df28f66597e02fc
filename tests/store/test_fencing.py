"""Fencing: a process that lost its run (taken over while its heartbeat was stale) writes
nothing more of it, and its call ends with `RunTakenOver`.

The real-process test stops a running process (SIGSTOP) at a moment it holds no lock of the
database, lets its heartbeat go stale, resumes its run in another process to the end, and lets
the first go on (SIGCONT): the record must stay the second's, and the first must end with the
error. The in-process tests take a run over from under its process with the store's own
statement, as another process would.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reflow import flow, get_run_context, task
from reflow.atoms import FunctorTask, LinearFlow, run
from reflow.store import RunTakenOver, SQLiteStore, open_store
from reflow.store.persistence import persistence

HERE = Path(__file__).parent
SCRIPT = HERE / "fence_flows.py"
HEARTBEAT = 0.1
REFLOW = [sys.executable, "-m", "reflow.cli"]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


# --- in this process ---------------------------------------------------------------------------


def written_so_far(db: str) -> None:
    """This process's writer writes what it holds back now (a new run's first row waits for
    the writer's next batch), as it would have some time later."""
    kept = persistence(True, db)
    assert kept is not None
    kept.recorder.flush()


def take_over_from_elsewhere(db: str, run_id: str) -> None:
    """What another process resuming the run does once its heartbeat looks stale."""
    written_so_far(db)
    with open_store(db) as store:
        record = store.flow_run(run_id)
        assert record is not None
        assert store.take_over(record, "Pending", "PENDING", "elsewhere:42", time.time())


@pytest.mark.parametrize("key", [None, "weekly-7"], ids=["new", "keyed"])
def test_a_flow_run_taken_over_stops_writing_and_raises(db: str, key: str | None) -> None:
    ran: list[int] = []

    @task
    def step(i: int) -> int:
        ran.append(i)
        if i == 2:
            run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
            take_over_from_elsewhere(db, run_id)
        return i

    @flow(store=db)
    def steps() -> list[int]:
        return [step(i) for i in range(6)]

    with pytest.raises(RunTakenOver) as taken:
        steps(run_key=key)  # a keyed run's row is written as it begins, a new one's later

    message = str(taken.value)
    assert "was taken over by elsewhere:42" in message
    assert "stopped writing it" in message
    assert taken.value.worker == "elsewhere:42"
    assert ran[:3] == [0, 1, 2]
    with open_store(db) as store:
        (record,) = store.flow_runs()
        task_runs = store.task_runs(record.id)
        states = [s.name for s in store.states(record.id)]
    assert (record.state, record.worker, record.epoch) == ("Pending", "elsewhere:42", 1)
    assert "Cancelled" not in states  # nothing of its end here reached the store
    assert all(t.state != "Cancelled" for t in task_runs)
    assert "step-2" not in {t.key for t in task_runs if t.state == "Completed"}


def test_an_atoms_run_taken_over_stops_at_its_next_change_without_reverts(db: str) -> None:
    reverted: list[str] = []

    def atom(name: str, taken_here: bool = False) -> FunctorTask:
        def execute() -> str:
            if taken_here:
                take_over_from_elsewhere(db, "fenced-1")
            return name

        return FunctorTask(execute, name=name, provides=name, revert=lambda: reverted.append(name))

    flow_ = LinearFlow("fenced").add(atom("a"), atom("b", taken_here=True), atom("c"))

    with pytest.raises(RunTakenOver, match=r"atoms run fenced-1 .* was taken over by elsewhere"):
        run(flow_, runs=db, run_id="fenced-1")

    assert reverted == []  # the run is the other process's: nothing here undoes its work
    with open_store(db) as store:
        record = store.flow_run("fenced-1")
        atoms = {a.name: a.state for a in store.atoms("fenced-1")}
    assert record is not None
    assert (record.state, record.worker, record.epoch) == ("Pending", "elsewhere:42", 1)
    assert atoms.get("b") != "Completed"  # it completed here after the take-over
    assert atoms.get("c") in (None, "Pending")  # it never ran


def test_a_run_cancelled_at_once_in_the_store_fences_off_a_process_that_still_ran_it(
    db: str,
) -> None:
    @task
    def step(i: int) -> int:
        if i == 1:  # as if the run had been marked Crashed, then cancelled, meanwhile
            run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
            written_so_far(db)
            with open_store(db) as store:
                store.mark_crashed(run_id, time.time(), "no heartbeat")
                assert store.request_cancel(run_id, time.time(), "ops") == "cancelled"
        return i

    @flow(store=db)
    def steps() -> list[int]:
        return [step(i) for i in range(3)]

    with pytest.raises(RunTakenOver, match=r"was changed by another process \(it is Cancelled"):
        steps()

    with open_store(db) as store:
        (record,) = store.flow_runs()
    assert (record.state, record.epoch) == ("Cancelled", 1)


# --- real processes ----------------------------------------------------------------------------


def test_a_stopped_process_whose_run_was_resumed_elsewhere_corrupts_nothing(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    side = tmp_path / "side.txt"
    app = f"reflow-fence-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(
        os.environ, FENCE_DB=db, FENCE_SIDE=str(side), REFLOW_HEARTBEAT_SECONDS=str(HEARTBEAT),
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        PGAPPNAME=app,  # the first process's PostgreSQL sessions, to see it holds no lock
    )  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, str(SCRIPT), "flow", "run"], env=env, stdout=subprocess.PIPE, text=True
    )
    request.addfinalizer(lambda: _end(first))
    _wait(lambda: len(_steps(side, first.pid)) >= 5, "the first process runs 5 steps")
    _stop_between_transactions(first, db, app)
    run_id = _only_run(db)
    _wait(lambda: _stale(db, run_id), "the stopped process's heartbeat goes stale")

    second = subprocess.run(
        [*REFLOW, "runs", "resume", run_id, "--store", db], env=dict(env, PGAPPNAME="second"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    with open_store(db) as store:
        resumed = store.flow_run(run_id)
    assert resumed is not None
    assert resumed.state == "Completed"
    other = resumed.worker
    assert other is not None
    assert other.startswith(f"{socket.gethostname()}:")
    assert other != f"{socket.gethostname()}:{first.pid}"

    os.kill(first.pid, signal.SIGCONT)
    out, _ = first.communicate(timeout=60)

    assert first.returncode == 3, out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"taken flow run {run_id} (chain) was taken over by {other} ")
    with open_store(db) as store:
        record = store.flow_run(run_id)
        task_runs = {t.key: t for t in store.task_runs(run_id)}
        states = [s.name for s in store.states(run_id)]
        codec_results = {key: bytes(t.result.data) for key, t in task_runs.items() if t.result}
        if isinstance(store, SQLiteStore):
            assert store.integrity_check() == "ok"
    assert record is not None
    assert (record.state, record.worker, record.epoch) == ("Completed", other, 1)
    assert states[-1] == "Completed"
    assert "Cancelled" not in states
    second_pid = int(other.rpartition(":")[2])
    by_second = _steps(side, second_pid)
    assert by_second  # the second process ran the steps the first had not finished
    for i in range(30):
        stored = codec_results[f"step-{i}"]
        pid = second_pid if i in by_second else first.pid
        assert stored == f'"{pid}:{i}"'.encode(), (i, stored)  # never the first's after all
    assert all(t.state == "Completed" for t in task_runs.values())


def test_a_stopped_atoms_process_whose_run_was_resumed_elsewhere_corrupts_nothing(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    side = tmp_path / "side.txt"
    app = f"reflow-fence-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(
        os.environ, FENCE_DB=db, FENCE_SIDE=str(side), REFLOW_HEARTBEAT_SECONDS=str(HEARTBEAT),
        PGAPPNAME=app,
    )  # fmt: skip
    command = [sys.executable, str(SCRIPT), "atoms"]
    first = subprocess.Popen([*command, "run", "a1"], env=env, stdout=subprocess.PIPE, text=True)
    request.addfinalizer(lambda: _end(first))
    _wait(lambda: len(_steps(side, first.pid)) >= 5, "the first process runs 5 atoms")
    _stop_between_transactions(first, db, app)
    _wait(lambda: _stale(db, "a1"), "the stopped process's heartbeat goes stale")

    second = subprocess.run(
        [*command, "resume", "a1"], env=dict(env, PGAPPNAME="second"), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    with open_store(db) as store:
        resumed = store.flow_run("a1")
    assert resumed is not None
    other = resumed.worker

    os.kill(first.pid, signal.SIGCONT)
    out, _ = first.communicate(timeout=60)

    assert first.returncode == 3, out
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(f"taken atoms run a1 (fenced) was taken over by {other} ")
    )
    with open_store(db) as store:
        record = store.flow_run("a1")
        atoms = store.atoms("a1")
    assert record is not None
    assert (record.state, record.worker, record.epoch) == ("Completed", other, 1)
    second_pid = int(str(other).rpartition(":")[2])
    by_second = _steps(side, second_pid)
    assert by_second
    for atom in atoms:
        i = int(atom.name[1:])
        pid = second_pid if i in by_second else first.pid
        assert atom.state == "Completed"
        assert atom.result is not None
        assert atom.result.data == f'"{pid}:{i}"'.encode(), (i, atom.result.data)


def _steps(side: Path, pid: int) -> set[int]:
    """The steps process `pid` ran (finished), as the side file says."""
    if not side.exists():
        return set()
    lines = [line.split() for line in side.read_text().splitlines() if line.strip()]
    return {int(i) for who, i in lines if int(who) == pid}


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for: {what}")
        time.sleep(0.01)


def _stop_between_transactions(process: subprocess.Popen[str], db: str, app: str) -> None:
    """SIGSTOP the process at a moment it holds no lock of the database: stopped inside a
    transaction, it would keep the other process waiting for as long as it is stopped."""
    for _ in range(200):
        os.kill(process.pid, signal.SIGSTOP)
        if not _holds_a_lock(db, app):
            return
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.005)  # let it finish the transaction it was in
    raise RuntimeError("the process was inside a transaction at every one of 200 stops")


def _holds_a_lock(db: str, app: str) -> bool:
    if "://" not in db:
        conn = sqlite3.connect(db, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return False
        except sqlite3.OperationalError:  # database is locked: by the stopped process
            return True
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state <> 'idle'",
            (app,),
        ).fetchone()
    return bool(row and row[0])


def _only_run(db: str) -> str:
    with open_store(db) as store:
        (record,) = store.flow_runs()
    return record.id


def _stale(db: str, run_id: str) -> bool:
    with open_store(db) as store:
        record = store.flow_run(run_id)
    assert record is not None
    return record.heartbeat is not None and time.time() - record.heartbeat > 4 * HEARTBEAT


def _end(process: subprocess.Popen[Any]) -> None:
    """The test's child never outlives it, stopped or not."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
