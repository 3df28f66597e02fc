"""No two processes carry on the same run at once (reflow.store.claims).

With real processes: two children resume the same run, whose first process was SIGKILLed, at
the same moment, and exactly one of them runs it while the other is refused with `RunHeld`;
a run held by a live child is refused here, and taken over once that child is killed. Atoms
runs (`reflow.atoms.resume`) and flow runs (`reflow.resume`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import reflow
from reflow.atoms import FunctorTask, LinearFlow, resume, run
from reflow.store import SQLiteStore, StoreConflict, open_store
from reflow.store.claims import RunHeld
from tests.store import claim_runs

SCRIPT = str(Path(__file__).parent / "claim_runs.py")
HOST = socket.gethostname()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def side(tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The side file every step notes itself in (this process's steps too)."""
    monkeypatch.setenv("CLAIM_DB", db)
    monkeypatch.setenv("CLAIM_SIDE", str(tmp_path / "side.txt"))
    return tmp_path / "side.txt"


_children: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_child_left() -> Iterator[None]:
    """A test that fails half-way leaves no child waiting on its stdin."""
    yield
    while _children:
        process = _children.pop()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


def child(kind: str, action: str, run_id: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, SCRIPT, kind, action, run_id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )  # fmt: skip
    _children.append(process)
    return process


def killed_run(kind: str, db: str) -> tuple[str, str]:
    """A run whose process was SIGKILLed in its `gate` step: its id, and what names it to the
    children (its id, or its key "k1")."""
    handle = "k1" if kind.endswith("-key") else "r1"
    first = child(kind, "start", handle)
    first.communicate(timeout=120)
    assert first.returncode == -signal.SIGKILL
    if kind == "atoms":
        return "r1", "r1"
    with open_store(db) as store:
        (record,) = store.flow_runs(name="gated")
    return record.id, handle if kind != "flow" else record.id


def tell(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def said(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def steps(side: Path) -> list[tuple[str, int]]:
    return [
        (name, int(pid)) for name, pid in (line.split() for line in side.read_text().splitlines())
    ]


@pytest.mark.parametrize("kind", ["atoms", "flow", "atoms-key", "flow-key"])
def test_two_processes_resuming_a_run_at_once_run_it_once(kind: str, db: str, side: Path) -> None:
    run_id, handle = killed_run(kind, db)
    racers = [child(kind, "resume", handle) for _ in range(2)]
    assert [said(r) for r in racers] == ["ready", "ready"]

    for racer in racers:
        tell(racer)  # both resume now
    first = [said(r) for r in racers]

    assert sorted(line.split()[0] for line in first) == ["held", "running"]
    winner = racers[first.index("running")]
    loser = racers[1 - first.index("running")]
    refusal = first[1 - first.index("running")]
    assert f"run {run_id} (gated)" in refusal
    assert f"{HOST}:{winner.pid}" in refusal
    tell(winner)  # let its gate through
    out, _ = winner.communicate(timeout=120)
    loser.communicate(timeout=120)
    assert out.splitlines()[-1] == "ok ['after', 'before', 'gate']"
    ran = steps(side)
    assert [name for name, _ in ran] == ["before", "killed", "gate", "after"]
    assert {pid for name, pid in ran[2:]} == {winner.pid}  # the loser ran nothing


@pytest.mark.parametrize("kind", ["atoms", "flow"])
def test_a_run_held_by_a_live_process_is_refused_until_that_process_dies(
    kind: str, db: str, side: Path
) -> None:
    run_id, handle = killed_run(kind, db)
    holder = child(kind, "resume", handle)
    assert said(holder) == "ready"
    tell(holder)
    assert said(holder) == "running"  # it holds the run, waiting in its gate

    with pytest.raises(RunHeld) as refused:
        resume_here(kind, run_id, db)

    assert refused.value.run_id == run_id
    assert refused.value.worker == f"{HOST}:{holder.pid}"
    assert "Wait for it to end; if that process is dead, resume the run" in str(refused.value)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=120)

    assert resume_here(kind, run_id, db) == ["after", "before", "gate"]
    assert [name for name, _ in steps(side)] == ["before", "killed", "gate", "after"]


def resume_here(kind: str, run_id: str, db: str) -> list[str]:
    if kind == "atoms":
        return sorted(resume(run_id, claim_runs.atoms_flow(), runs=db))
    return sorted(reflow.resume(run_id, db).result())


# --- without children: who holds a run ---------------------------------------------------------


def interrupted(db: str, run_id: str = "r1") -> None:
    """An atoms run interrupted in this process (it stays Running, held by nobody)."""
    stops = iter([True])

    def work() -> str:
        if next(stops, False):
            raise KeyboardInterrupt
        return "done"

    with pytest.raises(KeyboardInterrupt):
        run(plain(work), runs=db, run_id=run_id)


def plain(work: object) -> LinearFlow:
    return LinearFlow("plain").add(FunctorTask(work, name="work", provides="work"))  # type: ignore[arg-type]


def held_elsewhere(db: str, heartbeat_age: float) -> None:
    """The run's row says a process on another host holds it, its heartbeat this old."""
    import time

    with SQLiteStore(db) as store, store._transaction() as cur:
        cur.execute(
            "UPDATE reflow_flow_runs SET worker = 'elsewhere:4242', heartbeat = ? WHERE id = 'r1'",
            (time.time() - heartbeat_age,),
        )


def test_a_run_with_a_fresh_heartbeat_from_another_host_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    interrupted(db)
    held_elsewhere(db, heartbeat_age=1)

    with pytest.raises(RunHeld, match=r"atoms run r1 \(plain\) is Running: elsewhere:4242 runs"):
        resume("r1", plain(lambda: "done"), runs=db)


def test_a_run_whose_heartbeat_went_stale_is_taken_over(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    interrupted(db)
    held_elsewhere(db, heartbeat_age=3600)

    assert resume("r1", plain(lambda: "done"), runs=db) == {"work": "done"}
    with SQLiteStore(db) as store:
        record = store.flow_run("r1")
    assert record is not None
    assert record.worker != "elsewhere:4242"


def test_a_run_this_process_runs_is_refused_to_another_resume_here(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    interrupted(db)
    refusals: list[BaseException] = []

    def work() -> str:
        try:
            resume("r1", plain(lambda: "twice"), runs=db)
        except RunHeld as exc:
            refusals.append(exc)
        return "done"

    assert resume("r1", plain(work), runs=db) == {"work": "done"}
    assert len(refusals) == 1
    assert isinstance(refusals[0], StoreConflict)


def test_a_flow_run_resumed_in_another_thread_meanwhile_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    inside = threading.Event()
    go_on = threading.Event()
    paused_once = iter([True])

    @reflow.task
    def wait() -> str:
        if next(paused_once, False):
            raise reflow.Pause("wait for the word")
        inside.set()
        go_on.wait(60)
        return "done"

    @reflow.flow(store=db)
    def waits() -> str:
        return wait()

    flow_run = waits.run()
    assert flow_run.state.is_paused()
    results: list[object] = []
    resumer = threading.Thread(target=lambda: results.append(waits.resume(flow_run.id)))
    resumer.start()
    inside.wait(60)

    try:
        with pytest.raises(RunHeld, match=f"flow run {flow_run.id} \\(waits\\) is "):
            waits.resume(flow_run.id)
    finally:
        go_on.set()
        resumer.join(60)
    assert [getattr(s, "name", s) for s in results] == ["Completed"]
