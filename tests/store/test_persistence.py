"""Flow runs kept in a store, and resumed from it in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reflow
from reflow import flow, task
from reflow.store import SQLiteStore, mark_crashed

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A REFLOW_HOME of the test's own (its signing key, its default store)."""
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return tmp_path / "home"


@task
def double(x: int) -> int:
    return x * 2


def test_a_persisted_run_is_in_the_store_when_the_flow_returns(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"

    @flow(store=str(path))
    def pipeline(n: int) -> list[int]:
        return double.map(range(n)).result()

    flow_run = pipeline.run(3)

    with SQLiteStore(path) as store:
        record = store.flow_run(flow_run.id)
        tasks = store.task_runs(flow_run.id)
        states = [s.name for s in store.states(flow_run.id)]
    assert record is not None
    assert (record.name, record.state, record.parameters) == ("pipeline", "Completed", {"n": 3})
    assert record.flow_path is not None
    assert record.flow_path.endswith(
        ":test_a_persisted_run_is_in_the_store_when_the_flow_returns.<locals>.pipeline"
    )
    assert sorted((t.key, t.state) for t in tasks) == [
        ("double-0[0]", "Completed"), ("double-0[1]", "Completed"), ("double-0[2]", "Completed"),
    ]  # fmt: skip
    assert states == ["Pending", "Running", "Completed"]


def test_a_failed_run_keeps_its_error(tmp_path: Path) -> None:
    @task
    def broken() -> None:
        raise ValueError("no disk")

    @flow(store=str(tmp_path / "runs.db"))
    def pipeline() -> None:
        broken()

    flow_run = pipeline.run()

    with SQLiteStore(tmp_path / "runs.db") as store:
        record = store.flow_run(flow_run.id)
        (run,) = store.task_runs(flow_run.id)
    assert record is not None
    assert (record.state, record.error) == ("Failed", "ValueError: no disk")
    assert (run.state, run.error) == ("Failed", "ValueError: no disk")


def test_persist_true_uses_the_default_store_in_reflow_home(home: Path) -> None:
    @flow(persist=True)
    def pipeline() -> int:
        return double(2)

    flow_run = pipeline.run()

    with SQLiteStore(home / "reflow.db") as store:
        assert store.flow_run(flow_run.id) is not None


def test_a_crashed_run_resumes_without_redoing_completed_calls(tmp_path: Path) -> None:
    database, side = tmp_path / "crash.db", tmp_path / "side.txt"
    env = dict(
        os.environ, CRASH_DB=str(database), CRASH_SIDE=str(side), DIE_AT="4",
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    child = subprocess.run(
        [sys.executable, "-c", "import crashing_flow; crashing_flow.chain(8)"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr
    with SQLiteStore(database) as store:
        (crashed,) = store.flow_runs()
    assert crashed.state == "Running"  # its process died: nothing ended it

    os.environ["CRASH_DB"], os.environ["CRASH_SIDE"] = str(database), str(side)
    sys.path.insert(0, str(HERE))
    try:
        assert mark_crashed(str(database), stale_after=3600) == []  # its heartbeat is fresh
        assert mark_crashed(str(database), stale_after=0) == [crashed.id]
        assert mark_crashed(str(database), stale_after=0) == []  # reported once
        trace = Path(f"{side}.crashed").read_text().split()
        assert trace == [crashed.id, "Crashed"]  # its on_crashed hook ran, here
        state = reflow.resume(crashed.id, str(database))
    finally:
        sys.path.remove(str(HERE))
        del os.environ["CRASH_DB"], os.environ["CRASH_SIDE"]

    assert state.is_completed()
    assert state.result() == sum(i * 10 for i in range(8))
    ran = [int(line) for line in side.read_text().split()]
    assert ran == [0, 1, 2, 3, 4, 4, 5, 6, 7]  # 0-3 once; 4 was running at the crash
    with SQLiteStore(database) as store:
        record = store.flow_run(crashed.id)
        assert record is not None
        assert record.state == "Completed"
        assert store.integrity_check() == "ok"


def test_resuming_an_unknown_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no flow run 'nope'"):
        reflow.resume("nope", str(tmp_path / "empty.db"))


def test_a_postgres_store_keeps_runs_too(postgres_url: str) -> None:
    @flow(store=postgres_url)
    def pipeline(n: int) -> int:
        return sum(double.map(range(n)).result())

    flow_run = pipeline.run(4)

    from reflow.store import PostgresStore

    with PostgresStore(postgres_url) as store:
        record = store.flow_run(flow_run.id)
        assert record is not None
        assert record.state == "Completed"
        assert len(store.task_runs(flow_run.id)) == 4


def test_a_run_key_runs_the_flow_once(tmp_path: Path) -> None:
    calls: list[int] = []

    @task
    def work(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow(store=str(tmp_path / "runs.db"))
    def nightly(x: int) -> int:
        return work(x)

    first = nightly.run(1, run_key="2026-11-23")
    second = nightly.run(1, run_key="2026-11-23")
    other = nightly(5, run_key="2026-11-24")

    assert first.result() == 2
    assert second.result() == 2
    assert second.id == first.id
    assert other == 6
    assert calls == [1, 5]


def test_a_run_key_of_a_failed_run_gives_that_failure_without_running(tmp_path: Path) -> None:
    attempts: list[str] = []

    @task
    def flaky() -> str:
        attempts.append("flaky")
        raise ConnectionError("down")

    @flow(store=str(tmp_path / "runs.db"))
    def job() -> str:
        return flaky()

    failed = job.run(run_key="job-1")
    again = job.run(run_key="job-1")

    assert failed.state.is_failed()
    assert again.id == failed.id
    assert again.state.is_failed()
    with pytest.raises(RuntimeError, match="ConnectionError: down"):
        again.result()
    assert attempts == ["flaky"]


def test_a_run_key_needs_a_store() -> None:
    @flow(persist=False)
    def job() -> int:
        return 1

    with pytest.raises(ValueError, match="needs runs kept in a store"):
        job(run_key="k")


def test_a_running_flow_run_beats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_HEARTBEAT_SECONDS", "0.02")
    database = tmp_path / "beats.db"
    beats: list[float] = []

    @task
    def watch(run_id: str) -> None:
        """Waits (bounded) until the store shows two heartbeats of its own run."""
        with SQLiteStore(database) as store:
            deadline = time.monotonic() + 20
            while len(set(beats)) < 2 and time.monotonic() < deadline:
                record = store.flow_run(run_id)
                if record is not None and record.heartbeat is not None:
                    beats.append(record.heartbeat)
                time.sleep(0.01)

    @flow(store=str(database))
    def job() -> None:
        watch(reflow.get_run_context().flow_run.id)  # type: ignore[union-attr]

    flow_run = job.run()

    assert flow_run.state.is_completed()
    assert len(set(beats)) >= 2
    with SQLiteStore(database) as store:
        record = store.flow_run(flow_run.id)
    assert record is not None
    assert record.worker is not None
    assert record.worker.endswith(f":{os.getpid()}")


@task
async def add_one(x: int) -> int:
    return x + 1


async def test_an_async_flow_is_kept_and_resumed(tmp_path: Path) -> None:
    calls: list[int] = []

    @task
    async def counted(x: int) -> int:
        calls.append(x)
        return x * 10

    @flow(store=str(tmp_path / "runs.db"))
    async def job(n: int) -> int:
        return await counted(await add_one(n))

    first = await job.run(1)
    again = await job.resume(first.id)  # the completed calls are reused, not run

    assert first.result() == 20
    assert again.result() == 20
    assert calls == [2]


async def test_a_run_key_runs_an_async_flow_once(tmp_path: Path) -> None:
    calls: list[int] = []

    @task
    async def work(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow(store=str(tmp_path / "runs.db"))
    async def nightly(x: int) -> int:
        return await work(x)

    first = await nightly.run(1, run_key="2026-11-23")
    second = await nightly.run(1, run_key="2026-11-23")
    other = await nightly(5, run_key="2026-11-24")

    assert (first.result(), second.result(), other) == (2, 2, 6)
    assert second.id == first.id
    assert calls == [1, 5]


async def test_a_run_key_of_an_unfinished_async_run_resumes_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    calls: list[str] = []

    @task
    async def step(name: str) -> str:
        calls.append(name)
        return name

    @flow(store=str(path))
    async def nightly() -> list[str]:
        return [await step("a"), await step("b")]

    first = await nightly.run(run_key="k")
    with SQLiteStore(path) as store:  # as if its process had died before it ended
        store._query(
            "UPDATE reflow_flow_runs SET state = 'Running', state_type = 'RUNNING' WHERE id = ?",
            (first.id,),
        )
        store._query("DELETE FROM reflow_task_runs WHERE call_key = 'step-1'")

    again = await nightly.run(run_key="k")

    assert again.id == first.id
    assert again.result() == ["a", "b"]
    assert calls == ["a", "b", "b"]  # only the call not recorded ran again


def test_a_paused_run_is_resumed_from_another_process(tmp_path: Path) -> None:
    database, side = tmp_path / "approval.db", tmp_path / "side.txt"
    env = dict(
        os.environ, APPROVAL_DB=str(database), APPROVAL_SIDE=str(side),
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    script = (
        "import reflow, approval_flow\n"
        "try:\n    approval_flow.payout(21)\n"
        "except reflow.FlowPaused as paused:\n    print(paused.flow_run.id)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    run_id = child.stdout.strip()
    with SQLiteStore(database) as store:
        record = store.flow_run(run_id)
    assert record is not None
    assert record.state == "Paused"

    os.environ["APPROVAL_DB"], os.environ["APPROVAL_SIDE"] = str(database), str(side)
    sys.path.insert(0, str(HERE))
    try:
        state = reflow.resume(run_id, str(database))
    finally:
        sys.path.remove(str(HERE))
        del os.environ["APPROVAL_DB"], os.environ["APPROVAL_SIDE"]

    assert state.result() == "paid 42"  # type: ignore[attr-defined]
    marks = [line.split() for line in side.read_text().splitlines()]
    assert [name for name, _ in marks] == ["prepare", "approve", "pay"]
    assert marks[0][1] != str(os.getpid())  # prepared in the child, not run again here
    assert {pid for _, pid in marks[1:]} == {str(os.getpid())}  # approved and paid here


def test_a_resumed_run_keeps_the_states_of_reused_calls(tmp_path: Path) -> None:
    """A call that ended Skipped in an earlier process is reused as Skipped, not as Completed:
    a downstream that runs only after the resume still skips with it."""
    ran: list[str] = []

    @task
    def lookup(member: str) -> str:
        ran.append("lookup")
        raise reflow.Skip(f"{member} already posted")

    @task
    def approve(note: str) -> str:
        ran.append("approve")
        if not reflow.get_run_context().task_run.resumed:  # type: ignore[union-attr]
            raise reflow.Pause("approve the reminders")
        return note

    @task
    def remind(note: str) -> str:
        ran.append("remind")
        return f"reminded: {note}"

    @flow(store=str(tmp_path / "runs.db"), reference_tasks=[])
    def standup(member: str) -> str:
        note = lookup.submit(member)
        approve("go")
        reminder = remind.submit(note)
        reminder.wait()
        return reminder.state.name

    paused = standup.run("ana")
    assert paused.state.is_paused()
    assert ran == ["lookup", "approve"]

    state = standup.resume(paused.id)
    assert state.result() == "Skipped"  # remind skipped with its upstream, after the resume
    assert ran == ["lookup", "approve", "approve"]  # lookup reused, remind never ran
    with SQLiteStore(tmp_path / "runs.db") as store:
        by_key = {t.key: t.state for t in store.task_runs(paused.id)}
    assert by_key == {"lookup-0": "Skipped", "approve-0": "Completed", "remind-0": "Skipped"}
