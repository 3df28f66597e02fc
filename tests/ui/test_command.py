"""`reflow ui`: the command refuses what is unsafe, says what to install when the extra is
missing, serves a real process (the token from REFLOW_UI_TOKEN too), and `import reflow.cli`
never loads the dashboard's packages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reflow.cli import app

REFLOW = [sys.executable, "-m", "reflow.cli"]
TOKEN = "a-long-enough-token-0123456789"


def test_binding_beyond_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REFLOW_UI_TOKEN"}
    done = subprocess.run(
        [*REFLOW, "ui", "--store", str(tmp_path / "runs.db"), "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("reflow: error: --host 0.0.0.0 is not a loopback address")
    assert "--token TOKEN, or REFLOW_UI_TOKEN" in done.stderr


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ui", "--store", str(tmp_path / "runs.db"), "--token", "abc"])
    assert result.exit_code == 2
    assert "at least 16 characters" in result.stderr


def test_a_missing_extra_says_what_to_install(tmp_path: Path) -> None:
    probe = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from reflow.cli import main\n"
        f"sys.exit(main(['ui', '--store', {str(tmp_path / 'runs.db')!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "reflow: error: the dashboard needs the ui extra, and fastapi is not installed: "
        "pip install 'reflow[ui]'"
    )


def test_import_reflow_cli_leaves_the_dashboard_packages_alone() -> None:
    probe = (
        "import json, sys\nimport reflow, reflow.cli\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'uvicorn', 'jinja2', 'reflow.ui') or m.startswith('reflow.ui'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real `reflow ui` process on a free port, its token from REFLOW_UI_TOKEN."""
    env = {**os.environ, "REFLOW_UI_TOKEN": TOKEN}
    process = subprocess.Popen(
        [*REFLOW, "ui", "--store", str(tmp_path / "runs.db"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+/)", first)
    assert found is not None, first + (process.stderr.read() if process.poll() else "")
    try:
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()


def test_a_served_dashboard_takes_its_token_from_the_environment(served: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(served + "api/runs", timeout=10)
    assert refused.value.code == 401
    refused.value.close()
    asked = urllib.request.Request(
        served + "api/runs", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        assert json.loads(answer.read()) == {"total": 0, "offset": 0, "limit": 50, "runs": []}
