"""The pytest plugin reflow registers: the `reflow_clock` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reflow.testing import VirtualClock, instant


@pytest.fixture
def reflow_clock() -> Iterator[VirtualClock]:
    """A virtual clock for the test: retry waits return at once and are recorded in `.waits`."""
    with instant() as clock:
        yield clock
