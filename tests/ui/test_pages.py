"""The pages, rendered on the server: what each shows, secrets masked, nothing loaded from
outside, and the buttons' form posts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import failed_crawl, run_flow


@pytest.fixture
def failed(sqlite_store: str, tmp_path: Path, client_of: Any) -> tuple[Any, str, Path]:
    run_id, gate = failed_crawl(sqlite_store, tmp_path)
    return client_of(sqlite_store), run_id, gate


def test_the_runs_page_lists_runs_with_filters_and_polls_its_fragment(
    failed: tuple[Any, str, Path],
) -> None:
    client, run_id, _ = failed
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert f'href="/runs/{run_id}"' in html
    assert "Failed" in html
    assert '<option value="crawl"' in html
    assert 'data-poll="/fragments/runs' in html
    fragment = client.get("/fragments/runs?state=Completed").text
    assert run_id not in fragment
    assert "no runs matching these filters" in fragment


def test_the_run_page_draws_the_graph_and_the_attempts_of_each_retry(
    failed: tuple[Any, str, Path],
) -> None:
    client, run_id, _ = failed
    html = client.get(f"/runs/{run_id}").text

    graph = re.search(r'<svg class="task-graph".*?</svg>', html, re.S)
    assert graph is not None
    for key in ("fetch-0[0]", "fetch-0[1]", "fetch-0[2]", "total-0"):
        assert f">{key}</text>" in graph[0]
    assert graph[0].count('class="edge"') == 3

    chart = re.search(r'<svg class="timeline".*?</svg>', html, re.S)
    assert chart is not None
    bars = re.findall(r'<rect class="bar attempt fill-(\w+)"', chart[0])
    # the flow run's one attempt (failed), fetch-0[0] and [2] one each, [1] three failed ones
    assert sorted(bars) == sorted(["FAILED", "COMPLETED", "FAILED", "FAILED", "FAILED",
                                   "COMPLETED"])  # fmt: skip
    assert chart[0].count('class="wait"') == 2 + 1  # two retry waits, and the legend's
    assert "attempt 2: failed, retried after" in chart[0]
    assert 'class="mark fill-FAILED"' in chart[0]  # total-0: TriggerFailed, never ran
    assert "attempt completed" in chart[0]
    assert "wait before a retry" in chart[0]


def test_the_run_page_masks_secrets_everywhere(failed: tuple[Any, str, Path]) -> None:
    client, run_id, _ = failed
    html = client.get(f"/runs/{run_id}").text
    for secret in ("hunter2-plain", "sk-live-42", "s3cr3t-pw", "tok-0123456789"):
        assert secret not in html
    assert "**********" in html
    task = re.search(r'href="(/runs/[^"]+/tasks/[^"]+)">fetch-0\[1\]<', html)
    assert task is not None
    task_html = client.get(task[1]).text
    assert "Traceback (most recent call last)" in task_html
    assert "postgresql://app:**********@db/app" in task_html
    assert "s3cr3t-pw" not in task_html


def test_the_timeline_pages_and_filters_task_runs(sqlite_store: str, client_of: Any) -> None:
    run_id = run_flow(sqlite_store, "many", "n=120")
    client = client_of(sqlite_store)
    first = client.get(f"/runs/{run_id}").text
    assert "120 task runs · page 1 of 3" in first
    assert first.count('class="row-label"') == 1 + 50  # the flow run, then a page of tasks
    last = client.get(f"/runs/{run_id}?page=3").text
    assert last.count('class="row-label"') == 1 + 20
    assert "one-0[119]" in last
    assert "one-0[0]<" not in last
    assert ">one-0[*]</text>" in first  # a map of 120 is one node
    none = client.get(f"/runs/{run_id}?state=Failed").text
    assert "0 task runs" in none


def test_pages_load_nothing_from_outside(failed: tuple[Any, str, Path]) -> None:
    client, run_id, _ = failed
    for path in ("/", f"/runs/{run_id}", "/schedules", "/api"):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_the_resume_button_posts_a_form_and_comes_back(failed: tuple[Any, str, Path]) -> None:
    client, run_id, gate = failed
    html = client.get(f"/runs/{run_id}").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert token is not None
    gate.write_text("")

    answer = client.post(
        f"/runs/{run_id}/resume", data={"csrf_token": token[1]}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/runs/{run_id}?notice=resuming")
    assert client.app.state.dashboard.actions.wait(60)
    assert "Completed" in client.get(f"/api/runs/{run_id}/status").text

    refused = client.post(
        f"/runs/{run_id}/resume", data={"csrf_token": token[1]}, follow_redirects=True
    )
    assert "Completed: there is nothing to resume" in refused.text


def test_an_atoms_run_shows_its_atoms_and_controller_history(
    sqlite_store: str, client_of: Any
) -> None:
    from reflow.atoms import FunctorTask, LinearFlow, Times, run

    tries = iter([ConnectionError("token=abc123secret lost"), None])

    def upload() -> str:
        failure = next(tries)
        if failure is not None:
            raise failure
        return "done"

    pattern = LinearFlow("deploy", retry=Times(3, name="again")).add(
        FunctorTask(upload, name="upload", provides="url")
    )
    run(pattern, runs=sqlite_store, run_id="deploy-7")
    client = client_of(sqlite_store)

    html = client.get("/runs/deploy-7").text
    assert "atoms run" in html
    assert ">upload<" in html
    assert "Retry controllers" in html
    assert "abc123secret" not in html
    histories = client.get("/api/runs/deploy-7/retry-histories").json()
    assert [h["controller"] for h in histories] == ["again"]
    assert histories[0]["tries"][0]["failures"]["upload"] == (
        "builtins.ConnectionError: token=********** lost"
    )
    atoms = client.get("/api/runs/deploy-7/atoms").json()
    assert [(a["name"], a["state"]) for a in atoms] == [("again", "Completed"),
                                                         ("upload", "Completed")]  # fmt: skip
    detail = client.get("/api/runs/deploy-7").json()
    assert detail["run"]["kind"] == "atoms"
    assert detail["resumable"] is False


def test_an_atoms_runs_secrets_are_not_in_the_dashboard(
    sqlite_store: str, client_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reflow
    import reflow.secrets
    from reflow.atoms import ForEach, FunctorTask, LinearFlow, run

    monkeypatch.setenv("REFLOW_TEST_UI_ATOMS_SECRET", "plainvalue-7c19e2ab")
    value = reflow.secret("REFLOW_TEST_UI_ATOMS_SECRET").reveal()

    def probe(target: str, host: str) -> str:
        if host.endswith("-a"):
            raise ConnectionError(f"cannot reach {host} for {target}")
        return f"reached {host} for {target}"

    hosts = ForEach([f"{value}-a", f"{value}-b"], name="hosts", provides="host")
    pattern = LinearFlow("probe", retry=hosts).add(FunctorTask(probe, provides="seen"))
    run(pattern, store={"target": value, "tries": [value]}, runs=sqlite_store, run_id="probe-1")
    monkeypatch.setattr(reflow.secrets, "_revealed", set())  # a dashboard elsewhere knows none
    client = client_of(sqlite_store)

    for path in ("/runs/probe-1", "/api/runs/probe-1", "/api/runs/probe-1/atoms",
                 "/api/runs/probe-1/retry-histories"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200
        assert value not in answer.text, path
    assert client.get("/api/runs/probe-1").json()["parameters"]["target"] == "**********"


def test_the_schedules_and_api_pages(sqlite_store: str, client_of: Any) -> None:
    client = client_of(sqlite_store)
    assert "no schedules in this store" in client.get("/schedules").text
    api = client.get("/api").text
    for path in ("/api/runs", "/api/runs/{run_id}/tasks", "/api/runs/{run_id}/resume"):
        assert f">{path}<" in api


def test_a_run_whose_results_were_not_kept_says_so(sqlite_store: str, client_of: Any) -> None:
    import threading

    from reflow import flow, task

    @task(persist_result=False)
    def open_session(user: str) -> threading.Lock:
        return threading.Lock()

    @flow(store=sqlite_store, persist_result=False)
    def session(user: str) -> str:
        return f"{user}: {open_session(user).acquire(blocking=False)}"

    flow_run = session.run("ana")
    client = client_of(sqlite_store)

    page = client.get(f"/runs/{flow_run.id}")
    assert page.status_code == 200
    assert "not kept in the store (persist_result=False" in page.text
    task_link = re.search(r'href="(/runs/[^"]+/tasks/[^"]+)">open_session-0<', page.text)
    assert task_link is not None
    task_page = client.get(task_link[1])
    assert task_page.status_code == 200
    assert "not kept in the store (persist_result=False" in task_page.text
    api = client.get(f"/api/runs/{flow_run.id}").json()
    assert api["result"] is None
    assert api["result_note"].startswith("not kept in the store")
