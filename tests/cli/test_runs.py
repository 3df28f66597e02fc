"""`reflow runs ls | show | logs | resume | cancel` through typer's runner."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reflow.cli import app
from reflow.store import SQLiteStore, submit_run
from reflow.store.persistence import find_flow

from .conftest import FLOWS, target


def _run(runner: CliRunner, store: str, name: str, *params: str) -> str:
    args = ["run", target(name), *[a for p in params for a in ("-p", p)], "--store", store]
    runner.invoke(app, args)
    with SQLiteStore(store) as db:
        return db.flow_runs(limit=1)[0].id


def test_ls_lists_runs_newest_first_and_filters_them(runner: CliRunner, store: str) -> None:
    first = _run(runner, store, "add", "a=1")
    failed = _run(runner, store, "fails")

    listed = runner.invoke(app, ["runs", "ls", "--store", store])
    assert listed.exit_code == 0
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == [failed[:12], first[:12]]
    assert [r[2] for r in rows] == ["Failed", "Completed"]

    only = runner.invoke(app, ["runs", "ls", "--state", "failed", "--json", "--store", store])
    assert [r["id"] for r in json.loads(only.stdout)] == [failed]
    by_flow = runner.invoke(app, ["runs", "ls", "--flow", "add", "--json", "--store", store])
    assert [r["id"] for r in json.loads(by_flow.stdout)] == [first]
    limited = runner.invoke(app, ["runs", "ls", "--limit", "1", "--json", "--store", store])
    assert len(json.loads(limited.stdout)) == 1


def test_show_gives_states_task_runs_errors_and_retry_history(
    runner: CliRunner, store: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    side.write_text("")
    run_id = _run(runner, store, "twice", f"side={side}")

    shown = runner.invoke(app, ["runs", "show", run_id[:8], "--store", store])

    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert out.startswith(f"twice {run_id}  Failed")
    for text in (
        "states",
        "Pending",
        "Running",
        "task runs",
        "step_one-0",
        "step_two-0",
        "ConnectionError: the upload was cut off",
        f"side={json.dumps(str(side))}",
    ):
        assert text in out, text  # fmt: skip
    as_json = json.loads(
        runner.invoke(app, ["runs", "show", "last", "--json", "--store", store]).stdout
    )
    assert as_json["id"] == run_id
    assert [t["key"] for t in as_json["task_runs"]] == ["step_one-0", "step_two-0"]
    assert [s["name"] for s in as_json["states"]] == ["Pending", "Running", "Failed"]


def test_resume_carries_on_a_failed_run_without_redoing_completed_calls(
    runner: CliRunner, store: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    side.write_text("")
    run_id = _run(runner, store, "twice", f"side={side}")

    resumed = runner.invoke(app, ["runs", "resume", run_id, "--store", store])

    assert resumed.exit_code == 0, resumed.output
    assert side.read_text().split() == ["one", "two-failed", "two"]  # step one ran once
    with SQLiteStore(store) as db:
        assert db.flow_run(run_id).state == "Completed"  # type: ignore[union-attr]
    again = runner.invoke(app, ["runs", "resume", run_id, "--store", store])
    assert again.exit_code == 1
    assert "nothing to resume" in again.stderr


def test_a_run_made_by_the_cli_records_its_file_so_anyone_can_resume_it(
    runner: CliRunner, store: str
) -> None:
    run_id = _run(runner, store, "add", "a=2")
    with SQLiteStore(store) as db:
        path = db.flow_run(run_id).flow_path  # type: ignore[union-attr]
    assert path == f"{FLOWS}:add"
    assert find_flow(path).name == "add"


def test_cancel_ends_a_queued_run_at_once(runner: CliRunner, store: str) -> None:
    run_id = submit_run(find_flow(f"{FLOWS}:add"), 1, store=store)

    cancelled = runner.invoke(app, ["runs", "cancel", run_id, "--store", store])

    assert cancelled.exit_code == 0, cancelled.output
    assert "was Scheduled: now Cancelled" in cancelled.stdout
    with SQLiteStore(store) as db:
        assert db.flow_run(run_id).state == "Cancelled"  # type: ignore[union-attr]
        assert db.claim("nobody", time.time()) is None  # no worker will take it
    twice = runner.invoke(app, ["runs", "cancel", run_id, "--store", store])
    assert twice.exit_code == 1
    assert "already ended Cancelled" in twice.stderr


def test_a_running_run_is_cancelled_by_its_own_process(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_HEARTBEAT_SECONDS", "0.05")
    SQLiteStore(store).close()  # made before two connections race to make it
    slow = find_flow(f"{FLOWS}:slow").with_options(store=store)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(run=slow.run(400, 0.02)))
    worker.start()
    with SQLiteStore(store) as db:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not db.flow_runs(state_type="RUNNING"):
            time.sleep(0.01)
        (running,) = db.flow_runs(state_type="RUNNING")
        assert db.request_cancel(running.id, time.time(), "a test") == "requested"
    worker.join(timeout=60)

    flow_run = outcome["run"]
    assert flow_run.state.is_cancelled()
    assert any(r.state.is_cancelled() for r in flow_run.task_runs)
    with SQLiteStore(store) as db:
        assert db.flow_run(flow_run.id).state == "Cancelled"  # type: ignore[union-attr]


def test_a_resume_carries_on_a_cancelled_run_forgetting_the_request_before_it(
    runner: CliRunner, store: str
) -> None:
    run_id = submit_run(find_flow(f"{FLOWS}:add"), 1, store=store)
    runner.invoke(app, ["runs", "cancel", run_id, "--store", store])  # Cancelled at once

    resumed = runner.invoke(app, ["runs", "resume", run_id, "--store", store])

    assert resumed.exit_code == 0, resumed.output
    with SQLiteStore(store) as db:
        assert db.flow_run(run_id).state == "Completed"  # type: ignore[union-attr]
        assert db.cancel_requested([run_id]) == set()


def test_a_cancel_asked_as_another_process_takes_the_run_over_is_not_lost(
    runner: CliRunner, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reflow.store.control as control

    run_id = _run(runner, store, "fails")
    checked = control.check_resumable

    def another_process_wins_meanwhile(record: Any, **options: Any) -> None:
        checked(record, **options)  # this resume found the run resumable; then, before it
        with SQLiteStore(store) as db:  # takes it over, another process does, and is asked
            assert db.take_over(record, "Pending", "PENDING", "elsewhere:1", time.time())
            assert db.request_cancel(run_id, time.time(), "ops") == "requested"

    monkeypatch.setattr(control, "check_resumable", another_process_wins_meanwhile)
    resumed = runner.invoke(app, ["runs", "resume", run_id, "--store", store])

    assert resumed.exit_code == 1
    assert "elsewhere:1" in resumed.stderr
    with SQLiteStore(store) as db:
        assert db.cancel_requested([run_id]) == {run_id}  # elsewhere:1 will read it


def test_unknown_or_ambiguous_runs_are_one_line_errors(runner: CliRunner, store: str) -> None:
    _run(runner, store, "add", "a=1")
    missing = runner.invoke(app, ["runs", "show", "ffffffff", "--store", store])
    assert missing.exit_code == 1
    assert missing.stderr.startswith("reflow: error: no flow run 'ffffffff'")
    short = runner.invoke(app, ["runs", "show", "ab", "--store", store])
    assert short.exit_code == 2
    assert "too short" in short.stderr


def test_logs_prints_the_runs_lines(runner: CliRunner, store: str) -> None:
    run_id = _run(runner, store, "secretive", "token=not-used")
    result = runner.invoke(app, ["runs", "logs", run_id, "--store", store])
    assert result.exit_code == 0
    assert "calling the API with" in result.stdout


def test_logs_follows_a_store_that_has_logs(
    runner: CliRunner, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command against the `Store.logs()` API the store layer is adding (faked here)."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Line:
        seq: int
        flow_run_id: str
        task_run_id: str | None
        timestamp: float
        level: int
        logger: str
        message: str

    run_id = _run(runner, store, "add", "a=1")
    with SQLiteStore(store) as db:
        (task,) = db.task_runs(run_id)
    lines = [
        Line(1, run_id, None, time.time(), 20, "reflow.runs", "flow started"),
        Line(2, run_id, task.id, time.time(), 30, "reflow.runs", "adding"),
    ]

    def logs(self: Any, flow_run_id: str, *, after: int = 0, limit: int | None = None) -> Any:
        return [line for line in lines if line.seq > after and line.flow_run_id == flow_run_id]

    monkeypatch.setattr(SQLiteStore, "logs", logs, raising=False)
    result = runner.invoke(app, ["runs", "logs", run_id, "--follow", "--store", store])

    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].endswith("INFO    add: flow started")
    assert out[1].endswith("WARNING plus-0: adding")
    assert len(out) == 2


def test_show_gives_a_flows_retry_controller_and_its_tries(runner: CliRunner, store: str) -> None:
    from reflow import flow, task
    from reflow.atoms import ForEach

    @task
    def connect(ip: str) -> str:
        if ip == "10.0.0.1":
            raise ConnectionError(f"{ip} refused")
        return ip

    @flow(store=store, retry=ForEach(["10.0.0.1", "10.0.0.2"], name="hosts", provides="ip"))
    def reach(ip: str) -> str:
        return connect(ip)

    flow_run = reach.run()

    shown = runner.invoke(app, ["runs", "show", flow_run.id, "--store", store])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "retry controllers" in out
    assert "hosts" in out
    assert 'try 1 ("10.0.0.1"): connect-0: ConnectionError: 10.0.0.1 refused' in out
    assert 'try 2 ("10.0.0.2"): no failure' in out
    as_json = json.loads(
        runner.invoke(app, ["runs", "show", flow_run.id, "--json", "--store", store]).stdout
    )
    assert as_json["retry_controllers"] == [
        {
            "controller": "hosts",
            "tries": [
                {
                    "value": '"10.0.0.1"',
                    "failures": {"connect-0": "ConnectionError: 10.0.0.1 refused"},
                },
                {"value": '"10.0.0.2"', "failures": {}},
            ],
        }
    ]


def test_show_gives_a_run_whose_results_were_not_kept(runner: CliRunner, store: str) -> None:
    from reflow import flow, task

    @task(persist_result=False)
    def open_session(user: str) -> threading.Lock:
        return threading.Lock()  # cannot be kept, and is not meant to be

    @flow(store=store, persist_result=False)
    def session(user: str) -> str:
        return f"{user}: {open_session(user).acquire(blocking=False)}"

    flow_run = session.run("ana")

    shown = runner.invoke(app, ["runs", "show", flow_run.id, "--store", store])
    assert shown.exit_code == 0, shown.output
    facts = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines() if line}
    assert facts["result"] == ["not", "kept"]
    assert facts["open_session-0"][:2] == ["Completed", "1"]
    as_json = json.loads(
        runner.invoke(app, ["runs", "show", flow_run.id, "--json", "--store", store]).stdout
    )
    assert as_json["state"] == "Completed"
    assert [t["state"] for t in as_json["task_runs"]] == ["Completed"]


def test_show_gives_an_atoms_runs_atoms_and_controllers(runner: CliRunner, store: str) -> None:
    from reflow.atoms import FunctorTask, LinearFlow, Times, run

    calls = iter([TimeoutError("slow"), None])

    def call(attempt: int) -> str:
        error = next(calls)
        if error is not None:
            raise error
        return f"done on try {attempt}"

    flow = LinearFlow("fetch", retry=Times(2, name="twice", provides="attempt"))
    run(flow.add(FunctorTask(call, name="call", provides="out")), runs=store, run_id="a1")

    shown = runner.invoke(app, ["runs", "show", "a1", "--store", store])

    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert out.startswith("fetch a1  Completed")
    rows = [line.split() for line in out.split("atoms\n")[1].split("\n\n")[0].splitlines()[1:]]
    assert rows == [["twice", "retry", "Completed"], ["call", "atom", "Completed"]]
    assert "try 1 (1): call: TimeoutError: slow" in out
    assert "try 2 (2): no failure" in out


def test_prune_deletes_old_runs_and_the_files_nothing_names(
    runner: CliRunner, tmp_path: Path
) -> None:
    from reflow import flow, task

    store = str(tmp_path / "runs.db")
    big = "z" * (1 << 20)  # past the 1 MiB kept in the database: a file

    @task
    def load(n: int) -> str:
        if n < 0:
            raise ValueError("negative")
        return big + str(n)

    @flow(store=store)
    def export(n: int) -> str:
        return load(n)

    old, failed, recent = export.run(1), export.run(-1), export.run(2)
    with SQLiteStore(store) as db, db._transaction() as cur:
        cur.execute(
            "UPDATE reflow_flow_runs SET updated = updated - 40 * 86400 WHERE id IN (?, ?)",
            (old.id, failed.id),
        )
    files = sorted((tmp_path / "runs-results").rglob("*/*"))
    assert len(files) == 2
    args = ["runs", "prune", "--older-than", "30d", "--grace", "0", "--store", store]

    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("would delete 2 run(s), 0 expired cache entries and 0 result")
    only_failed = runner.invoke(app, [*args, "--state", "failed", "--json"])
    assert json.loads(only_failed.stdout)["runs"] == [failed.id]
    pruned = runner.invoke(app, args)

    assert pruned.exit_code == 0, pruned.output
    assert pruned.stdout.startswith("deleted 1 run(s), 0 expired cache entries and 1 result file")
    assert "(1.0 MiB)" in pruned.stdout
    with SQLiteStore(store) as db:
        assert [r.id for r in db.flow_runs()] == [recent.id]
    assert len(sorted((tmp_path / "runs-results").rglob("*/*"))) == 1
    refused = runner.invoke(app, [*args, "--state", "Running"])
    assert refused.exit_code == 2
    assert "never deleted" in refused.output
