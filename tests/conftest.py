"""Suite-wide pytest configuration."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: runs an external tool such as mypy (seconds, not milliseconds)"
    )
