"""Fixtures of the CLI tests: a store file of each test's own, the typer runner, and a helper
that runs the real `reflow` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import reflow.logging

HERE = Path(__file__).parent
FLOWS = HERE / "flows.py"
SCRIPT = Path(sys.executable).with_name("reflow")
REFLOW = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "reflow.cli"]
"""The console script `pip install` made (`python -m reflow.cli` where there is none)."""


@pytest.fixture(autouse=True)
def _leave_logging_as_it_was() -> Iterator[None]:
    yield
    reflow.logging.unconfigure()


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A SQLite store file for this test alone (passed as --store)."""
    return str(tmp_path / "runs.db")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def target(name: str) -> str:
    return f"{FLOWS}:{name}"


def reflow_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_STORE")}
    env.update(extra)
    return env


def run_reflow(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command, in a process of its own (stdout is a pipe: no terminal)."""
    return subprocess.run(
        [*REFLOW, *args], capture_output=True, text=True, timeout=timeout, env=reflow_env(**env),
        check=False,
    )  # fmt: skip
