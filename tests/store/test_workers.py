"""Queued runs and workers: each run runs once; a killed worker's run is finished by another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reflow
import reflow.worker
from reflow.store import SQLiteStore, open_store, run_worker, submit_run

HERE = Path(__file__).parent
RUNS = 500  # queued runs for four worker processes, as the issue asks
sys.path.insert(0, str(HERE))
import worker_flows  # noqa: E402 - found on the path just set, as the workers find it


def test_a_worker_runs_each_queued_run_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORK_SIDE", str(tmp_path / "side.txt"))
    store = str(tmp_path / "queue.db")
    ids = [reflow.submit_run(worker_flows.job, i, store=store) for i in range(5)]

    with SQLiteStore(tmp_path / "queue.db") as db:
        assert {db.flow_run(i).state for i in ids} == {"Scheduled"}  # type: ignore[union-attr]

    ran = reflow.worker.run(store, idle_exit=0.2, poll=0.01)

    assert ran == 5
    assert sorted(int(x) for x in (tmp_path / "side.txt").read_text().split()) == [0, 1, 2, 3, 4]
    with SQLiteStore(tmp_path / "queue.db") as db:
        records = [db.flow_run(i) for i in ids]
    assert [r.state for r in records] == ["Completed"] * 5  # type: ignore[union-attr]
    assert run_worker(store, idle_exit=0.05, poll=0.01) == 0  # nothing left


def test_a_bad_parameter_is_refused_when_queued(tmp_path: Path) -> None:
    from reflow import ParameterError

    with pytest.raises(ParameterError, match="'i'"):
        submit_run(worker_flows.job, "not a number", store=str(tmp_path / "q.db"))


def test_workers_share_a_postgres_queue_and_survive_a_kill(
    postgres_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    env = dict(
        os.environ, WORK_SIDE=str(side), VICTIM="7", REFLOW_HEARTBEAT_SECONDS="0.1",
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    os.environ["WORK_SIDE"] = str(side)
    try:
        ids = [submit_run(worker_flows.job, i, store=postgres_url) for i in range(RUNS)]
    finally:
        del os.environ["WORK_SIDE"]
    code = (
        "import reflow.store, worker_flows; "
        f"reflow.store.run_worker({postgres_url!r}, idle_exit=3, poll=0.05, stale_after=1)"
    )
    logs = [(tmp_path / f"worker-{n}.log").open("w") for n in range(4)]
    workers = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=log) for log in logs]
    try:
        marker = side.with_suffix(".victim")
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        victim = int(marker.read_text())
        os.kill(victim, signal.SIGKILL)  # a worker dies mid-run
        for worker in workers:
            worker.wait(timeout=120)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for log in logs:
            log.close()

    ran = [int(x) for x in side.read_text().split()]
    assert sorted(set(ran)) == list(range(RUNS))
    assert sorted(ran) == sorted([*range(RUNS), 7])  # each once; 7 again after its worker died
    store = open_store(postgres_url)
    try:
        records = [store.flow_run(i) for i in ids]
        assert [r.state for r in records] == ["Completed"] * RUNS  # type: ignore[union-attr]
        assert {r.result for r in records} != {None}  # type: ignore[union-attr]
    finally:
        store.close()
