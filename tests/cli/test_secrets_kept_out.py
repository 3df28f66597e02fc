"""Secrets given to a run never reach the store's file or the console."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reflow.cli import app

from .conftest import target

PARAMETER = "param-secret-0d5c7b2e"
FROM_ENV = "env-secret-91f3a6c4"


def test_secrets_never_appear_in_the_database_file_or_the_logs(
    runner: CliRunner, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_TEST_API_KEY", FROM_ENV)

    result = runner.invoke(
        app, ["run", target("secretive"), "-p", f"token={PARAMETER}", "--store", store]
    )

    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["runs", "show", "last", "--json", "--store", store])
    assert '"token": "**********"' in shown.stdout
    console = result.stdout + result.stderr + shown.stdout
    assert "calling the API with **********" in result.stderr  # the careless log line
    assert "revealed **********" in result.stderr
    files = list(Path(store).parent.glob("runs.db*"))  # the WAL too
    assert files
    for path in files:
        data = path.read_bytes()
        for value in (PARAMETER, FROM_ENV):
            assert value.encode() not in data, (path.name, value)
    for value in (PARAMETER, FROM_ENV):
        assert value not in console
