"""Helpers shared by every layer's tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("REFLOW_TEST_POSTGRES_URL")
"""The PostgreSQL server tests use (CI sets it; there a server that does not answer fails)."""


def postgres_schema(prefix: str) -> Iterator[str]:
    """For a fixture: a URL whose connections live in a fresh schema, dropped afterwards; the
    test is skipped, saying why, when REFLOW_TEST_POSTGRES_URL is not set."""
    if not POSTGRES_URL:
        pytest.skip("REFLOW_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


class Script:
    """Plays `outcomes` in order, one per call; the last one repeats.

    An exception class is raised as a fresh instance (kept in `raised`), an exception instance
    is raised as is, anything else is returned.
    """

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = outcomes
        self.calls = 0
        self.raised: list[BaseException] = []

    def step(self) -> Any:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, type) and issubclass(outcome, BaseException):
            outcome = outcome(f"failure {self.calls}")
        if isinstance(outcome, BaseException):
            self.raised.append(outcome)
            raise outcome
        return outcome
