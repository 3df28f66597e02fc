"""The pytest plugin reflow registers: the `reflow_clock` and `reflow_home` fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow.testing import VirtualClock, instant


@pytest.fixture
def reflow_clock() -> Iterator[VirtualClock]:
    """A virtual clock for the test: retry waits return at once and are recorded in `.waits`."""
    with instant() as clock:
        yield clock


@pytest.fixture
def reflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh REFLOW_HOME for the test: flows keep their runs (and the signing key, the task
    cache) in a temporary folder, not in `.reflow/` of the working directory. Opt-in: request it
    by name, or make it autouse in your own conftest.py."""
    home = tmp_path / "reflow-home"
    home.mkdir()
    monkeypatch.setenv("REFLOW_HOME", str(home))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return home
