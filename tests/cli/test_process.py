"""The real `reflow` command in processes of its own: exit codes, output without a terminal,
cancelling across processes, and `reflow serve` started, firing and stopped by signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from reflow.store import SQLiteStore

from .conftest import REFLOW, reflow_env, run_reflow, target

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    """Poll `predicate()` until it is true (bounded): for things another process does."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s")
        time.sleep(0.05)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*REFLOW, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=reflow_env(),
    )  # fmt: skip


def test_exit_codes_and_one_line_errors(store: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('no module named slack_sdk')\n")
    SQLiteStore(store).close()
    started = {  # at once: each process spends most of its time importing
        "failed": _start("run", target("fails"), "--store", store),
        "usage": _start("run", target("add"), "-p", "a=x", "--store", store),
        "option": _start("run", "--no-such-option"),
        "debug": _start("--debug", "run", f"{broken}:x", "--store", store),
    }
    done = {name: (p, *p.communicate(timeout=60)) for name, p in started.items()}

    failed, out, _ = done["failed"]
    assert failed.returncode == 1
    assert "explode-0 Failed: RuntimeError: the disk is full" in out

    usage, _, err = done["usage"]
    assert usage.returncode == 2
    assert err.count("\n") == 1
    assert err.startswith("reflow: error: flow add: parameter 'a'")

    option, _, err = done["option"]
    assert option.returncode == 2
    assert err.strip().splitlines() == [
        "reflow: error: No such option: --no-such-option (see `reflow run --help`)"
    ]

    debug, _, err = done["debug"]
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in err
    assert "ImportError: no module named slack_sdk" in err


def test_the_standup_example_runs_and_shows_its_run(store: str) -> None:
    done = run_reflow("run", str(ROOT / "examples/standup.py") + ":standup", "--store", store)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "fetch_updates-0 AwaitingRetry: attempt 1 failed (ServiceUnavailable" in out
    assert "check_member-0[0] Skipped: ada already posted" in out
    assert "send_reminder-0[0] Skipped: upstream check_member-0[0] skipped" in out
    assert "report: platform" in done.stderr  # the run's log line, on the console
    with SQLiteStore(store) as db:
        (record,) = db.flow_runs()
    shown = run_reflow("runs", "show", record.id, "--store", store)
    assert shown.returncode == 0
    assert "retry history" in shown.stdout
    assert "3 posted, 3 reminded, 0 failed" in shown.stdout

    failing = run_reflow(
        "run", str(ROOT / "examples/standup.py"), "-p", 'unreachable=["erin"]', "--store", store
    )
    assert failing.returncode == 1
    assert "Reverted" in failing.stdout  # the reminders that were sent are taken back
    assert "ChatError: chat.postMessage to erin: messages_closed" in failing.stdout


def test_a_run_is_cancelled_from_another_process(store: str) -> None:
    SQLiteStore(store).close()
    running = subprocess.Popen(
        [*REFLOW, "run", target("slow"), "-p", "n=600", "-p", "seconds=0.02", "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=reflow_env(),
    )  # fmt: skip
    try:
        with SQLiteStore(store) as db:
            _wait_for(lambda: db.flow_runs(state_type="RUNNING"))
            (record,) = db.flow_runs(state_type="RUNNING")
        cancel = run_reflow("runs", "cancel", record.id[:10], "--wait", "--store", store)
        out, _ = running.communicate(timeout=60)
    finally:
        running.kill()
    assert cancel.returncode == 0, cancel.stderr
    assert "asked its process" in cancel.stdout
    assert "ended Cancelled" in cancel.stdout
    assert running.returncode == 1
    assert f"flow run slow {record.id} Cancelled" in out


def test_serve_fires_an_interval_runs_ad_hoc_runs_and_stops_on_sigterm(
    store: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    SQLiteStore(store).close()
    server = subprocess.Popen(
        [*REFLOW, "serve", target("tick"), "--interval", "1s", "-p", f"side={side}",
         "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=reflow_env(),
    )  # fmt: skip
    try:
        with SQLiteStore(store) as db:
            _wait_for(lambda: db.flow_runs(state_type="COMPLETED", name="tick"))
            listed = run_reflow("schedules", "ls", "--json", "--store", store)
            (schedule,) = json.loads(listed.stdout)
            assert schedule["name"] == "tick"
            assert schedule["schedule"] == "every 1s"
            assert schedule["next_run"] > schedule["last_run"]
            assert schedule["server"] is not None

            adhoc = run_reflow("run", target("add"), "-p", "a=1", "--submit", "--store", store)
            run_id = adhoc.stdout.strip()
            _wait_for(lambda: (db.flow_run(run_id) or db.flow_runs()[0]).state == "Completed")
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0, err
    assert "SIGTERM" in err
    assert "stopped: ran" in err
    assert side.read_text().split()  # the scheduled runs ran in the serving process
    with SQLiteStore(store) as db:
        (kept,) = db.schedules()
    assert kept.server is None  # nobody serves it now


def test_an_interrupted_run_exits_130_crashed_and_resumes(store: str) -> None:
    SQLiteStore(store).close()
    running = _start("run", target("slow"), "-p", "n=150", "-p", "seconds=0.01", "--store", store)
    try:
        with SQLiteStore(store) as db:
            _wait_for(
                lambda: len(db.task_runs(db.flow_runs()[0].id)) >= 3 if db.flow_runs() else False
            )
        running.send_signal(signal.SIGINT)
        _, err = running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == 130
    assert "is Crashed; carry it on with `reflow runs resume" in err
    with SQLiteStore(store) as db:
        (record,) = db.flow_runs()
        assert record.state == "Crashed"
        done_before = sum(t.state == "Completed" for t in db.task_runs(record.id))

    resumed = run_reflow("runs", "resume", record.id, "--store", store)

    assert resumed.returncode == 0, resumed.stderr
    assert "nap (150 runs)  150 Completed" in resumed.stdout
    with SQLiteStore(store) as db:
        assert db.flow_run(record.id).state == "Completed"  # type: ignore[union-attr]
    assert done_before >= 2
