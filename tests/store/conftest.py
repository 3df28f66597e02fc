"""Fixtures of the store tests: a PostgreSQL schema of each test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support import postgres_schema


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    yield from postgres_schema("reflow_test")
