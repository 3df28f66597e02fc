"""A store keeps each log line of a run once, however many runs the process kept before."""

from __future__ import annotations

from pathlib import Path

from reflow import flow, get_run_logger, task
from reflow.flow import runlog
from reflow.store import SQLiteStore


@task
def say(word: str) -> str:
    get_run_logger().info("said %s", word)
    return word


def test_each_run_keeps_its_log_lines_once(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")

    @flow(store=path)
    def speak(word: str) -> str:
        return say(word)

    before = len(runlog.sinks)
    first, second = speak.run("one"), speak.run("two")
    assert len(runlog.sinks) == before  # the store stopped listening after each run

    with SQLiteStore(path) as store:
        assert [r.message for r in store.logs(first.id)] == ["said one"]
        assert [r.message for r in store.logs(second.id)] == ["said two"]
