"""Every script in examples/ runs to the end and prints what it is about (a smoke test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "retry_demo.py": ["after 3 calls", "gave up after 3 attempts", "done in"],
    "task_demo.py": ["Cached", "Skipped", "AwaitingRetry > Retrying > Completed", "done in"],
    "standup.py": [
        "fetch_updates-0 AwaitingRetry: attempt 1 failed (ServiceUnavailable",
        "check_member-0[0] Skipped",
        "send_reminder-0[1] Completed",
        "post_report-0 Completed",
        "flow run standup",
        "reflow runs show",
    ],
    "flow_demo.py": [
        "Skipped",
        "TriggerFailed",
        "final state: Failed",
        "stored in ",
        "Failed, 13 task runs",
        "would end: Completed",
        "done in",
    ],
}


def test_every_example_has_expectations() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for text in EXPECTED[name]:
        assert text in done.stdout
