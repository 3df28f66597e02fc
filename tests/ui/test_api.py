"""The JSON API over stores of both backends: runs, a run, its task runs and their
attempts, the graph, logs, resume and cancel, with secrets masked."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from reflow.store import open_store, submit_run
from reflow.store.persistence import find_flow

from .conftest import FLOWS, failed_crawl, run_flow

CSRF = "x-reflow-csrf"


def _csrf(client: Any) -> dict[str, str]:
    return {CSRF: client.get("/api/csrf").json()["csrf_token"]}


def test_runs_are_listed_newest_first_filtered_and_paged(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    failed, _ = failed_crawl(any_store, tmp_path)
    many = run_flow(any_store, "many", "n=3")
    client = client_of(any_store)

    listed = client.get("/api/runs").json()
    assert listed["total"] == 2
    assert [r["id"] for r in listed["runs"]] == [many, failed]
    assert [r["state"] for r in listed["runs"]] == ["Completed", "Failed"]
    assert listed["runs"][1]["kind"] == "flow"
    assert listed["runs"][1]["duration"] > 0

    assert [r["id"] for r in client.get("/api/runs?state=Failed").json()["runs"]] == [failed]
    assert [r["id"] for r in client.get("/api/runs?state=failed").json()["runs"]] == [failed]
    assert [r["id"] for r in client.get("/api/runs?state=COMPLETED").json()["runs"]] == [many]
    assert [r["id"] for r in client.get("/api/runs?flow=many").json()["runs"]] == [many]
    second = client.get("/api/runs?limit=1&offset=1").json()
    assert (second["total"], [r["id"] for r in second["runs"]]) == (2, [failed])
    assert client.get("/api/flows").json() == ["crawl", "many"]


def test_a_run_shows_its_parameters_masked_states_and_counts(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    run_id, gate = failed_crawl(any_store, tmp_path)
    client = client_of(any_store)

    answer = client.get(f"/api/runs/{run_id}")
    detail = answer.json()
    assert detail["run"]["state"] == "Failed"
    assert detail["parameters"] == {
        "pages": 3, "gate": str(gate), "password": "**********", "api_key": "**********",
    }  # fmt: skip
    assert "hunter2" not in answer.text
    assert "sk-live-42" not in answer.text
    assert [s["name"] for s in detail["states"]] == ["Pending", "Running", "Failed"]
    counts = {c["state"]: c["count"] for c in detail["task_counts"]}
    assert counts == {"Completed": 2, "Failed": 1, "TriggerFailed": 1}
    assert detail["task_runs"] == 4
    assert detail["resumable"] is True
    assert detail["cancellable"] is False


def test_task_runs_carry_every_attempt_with_its_error_masked(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    run_id, _ = failed_crawl(any_store, tmp_path)
    client = client_of(any_store)

    page = client.get(f"/api/runs/{run_id}/tasks?retried=true").json()
    assert page["total"] == 1
    (task,) = page["task_runs"]
    assert (task["key"], task["group"], task["state"], task["attempts"]) == (
        "fetch-0[1]", "fetch-0[*]", "Failed", 3,
    )  # fmt: skip
    names = [s["name"] for s in task["states"]]
    assert names == ["Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry",
                     "Retrying", "Failed"]  # fmt: skip
    errors = [s["error"] for s in task["states"] if s["error"]]
    assert len(errors) == 3
    assert all("postgresql://app:**********@db/app" in e for e in errors)
    assert "s3cr3t-pw" not in json.dumps(page)

    one = client.get(f"/api/runs/{run_id}/tasks/{task['id']}").json()
    assert one["key"] == "fetch-0[1]"
    assert one["states"][2]["traceback"]
    by_group = client.get(f"/api/runs/{run_id}/tasks", params={"group": "fetch-0[*]"}).json()
    assert [t["key"] for t in by_group["task_runs"]] == ["fetch-0[0]", "fetch-0[1]", "fetch-0[2]"]
    paged = client.get(f"/api/runs/{run_id}/tasks?limit=2&offset=2").json()
    assert (paged["total"], len(paged["task_runs"])) == (4, 2)
    assert client.get(f"/api/runs/{run_id}/tasks?state=TriggerFailed").json()["total"] == 1


def test_the_graph_groups_a_large_map_into_one_node(any_store: str, client_of: Any) -> None:
    run_id = run_flow(any_store, "many", "n=30")
    client = client_of(any_store)

    graph = client.get(f"/api/runs/{run_id}/graph").json()
    assert graph["unit"] == "map"
    assert [(n["key"], n["count"], n["states"]) for n in graph["nodes"]] == [
        ("one-0[*]", 30, {"Completed": 30})
    ]
    assert graph["edges"] == []
    assert graph["left_out"] == 0


def test_logs_are_read_latest_first_by_task_and_masked(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    run_id, _ = failed_crawl(any_store, tmp_path)
    client = client_of(any_store)

    logs = client.get(f"/api/runs/{run_id}/logs").json()
    messages = [line["message"] for line in logs["logs"]]
    assert sorted(messages) == [
        "fetched page 0 with token=**********",
        "fetched page 2 with token=**********",
    ]
    last = logs["after"]
    assert client.get(f"/api/runs/{run_id}/logs?after={last}").json()["logs"] == []
    one = client.get(f"/api/runs/{run_id}/logs?limit=1").json()
    assert len(one["logs"]) == 1
    assert one["before"] == one["logs"][0]["seq"]
    older = client.get(f"/api/runs/{run_id}/logs?limit=1&before={one['before']}").json()
    assert older["logs"][0]["seq"] < one["before"]
    task_id = older["logs"][0]["task_run_id"]
    only = client.get(f"/api/runs/{run_id}/logs", params={"task_run_id": task_id}).json()
    assert {line["task_run_id"] for line in only["logs"]} == {task_id}


def test_unknown_runs_are_404_and_bad_filters_422(any_store: str, client_of: Any) -> None:
    client = client_of(any_store)
    assert client.get("/api/runs/nope").status_code == 404
    assert client.get("/api/runs/nope/tasks").json() == {
        "detail": f"no flow run 'nope' in {client.app.state.dashboard.store!r}"
    }
    assert client.get("/api/runs?state=Sleepy").status_code == 422
    assert client.get("/api/runs?limit=0").status_code == 422
    assert client.get("/api/runs/a%00b").status_code == 404


def test_the_status_version_changes_when_the_run_does(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    run_id, gate = failed_crawl(any_store, tmp_path)
    client = client_of(any_store)
    before = client.get(f"/api/runs/{run_id}/status").json()
    assert before["final"] is True
    assert client.get(f"/api/runs/{run_id}/status").json() == before

    gate.write_text("")
    answer = client.post(f"/api/runs/{run_id}/resume", headers=_csrf(client))
    assert answer.status_code == 202, answer.text
    assert client.app.state.dashboard.actions.wait(60)
    after = client.get(f"/api/runs/{run_id}/status").json()
    assert after["state"] == "Completed"
    assert after["version"] != before["version"]


def test_resume_runs_the_cli_resume_and_completes_the_run(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    run_id, gate = failed_crawl(any_store, tmp_path)
    client = client_of(any_store)
    gate.write_text("")  # the service is back

    started = client.post(f"/api/runs/{run_id}/resume", headers=_csrf(client)).json()
    assert started["outcome"] == "started"
    assert started["pid"] > 0
    assert client.app.state.dashboard.actions.wait(60)
    resumption = client.app.state.dashboard.actions.resumption(run_id)
    assert resumption.returncode == 0, list(resumption.tail)

    detail = client.get(f"/api/runs/{run_id}").json()
    assert detail["run"]["state"] == "Completed"
    assert detail["result"] == 3
    tasks = client.get(f"/api/runs/{run_id}/tasks").json()["task_runs"]
    assert {t["key"]: t["state"] for t in tasks}["fetch-0[1]"] == "Completed"

    again = client.post(f"/api/runs/{run_id}/resume", headers=_csrf(client))
    assert again.status_code == 409
    assert again.json()["detail"].endswith("Completed: there is nothing to resume")


def test_cancel_cancels_a_queued_run_as_the_cli_does(
    any_store: str, tmp_path: Path, client_of: Any
) -> None:
    flow = find_flow(f"{FLOWS}:many")
    run_id = submit_run(flow, store=any_store, n=2)
    client = client_of(any_store)

    done = client.post(f"/api/runs/{run_id}/cancel", headers=_csrf(client)).json()
    assert done["outcome"] == "cancelled"
    assert done["message"] == f"flow run {run_id} (many) was Scheduled: now Cancelled"
    assert client.get(f"/api/runs/{run_id}").json()["run"]["state"] == "Cancelled"
    ended = client.post(f"/api/runs/{run_id}/cancel", headers=_csrf(client))
    assert ended.status_code == 409
    assert ended.json()["detail"] == (
        f"flow run {run_id} already ended Cancelled: nothing to cancel"
    )
    db = open_store(any_store)
    try:
        assert db.cancel_requested([run_id]) == {run_id}
    finally:
        db.close()


def test_schedules_show_their_next_fire_times(any_store: str, client_of: Any) -> None:
    from reflow.store.operations import ScheduleRecord

    now = time.time()
    db = open_store(any_store)
    try:
        db.save_schedule(
            ScheduleRecord(
                name="nightly", flow_name="many", flow_path=f"{FLOWS}:many", kind="cron",
                expression="0 3 * * *", timezone="UTC", created=now, updated=now,
                parameters={"n": 2, "db_password": "pw-in-clear"}, next_run=now + 60,
            )
        )  # fmt: skip
    finally:
        db.close()
    client = client_of(any_store)

    (nightly,) = client.get("/api/schedules").json()
    assert nightly["name"] == "nightly"
    assert nightly["served"] is False
    assert nightly["parameters"] == {"n": 2, "db_password": "**********"}
    fires = nightly["next_runs"]
    assert len(fires) == 5
    assert fires == sorted(fires)
    assert fires[0] > now
    assert all(round(b - a) == 86400 for a, b in itertools.pairwise(fires))
