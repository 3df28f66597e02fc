"""Fixtures of the dashboard tests: stores holding runs made by the real `reflow run`, and
a client of the dashboard over them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import reflow.logging
from reflow.cli import app as cli
from reflow.ui import create_app
from tests._support import postgres_schema

HERE = Path(__file__).parent
FLOWS = HERE / "flows.py"
BASE = "http://127.0.0.1:8400"


def run_flow(store: str, name: str, *params: str) -> str:
    """Run a flow of flows.py with `reflow run` (in this process); its run's id."""
    from reflow.store import open_store

    args = ["run", f"{FLOWS}:{name}", *[a for p in params for a in ("-p", p)], "--store", store]
    try:
        CliRunner().invoke(cli, args)
    finally:
        reflow.logging.unconfigure()
    db = open_store(store)
    try:
        return db.flow_runs(limit=1)[0].id
    finally:
        db.close()


def failed_crawl(store: str, tmp: Path, pages: int = 3) -> tuple[str, Path]:
    """A crawl whose page 1 failed all 3 of its attempts: (run id, its gate file)."""
    gate = tmp / f"gate-{uuid.uuid4().hex[:6]}"
    gate.write_text("1")
    run_id = run_flow(store, "crawl", f"pages={pages}", f"gate={gate}", "api_key=sk-live-42")
    return run_id, gate


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    yield from postgres_schema("reflow_ui")


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store of each backend: a SQLite file, and a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def client_of() -> Iterator[Any]:
    """Makes a dashboard client over a store (closed after the test)."""
    made: list[TestClient] = []

    def make(store: str, **options: Any) -> TestClient:
        client = TestClient(create_app(store, **options), base_url=BASE)
        client.__enter__()
        made.append(client)
        return client

    yield make
    for client in made:
        client.app.state.dashboard.actions.wait(30)
        client.__exit__(None, None, None)
