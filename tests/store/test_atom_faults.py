"""Real processes, real kills: kept atoms runs SIGKILLed and resumed in a new process.

A 50-atom LinearFlow is killed at random points and resumed after each kill: no atom the store
recorded Completed runs again (the side file, where each atom notes its execution, shows it),
the result equals an uninterrupted run's, and the SQLite file passes its integrity check; the
same on PostgreSQL, with fewer kills. A Times(3) controller killed in its second try counts
its tries across the two processes, and a run killed while reverting goes on reverting.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reflow.atoms import run
from reflow.store import SQLiteStore, open_store
from tests.store import kill_atoms

SCRIPT = str(Path(__file__).parent / "kill_atoms.py")


def start(which: str, db: str, side: Path, resuming: bool) -> subprocess.Popen[str]:
    env = dict(os.environ, KILL_DB=db, KILL_SIDE=str(side))
    command = [sys.executable, SCRIPT, which, "r1", *(["resume"] if resuming else [])]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def finish(which: str, db: str, side: Path, resuming: bool = True) -> str:
    """Run the child to its end; its last line: `ok <result>` or `failed <error>`."""
    child = start(which, db, side, resuming)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0, out
    return out.splitlines()[-1]


def lines(side: Path) -> list[str]:
    return side.read_text().split() if side.exists() else []


def recorded(db: str) -> tuple[bool, set[str]]:
    """(whether the run is in the store, the atoms it recorded Completed)."""
    with open_store(db) as store:
        if store.atom_run("r1") is None:
            return False, set()
        return True, {a.name for a in store.atoms("r1") if a.state == "Completed"}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


def test_a_chain_killed_at_random_points_finishes_without_redoing_recorded_atoms(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = tmp_path / "side.txt"
    sqlite = not db.startswith("postgresql")
    chance = random.Random(20261124)
    kills, wanted = 0, 6 if sqlite else 3
    checks: list[tuple[int, set[str]]] = []  # (side file length after a kill, recorded then)
    while kills < wanted:
        child = start("chain", db, side, resuming=recorded(db)[0])
        first = child.stdout.readline() if child.stdout else ""  # it ran one atom more
        if not first.startswith("s"):  # it finished without running any
            child.communicate(timeout=120)
            break
        time.sleep(chance.uniform(0, 0.025))  # a random point of the run's life
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=120)  # and close its pipe
        if child.returncode != -signal.SIGKILL:
            break  # it ended before the kill landed
        kills += 1
        checks.append((len(lines(side)), recorded(db)[1]))

    last = finish("chain", db, side)

    assert kills == wanted
    done = lines(side)
    for length, completed in checks:
        redone = set(done[length:]) & completed
        assert not redone, f"atoms {sorted(redone)} were recorded Completed, then ran again"
    assert sorted(set(done)) == sorted(f"s{i}" for i in range(kill_atoms.N))
    monkeypatch.setenv("KILL_SIDE", str(tmp_path / "uninterrupted.txt"))
    uninterrupted = run(kill_atoms.chain(), store={"x0": 0})
    assert last == "ok " + json.dumps(uninterrupted, sort_keys=True)
    with open_store(db) as store:
        record = store.flow_run("r1")
        assert record is not None
        assert record.state == "Completed"
    if sqlite:
        with SQLiteStore(db) as store:
            assert store.integrity_check() == "ok"


def test_a_controller_killed_in_its_second_try_counts_its_tries_across_processes(
    tmp_path: Path,
) -> None:
    db, side = str(tmp_path / "runs.db"), tmp_path / "side.txt"
    killed = start("times", db, side, resuming=False)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL

    last = finish("times", db, side)

    assert last == "failed TimeoutError: try 3 timed out"  # three tries in all
    assert lines(side) == [
        "x:call:1", "r:call:1", "x:call:2", "killed",  # the first process
        "x:call:2", "r:call:2", "x:call:3", "r:call:3",  # the resumed one: tries 2 and 3
    ]  # fmt: skip
    with SQLiteStore(db) as store:
        (history,) = store.retry_histories("r1")
        assert [t.value.data if t.value else None for t in history.tries] == [b"1", b"2", b"3"]
        assert store.integrity_check() == "ok"


def test_a_run_killed_while_reverting_goes_on_reverting_where_it_stopped(
    tmp_path: Path,
) -> None:
    db, side = str(tmp_path / "runs.db"), tmp_path / "side.txt"
    killed = start("revert", db, side, resuming=False)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL

    last = finish("revert", db, side)

    assert last == "failed RemoteFailure: d timed out"  # the failure of the first process
    assert lines(side) == [
        "x:a", "x:b", "x:c", "x:d", "r:d", "r:c", "killed",  # killed in b's revert
        "r:b", "r:a",  # resumed: b's revert again, then a's; nothing executed again
    ]  # fmt: skip
    with SQLiteStore(db) as store:
        assert [a.state for a in store.atoms("r1")] == ["Reverted"] * 4
        record = store.flow_run("r1")
        assert record is not None
        assert (record.state, record.error) == (
            "Failed",
            "RemoteFailure: builtins.TimeoutError: d timed out",
        )
