"""`reflow run` through typer's runner: exit codes, parameters, progress lines, the summary."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from reflow.cli import app
from reflow.store import SQLiteStore

from .conftest import target


def test_a_completed_run_exits_0_with_progress_lines_and_a_summary(
    runner: CliRunner, store: str
) -> None:
    result = runner.invoke(app, ["run", target("squares"), "--param", "n=3", "--store", store])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.endswith("square-0[2] Completed") for line in lines)  # one line a change
    assert not any("Pending" in line for line in lines)
    assert any(line.split()[:3] == ["square-0[0]", "Completed", "1"] for line in lines)  # a row
    assert "task" in result.stdout
    assert "attempts" in result.stdout
    assert "duration" in result.stdout
    assert "\x1b[" not in result.stdout  # no terminal: no colours, no live display
    last = [line for line in lines if line.startswith("flow run squares")][-1]
    assert "Completed" in last
    with SQLiteStore(store) as db:
        (record,) = db.flow_runs()
    assert record.state == "Completed"
    assert record.parameters == {"n": 3}
    assert f"reflow runs show {record.id[:12]}" in result.stdout


def test_a_failed_run_exits_1_and_says_why(runner: CliRunner, store: str) -> None:
    result = runner.invoke(app, ["run", target("fails"), "--store", store])

    assert result.exit_code == 1
    assert "explode-0 Failed: RuntimeError: the disk is full" in result.stdout
    assert "Failed in" in result.stdout


def test_parameters_are_converted_by_the_flows_hints_text_first_then_json(
    runner: CliRunner, store: str, tmp_path: Path
) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"names": ["ada", "bob"], "limit": 9}))
    args = ["run", target("typed"), "-p", "day=2026-11-23", "--params-json", str(params)]

    result = runner.invoke(app, [*args, "-p", "limit=4", "--store", store])

    assert result.exit_code == 0, result.output
    with SQLiteStore(store) as db:
        (record,) = db.flow_runs()
    assert record.parameters == {"day": "2026-11-23", "names": ["ada", "bob"], "limit": 4}
    assert json.loads(record.result.data) == "2026-11-23 ada,bob 4"  # type: ignore[union-attr]

    as_json = runner.invoke(
        app, ["run", target("typed"), "-p", "day=2026-11-23", "-p", 'names=["x"]', "--store", store]
    )
    assert as_json.exit_code == 0, as_json.output


def test_usage_errors_exit_2_with_one_line(runner: CliRunner, store: str) -> None:
    cases = {
        ("run", "no/such/file.py:flow"): "no such file",
        ("run", target("nope")): "has no flow 'nope'",
        ("run", target("plus")): "not a flow",
        ("run", target("add"), "-p", "a=many"): "parameter 'a'",
        ("run", target("add"), "-p", "a=1", "-p", "c=1"): "unexpected keyword argument 'c'",
        ("run", target("add"), "-p", "a"): "write it as NAME=VALUE",
        ("runs", "ls", "--state", "Sleepy"): "not a state",
    }
    for args, expected in cases.items():
        result = runner.invoke(app, [*args, "--store", store])
        assert result.exit_code == 2, (args, result.output)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("reflow: error: "), (args, line)
        assert expected in line, (args, line)


def test_a_file_with_one_flow_needs_no_name(runner: CliRunner, store: str, tmp_path: Path) -> None:
    script = tmp_path / "one.py"
    script.write_text("from reflow import flow\n\n@flow\ndef hello() -> str:\n    return 'hi'\n")

    result = runner.invoke(app, ["run", str(script), "--store", store])

    assert result.exit_code == 0, result.output
    assert "flow run hello" in result.stdout


def test_submit_queues_the_run_for_a_worker(runner: CliRunner, store: str) -> None:
    queued = runner.invoke(app, ["run", target("add"), "-p", "a=41", "--submit", "--store", store])
    assert queued.exit_code == 0, queued.output
    run_id = queued.stdout.strip()

    with SQLiteStore(store) as db:
        assert db.flow_run(run_id).state == "Scheduled"  # type: ignore[union-attr]
    worked = runner.invoke(app, ["worker", "--store", store, "--max-runs", "1", "--poll", "0.01"])

    assert worked.exit_code == 0, worked.output
    assert "ran 1 run(s)" in worked.stderr
    with SQLiteStore(store) as db:
        assert db.flow_run(run_id).state == "Completed"  # type: ignore[union-attr]


def test_id_file_holds_the_runs_id(runner: CliRunner, store: str, tmp_path: Path) -> None:
    id_file = tmp_path / "ids" / "last"
    result = runner.invoke(app, ["run", target("add"), "-p", "a=1", "--id-file", str(id_file),
                                 "--store", store])  # fmt: skip

    assert result.exit_code == 0
    with SQLiteStore(store) as db:
        assert db.flow_run(id_file.read_text().strip()) is not None


def test_every_command_has_help_with_examples(runner: CliRunner) -> None:
    commands = [
        ["run"], ["serve"], ["worker"], ["settings"], ["runs", "ls"], ["runs", "show"],
        ["runs", "logs"], ["runs", "resume"], ["runs", "cancel"], ["schedules", "ls"],
    ]  # fmt: skip
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.stdout, command
        assert "reflow " in result.stdout, command


def test_an_error_in_the_users_file_is_one_line(
    runner: CliRunner, store: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('no module named slack_sdk')\n")

    result = runner.invoke(app, ["run", f"{broken}:x", "--store", store])

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"reflow: error: {broken} raised ImportError while loading: no module named slack_sdk"
    ]


def test_a_big_map_is_one_row_of_the_summary(runner: CliRunner, store: str) -> None:
    result = runner.invoke(app, ["run", target("squares"), "-p", "n=25", "--store", store])

    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("square (")]
    assert row.split()[:5] == ["square", "(25", "runs)", "25", "Completed"]
