"""Real processes, real kills: a 200-task flow SIGKILLed at random points, resumed each time.

After each kill, what the store recorded as completed never runs again; the finished run's
result equals an uninterrupted run's; the SQLite file passes its integrity check.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from reflow.store import SQLiteStore

HERE = Path(__file__).parent
N = 200
EXPECTED = sum(range(N))


def completed_steps(database: Path) -> set[int]:
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT call_key FROM reflow_task_runs WHERE state_type = 'COMPLETED'"
        ).fetchall()
    except sqlite3.OperationalError:
        return set()  # the child died before the schema was made
    finally:
        conn.close()
    return {int(key.split("-")[1]) for (key,) in rows}


def test_a_flow_killed_thirty_times_finishes_without_redoing_recorded_work(
    tmp_path: Path,
) -> None:
    database, side = tmp_path / "kills.db", tmp_path / "side.txt"
    env = dict(
        os.environ, KILL_DB=str(database), KILL_SIDE=str(side),
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    script = str(HERE / "kill_chain.py")
    chance = random.Random(20261123)
    run_id = ""
    kills = 0
    checks: list[tuple[int, set[int]]] = []  # (side file length at a kill, recorded then)
    while kills < 30:
        child = subprocess.Popen([sys.executable, script, run_id], env=env)
        if not _progress(side, child):  # it finished before doing anything new
            break
        time.sleep(chance.uniform(0, 0.06))  # a random point of the run's life
        if child.poll() is not None:
            break
        length = len(side.read_text().split())
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        kills += 1
        checks.append((length, completed_steps(database)))
        run_id = run_id or _run_id(database)

    final = subprocess.run(
        [sys.executable, script, run_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stderr
    assert kills == 30
    lines = [int(x) for x in side.read_text().split()]
    for length, recorded in checks:
        redone = set(lines[length:]) & recorded
        assert not redone, f"steps {sorted(redone)} were recorded completed, then ran again"

    with SQLiteStore(database) as store:
        record = store.flow_run(run_id)
        assert record is not None
        assert record.state == "Completed"
        assert record.result is not None
        assert record.result.data == str(EXPECTED).encode()
        assert store.integrity_check() == "ok"
    assert sorted(set(lines)) == list(range(N))  # every step ran; the result is exact


def _progress(side: Path, child: subprocess.Popen[bytes]) -> bool:
    """Wait until the child has run one more step (True), or has exited (False)."""
    start = len(side.read_text().split()) if side.exists() else 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if side.exists() and len(side.read_text().split()) > start:
            return True
        time.sleep(0.005)
    raise TimeoutError("the flow made no progress for 60 s")


def _run_id(database: Path) -> str:
    conn = sqlite3.connect(database)
    try:
        (run_id,) = conn.execute("SELECT id FROM reflow_flow_runs").fetchone()
    finally:
        conn.close()
    return str(run_id)
