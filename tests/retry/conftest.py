"""Fixtures of the retry tests."""

from __future__ import annotations

import pytest

from tests.retry._support import Flavor


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    """Runs the test once with a sync function and once with an `async def` one."""
    return Flavor(is_async=request.param)
