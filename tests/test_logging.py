"""`reflow.logging.configure()`: the level from REFLOW_LOG_LEVEL, text or JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

import reflow.logging
from reflow import flow, get_run_logger, task
from reflow.secrets import MASK, Secret


@pytest.fixture(autouse=True)
def _unconfigure() -> Iterator[None]:
    yield
    reflow.logging.unconfigure()


@task
def greet(name: str) -> None:
    get_run_logger().info("hello %s", name)


@flow(persist=False)
def greeting(name: str) -> None:
    greet(name)


def test_json_lines_carry_the_run_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_LOG_FORMAT", "json")
    stream = io.StringIO()
    reflow.logging.configure(stream=stream)

    flow_run = greeting.run("ada")

    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["message"] == "hello ada"
    assert line["level"] == "INFO"
    assert line["logger"] == "reflow.runs"
    assert line["flow_run_id"] == flow_run.id
    assert line["flow_name"] == "greeting"
    assert line["task_name"] == "greet"
    assert line["task_run_id"] == flow_run.task_runs[0].id
    assert line["time"].endswith("Z")


def test_the_level_comes_from_reflow_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_LOG_LEVEL", "warning")
    stream = io.StringIO()
    reflow.logging.configure(stream=stream)
    greeting.run("ada")
    logging.getLogger("reflow.runs").warning("careful")
    assert stream.getvalue().splitlines()[-1].endswith("WARNING reflow.runs: careful")
    assert "hello" not in stream.getvalue()


def test_text_lines_name_the_run_and_mask_secrets() -> None:
    stream = io.StringIO()
    reflow.logging.configure(format="text", stream=stream)
    token = Secret("tok-123456789")
    greeting.run(token.reveal())  # a careless caller: the value itself in a log line
    assert stream.getvalue().strip().endswith(f"greeting/greet: hello {MASK}")


def test_bad_levels_and_formats_say_what_works() -> None:
    with pytest.raises(ValueError, match="DEBUG, INFO"):
        reflow.logging.configure(level="LOUD")
    with pytest.raises(ValueError, match="'text' or 'json'"):
        reflow.logging.configure(format="xml")
