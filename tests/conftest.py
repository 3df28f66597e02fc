"""Suite-wide pytest configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: runs an external tool such as mypy (seconds, not milliseconds)"
    )


@pytest.fixture(autouse=True, scope="session")
def suite_reflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REFLOW_HOME for the whole run (signing key, default store): never the repository."""
    home = tmp_path_factory.mktemp("reflow-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("REFLOW_HOME", str(home))
    mp.delenv("REFLOW_STORE", raising=False)
    return home


MypyRun = Callable[..., tuple[str, int]]


@pytest.fixture(scope="session")
def mypy(tmp_path_factory: pytest.TempPathFactory) -> MypyRun:
    """Run mypy --strict in-process on files; every run shares one cache."""
    from mypy import api as mypy_api  # a dev dependency: missing mypy is an error, not a skip

    cache = tmp_path_factory.mktemp("mypy-cache")

    def run(*files: Path) -> tuple[str, int]:
        stdout, stderr, status = mypy_api.run(
            [
                "--strict",
                "--config-file", str(ROOT / "pyproject.toml"),
                "--cache-dir", str(cache),
                "--no-error-summary",
                "--hide-error-context",
                *map(str, files),
            ]
        )  # fmt: skip
        return stdout + stderr, status

    return run
