"""Schemathesis against the API's own OpenAPI schema: requests made to fit it and made not to
(bad ids, out-of-range numbers, wrong types) never get a 500."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from reflow.ui import create_app

from .conftest import failed_crawl


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("fuzz")
    store = str(folder / "runs.db")
    run_id, _ = failed_crawl(store, folder)  # a run to find: requests get past the 404s
    app = create_app(store)
    app.state.fuzzed_run = run_id
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers={"host": "127.0.0.1"})


def test_no_request_gets_a_server_error(api_schema: Any) -> None:
    """Each operation gets requests that fit its schema and requests that do not (bad ids,
    out-of-range numbers, wrong types); none may get a 5xx."""
    from hypothesis import given

    csrf = api_schema.app.state.dashboard.guard.csrf_token
    actions = api_schema.app.state.dashboard.actions
    real = api_schema.app.state.fuzzed_run
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:
        cases = operation.as_strategy()
        if "run_id" in operation.path:  # half of them about the run that is there
            cases = st.one_of(cases, cases.map(lambda c: _about(c, real)))

        @given(case=cases)
        @settings(
            max_examples=40, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )  # fmt: skip
        def check(case: Any) -> None:
            response = case.call(headers={"x-reflow-csrf": csrf, "host": "127.0.0.1:8400"})
            assert response.status_code < 500, (case.method, case.path, case.path_parameters,
                                                case.query, response.text)  # fmt: skip
            if response.status_code == 202:  # a resume really started: let it end first
                assert actions.wait(60)

        check()


def _about(case: Any, run_id: str) -> Any:
    case.path_parameters = {**(case.path_parameters or {}), "run_id": run_id}
    return case


def test_the_schema_documents_every_api_route(api_schema: Any) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/tasks",
            "/api/runs/{run_id}/tasks/{task_run_id}", "/api/runs/{run_id}/graph",
            "/api/runs/{run_id}/logs", "/api/runs/{run_id}/atoms",
            "/api/runs/{run_id}/retry-histories", "/api/schedules", "/api/flows",
            "/api/runs/{run_id}/resume", "/api/runs/{run_id}/cancel"} <= paths  # fmt: skip
    assert not any(p.startswith("/runs") or p == "/" for p in paths)  # pages are not API
