"""Subflows, validated parameters, and what a run records: task runs, the Mermaid graph,
events, run loggers and the run context."""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from typing import Any

import pytest
from pydantic import BaseModel

from reflow import (
    FlowPaused,
    FlowRun,
    ParameterError,
    Pause,
    events,
    flow,
    get_run_context,
    get_run_logger,
    task,
)
from reflow.events import StateChange
from reflow.flow import RunContext
from reflow.states import State
from reflow.testing import VirtualClock


class Calls:
    """Counts calls by name, from any thread."""

    def __init__(self) -> None:
        self.counts = Counter[str]()
        self._lock = threading.Lock()

    def hit(self, name: str) -> int:
        with self._lock:
            self.counts[name] += 1
            return self.counts[name]

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@task
def inc(x: int) -> int:
    return x + 1


@task
def broken(message: str = "broken") -> Any:
    raise ValueError(message)


# --- subflows --------------------------------------------------------------------------------


def test_a_subflow_gets_its_own_run_under_the_parent() -> None:
    @flow
    def child(x: int) -> int:
        return inc(x)

    @flow
    def parent() -> int:
        return child(1) + child(10)

    flow_run = parent.run()

    assert flow_run.result() == 13
    first, second = flow_run.subflow_runs
    for sub in (first, second):
        assert isinstance(sub, FlowRun)
        assert sub.name == "child"
        assert sub.parent_id == flow_run.id
        assert sub.id != flow_run.id
        assert sub.state.name == "Completed"
        assert [r.parent_id for r in sub.task_runs] == [sub.id]
    assert first.id != second.id
    assert (first.parameters, second.parameters) == ({"x": 1}, {"x": 10})
    assert (first.result(), second.result()) == (2, 11)
    assert flow_run.task_runs == []  # the subflows' task runs are theirs, not the parent's


def test_a_subflow_failure_is_raised_in_the_parent() -> None:
    @flow
    def child() -> None:
        broken("deep down")

    @flow
    def parent() -> None:
        child()

    flow_run = parent.run()

    (sub,) = flow_run.subflow_runs
    assert sub.state.name == "Failed"
    assert flow_run.state.name == "Failed"
    assert isinstance(flow_run.state.exception, ValueError)
    assert flow_run.state.exception is sub.state.exception
    with pytest.raises(ValueError, match="deep down"):
        parent()


def test_a_caught_subflow_failure_still_fails_the_parent_like_a_terminal_task() -> None:
    @flow
    def child() -> None:
        broken("caught")

    @flow
    def parent() -> str:
        try:
            child()
        except ValueError:
            return "recovered"
        return "unreachable"

    flow_run = parent.run()

    assert flow_run.subflow_runs[0].state.is_failed()
    assert flow_run.state.is_failed()
    assert "subflow child (Failed)" in flow_run.state.message


def test_a_parent_with_reference_tasks_may_catch_a_subflow_failure() -> None:
    @flow
    def child() -> None:
        broken("caught")

    @flow(reference_tasks=[])
    def parent() -> str:
        try:
            child()
        except ValueError:
            return "recovered"
        return "unreachable"

    flow_run = parent.run()

    assert flow_run.subflow_runs[0].state.is_failed()
    assert flow_run.result() == "recovered"


def test_a_subflow_return_state_and_run() -> None:
    @flow
    def child() -> int:
        return 4

    seen: list[Any] = []

    @flow
    def parent() -> None:
        seen.append(child(return_state=True))
        seen.append(child.run())

    flow_run = parent.run()

    state, sub_run = seen
    assert isinstance(state, State)
    assert state.result() == 4
    assert isinstance(sub_run, FlowRun)
    assert sub_run.parent_id == flow_run.id
    assert len(flow_run.subflow_runs) == 2


def test_a_future_passed_to_a_subflow_is_resolved_and_recorded() -> None:
    @flow
    def child(x: int) -> int:
        return x * 100

    @flow
    def parent() -> int:
        return child(inc.submit(1))

    flow_run = parent.run()

    assert flow_run.result() == 200
    (sub,) = flow_run.subflow_runs
    assert sub.parameters == {"x": 2}
    assert sub.upstream == (flow_run.task_runs[0].id,)


def test_a_completed_subflow_is_reused_when_the_parent_retries(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @flow
    def child() -> int:
        calls.hit("child")
        return 1

    @flow(retries=1)
    def parent() -> int:
        value = child()
        if calls.hit("parent") == 1:
            raise ConnectionError("parent flaked")
        return value

    flow_run = parent.run()

    assert flow_run.result() == 1
    assert calls.counts == Counter({"parent": 2, "child": 1})
    assert len(flow_run.subflow_runs) == 1


def test_a_paused_subflow_pauses_the_parent_and_resumes_with_it() -> None:
    calls = Calls()

    @task
    def hold() -> int:
        calls.hit("hold")
        if not get_run_context().task_run.resumed:  # type: ignore[union-attr]
            raise Pause("approve")
        return 5

    @flow
    def child() -> int:
        return hold()

    @flow
    def parent() -> int:
        return child() + inc(0)

    with pytest.raises(FlowPaused) as info:
        parent()
    flow_run = info.value.flow_run
    (sub,) = flow_run.subflow_runs

    assert flow_run.state.is_paused()
    assert sub.state.is_paused()

    assert flow_run.resume().name == "Completed"
    assert flow_run.result() == 6
    assert flow_run.subflow_runs == [sub]
    assert sub.state.name == "Completed"
    assert calls["hold"] == 2


async def test_an_async_subflow() -> None:
    @flow
    async def child(x: int) -> int:
        return x * 2

    @flow
    async def parent() -> int:
        return await child("4")  # type: ignore[arg-type]

    flow_run = await parent.run()

    assert flow_run.result() == 8
    (sub,) = flow_run.subflow_runs
    assert sub.parameters == {"x": 4}
    assert sub.parent_id == flow_run.id


# --- parameters ------------------------------------------------------------------------------


def test_parameters_are_coerced_from_type_hints() -> None:
    received: list[Any] = []

    @flow
    def pipeline(n: int, ratio: float, names: list[str], flag: bool = False) -> None:
        received.append((n, ratio, names, flag))

    flow_run = pipeline.run("3", "0.5", ("a", "b"), flag="yes")

    assert received == [(3, 0.5, ["a", "b"], True)]
    assert flow_run.parameters == {"n": 3, "ratio": 0.5, "names": ["a", "b"], "flag": True}
    assert type(flow_run.parameters["n"]) is int


def test_defaults_apply_to_a_validated_call() -> None:
    @flow
    def pipeline(a: int, b: int = 2) -> int:
        return a + b

    flow_run = pipeline.run(1)

    assert flow_run.result() == 3
    assert flow_run.parameters["a"] == 1


class Config(BaseModel):
    host: str
    port: int


def test_a_pydantic_model_parameter_is_built_from_a_dict() -> None:
    received: list[Any] = []

    @flow
    def pipeline(config: Config) -> None:
        received.append(config)

    pipeline({"host": "db", "port": "5432"})

    (config,) = received
    assert isinstance(config, Config)
    assert config.port == 5432


def test_a_bad_parameter_is_a_parameter_error_naming_it_and_nothing_runs() -> None:
    calls = Calls()

    @task
    def work(n: int) -> int:
        calls.hit("work")
        return n

    @flow
    def pipeline(n: int, label: str = "x") -> int:
        calls.hit("body")
        return work(n)

    flow_run = pipeline.run("three")

    assert flow_run.state.name == "Failed"
    error = flow_run.state.exception
    assert isinstance(error, ParameterError)
    assert isinstance(error, TypeError)
    assert error.parameter == "n"
    assert "'n'" in str(error)
    assert "'three'" in str(error)
    assert "pipeline" in str(error)
    assert calls.counts == Counter()
    assert flow_run.task_runs == []
    assert flow_run.attempts == 0
    assert [s.name for s in flow_run.states] == ["Pending", "Failed"]
    with pytest.raises(ParameterError, match="'n'"):
        pipeline("three")


def test_a_bad_parameter_is_not_retried_and_fires_on_failure() -> None:
    seen: list[str] = []

    @flow(retries=3, on_failure=lambda f, r, s: seen.append(s.name))
    def pipeline(n: int) -> None: ...

    flow_run = pipeline.run([1, 2])

    assert isinstance(flow_run.state.exception, ParameterError)
    assert flow_run.attempts == 0
    assert seen == ["Failed"]


def test_a_missing_parameter_is_a_parameter_error_naming_it() -> None:
    @flow
    def pipeline(n: int, m: int) -> None: ...

    with pytest.raises(ParameterError) as info:
        pipeline(1)
    assert info.value.parameter == "m"


def test_an_unknown_keyword_is_a_parameter_error_naming_it() -> None:
    @flow
    def pipeline(n: int) -> None: ...

    with pytest.raises(ParameterError) as info:
        pipeline(1, colour="red")  # type: ignore[call-arg]
    assert info.value.parameter == "colour"


def test_too_many_positional_arguments_is_a_parameter_error() -> None:
    @flow
    def pipeline(n: int) -> None: ...

    with pytest.raises(ParameterError, match="pipeline"):
        pipeline(1, 2)  # type: ignore[call-arg]


def test_var_positional_and_var_keyword_parameters_are_checked() -> None:
    received: list[Any] = []

    @flow
    def pipeline(*ids: int, **limits: float) -> None:
        received.append((ids, limits))

    pipeline("1", 2, cpu="0.5")
    assert received == [((1, 2), {"cpu": 0.5})]
    with pytest.raises(ParameterError) as info:
        pipeline(1, "two")
    assert info.value.parameter == "ids"


def test_validate_parameters_false_passes_values_as_given() -> None:
    received: list[Any] = []

    @flow(validate_parameters=False)
    def pipeline(n: int) -> None:
        received.append(n)

    flow_run = pipeline.run("3")

    assert received == ["3"]
    assert flow_run.parameters == {"n": "3"}


def test_unhinted_parameters_pass_as_given() -> None:
    marker = object()

    @flow
    def pipeline(anything, typed: int) -> Any:  # type: ignore[no-untyped-def]
        return anything, typed

    assert pipeline(marker, "5") == (marker, 5)


# --- task runs in the record -----------------------------------------------------------------


def test_task_runs_record_states_attempts_and_timings(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @task(retries=2)
    def flaky(x: int) -> int:
        if calls.hit("flaky") < 2:
            raise ConnectionError("flaky")
        return x

    @flow
    def pipeline() -> None:
        inc(1)
        flaky.submit(inc.submit(2))

    flow_run = pipeline.run()

    first, second, third = flow_run.task_runs
    assert [r.key for r in flow_run.task_runs] == ["inc-0", "inc-1", "flaky-0"]
    assert [s.name for s in first.states] == ["Pending", "Running", "Completed"]
    assert [s.name for s in third.states] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"
    ]  # fmt: skip
    assert [a.number for a in third.attempts] == [1, 2]
    assert [a.state.name for a in third.attempts if a.state] == ["Failed", "Completed"]
    for run in flow_run.task_runs:
        assert run.parent_id == flow_run.id
        for attempt in run.attempts:
            assert attempt.ended is not None
            assert attempt.started <= attempt.ended
        timestamps = [s.timestamp for s in run.states]
        assert timestamps == sorted(timestamps)
    assert third.parameters == {"x": 3}
    assert third.upstream == (second.id,)
    assert first.resumed is False


def test_task_runs_are_in_call_order_even_when_they_finish_out_of_order() -> None:
    gate = threading.Event()

    @task
    def slow() -> str:
        assert gate.wait(10)
        return "slow"

    @task
    def fast() -> str:
        gate.set()
        return "fast"

    @flow
    def pipeline() -> None:
        slow.submit()
        fast.submit()

    flow_run = pipeline.run()

    assert [r.task_name for r in flow_run.task_runs] == ["slow", "fast"]


# --- the graph -------------------------------------------------------------------------------


def test_graph_is_mermaid_with_nodes_states_and_edges() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def pipeline() -> None:
        a, b = inc.submit(1), inc.submit(2)
        add.submit(a, b)
        broken.submit()

    text = pipeline.run().graph()

    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert text.endswith("\n")
    assert '    t0["inc-0<br/>Completed"]:::completed' in lines
    assert '    t1["inc-1<br/>Completed"]:::completed' in lines
    assert '    t2["add-0<br/>Completed"]:::completed' in lines
    assert '    t3["broken-0<br/>Failed"]:::failed' in lines
    edges = {line.strip() for line in lines if "-->" in line}
    assert edges == {"t0 --> t2", "t1 --> t2"}
    assert any(line.strip().startswith("classDef completed ") for line in lines)
    assert any(line.strip().startswith("classDef failed ") for line in lines)


def test_graph_escapes_brackets_and_quotes() -> None:
    @task(name='say "hi"')
    def say(x: int) -> int:
        return x

    @flow
    def pipeline() -> None:
        say.map([1, 2])

    text = pipeline.run().graph()

    assert '["say #quot;hi#quot;-0#91;0#93;<br/>Completed"]' in text
    assert '["say #quot;hi#quot;-0#91;1#93;<br/>Completed"]' in text
    labels = [line.split('"', 1)[1].rsplit('"', 1)[0] for line in text.splitlines() if "[" in line]
    assert all('"' not in label and "[" not in label for label in labels)


def test_graph_shows_subflows() -> None:
    @flow
    def child() -> None: ...

    @flow
    def parent() -> None:
        inc(1)
        child()

    text = parent.run().graph()

    assert '[["child<br/>Completed"]]:::completed' in text


def test_graph_draws_an_edge_into_a_subflow_from_its_upstream() -> None:
    @flow
    def child(x: int) -> int:
        return x

    @flow
    def parent() -> int:
        return child(inc.submit(1))

    flow_run = parent.run()
    (sub,) = flow_run.subflow_runs
    assert sub.upstream == (flow_run.task_runs[0].id,)

    edges = [line.strip() for line in flow_run.graph().splitlines() if "-->" in line]
    assert edges == ["t0 --> f1"]


def test_graph_of_a_paused_run() -> None:
    @task
    def hold() -> None:
        raise Pause("hold")

    @flow
    def pipeline() -> None:
        hold()

    text = pipeline.run().graph()

    assert '["hold-0<br/>Paused"]:::paused' in text
    assert "classDef paused" in text


# --- events ----------------------------------------------------------------------------------


def test_every_state_change_of_every_run_is_published_once_with_its_parent() -> None:
    @task(retries=1)
    def flaky(x: int) -> int:
        if flaky_calls.hit("flaky") == 1:
            raise ConnectionError("once")
        return x

    flaky_calls = Calls()

    @flow
    def child(x: int) -> int:
        return inc(x)

    @flow
    def parent() -> int:
        a = flaky.submit(1)
        b = inc.map([a, 2])
        return child(b[0]) + b[1].result()

    seen: list[StateChange] = []
    lock = threading.Lock()

    def collect(event: StateChange) -> None:
        with lock:
            seen.append(event)

    with events.subscribe(collect):
        flow_run = parent.run()

    assert flow_run.result() == 6
    (sub,) = flow_run.subflow_runs
    by_run: dict[str, list[StateChange]] = defaultdict(list)
    for event in seen:
        by_run[event.run_id].append(event)

    records: dict[str, tuple[str, list[State[Any]], str | None]] = {
        flow_run.id: ("flow", flow_run.states, None),
        sub.id: ("flow", sub.states, flow_run.id),
    }
    for owner in (flow_run, sub):
        for run in owner.task_runs:
            records[run.id] = ("task", run.states, owner.id)
    assert set(by_run) == set(records)
    for run_id, (kind, states, parent_id) in records.items():
        published = by_run[run_id]
        assert [e.state for e in published] == states  # each state once, in order
        assert all(e.state is s for e, s in zip(published, states, strict=True))
        assert [e.previous for e in published] == [None, *states[:-1]]
        assert {e.run_kind for e in published} == {kind}
        assert {e.parent_id for e in published} == {parent_id}
    assert len(seen) == sum(len(states) for _, states, _ in records.values())
    flaky_events = [e.state.name for e in by_run[flow_run.task_runs[0].id]]
    assert flaky_events == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert [e.state.name for e in by_run[flow_run.id]] == ["Pending", "Running", "Completed"]


def test_events_of_a_trigger_failed_and_skipped_run() -> None:
    @task
    def after(x: Any) -> None: ...

    @flow
    def pipeline() -> None:
        after.submit(broken.submit())

    seen: list[StateChange] = []
    with events.subscribe(seen.append):
        flow_run = pipeline.run()

    after_run = flow_run.task_runs[-1]
    mine = [e.state.name for e in seen if e.run_id == after_run.id]
    assert mine == ["Pending", "TriggerFailed"]


def test_events_of_a_retried_flow_do_not_repeat_reused_runs(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @flow(retries=1)
    def pipeline() -> int:
        value = inc(1)
        if calls.hit("body") == 1:
            raise ConnectionError("retry me")
        return value

    seen: list[StateChange] = []
    with events.subscribe(seen.append):
        flow_run = pipeline.run()

    (inc_run,) = flow_run.task_runs
    assert [e.state.name for e in seen if e.run_id == inc_run.id] == [
        "Pending", "Running", "Completed"
    ]  # fmt: skip
    assert [e.state.name for e in seen if e.run_id == flow_run.id] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"
    ]  # fmt: skip


# --- run loggers and the run context ---------------------------------------------------------


def test_run_logger_records_carry_the_run_ids(caplog: pytest.LogCaptureFixture) -> None:
    @task
    def work(x: int) -> int:
        get_run_logger().info("working on %s", x)
        return x

    @flow
    def pipeline() -> None:
        get_run_logger().info("flow starts")
        work(1)
        work.submit(2).wait()

    with caplog.at_level(logging.INFO, logger="reflow.runs"):
        flow_run = pipeline.run()

    records = {r.getMessage(): r for r in caplog.records if r.name == "reflow.runs"}
    assert set(records) == {"flow starts", "working on 1", "working on 2"}
    direct, submitted = flow_run.task_runs
    starts = records["flow starts"]
    assert (starts.flow_run_id, starts.flow_name) == (flow_run.id, "pipeline")  # type: ignore[attr-defined]
    assert (starts.task_run_id, starts.task_name) == (None, None)  # type: ignore[attr-defined]
    for message, run in (("working on 1", direct), ("working on 2", submitted)):
        record = records[message]
        assert record.flow_run_id == flow_run.id  # type: ignore[attr-defined]
        assert record.flow_name == "pipeline"  # type: ignore[attr-defined]
        assert record.task_run_id == run.id  # type: ignore[attr-defined]
        assert record.task_name == "work"  # type: ignore[attr-defined]


def test_run_logger_can_be_named(caplog: pytest.LogCaptureFixture) -> None:
    @flow
    def pipeline() -> None:
        get_run_logger("my.app").warning("hello")

    with caplog.at_level(logging.WARNING, logger="my.app"):
        flow_run = pipeline.run()

    (record,) = [r for r in caplog.records if r.name == "my.app"]
    assert record.flow_run_id == flow_run.id  # type: ignore[attr-defined]


def test_run_logger_of_a_task_outside_a_flow(caplog: pytest.LogCaptureFixture) -> None:
    ids: list[str] = []

    @task
    def alone() -> None:
        run = get_run_context().task_run
        assert run is not None
        ids.append(run.id)
        get_run_logger().info("alone")

    with caplog.at_level(logging.INFO, logger="reflow.runs"):
        alone()

    (record,) = [r for r in caplog.records if r.name == "reflow.runs"]
    assert record.flow_run_id is None  # type: ignore[attr-defined]
    assert record.task_run_id == ids[0]  # type: ignore[attr-defined]


def test_get_run_logger_outside_any_run_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="outside any run"):
        get_run_logger()


def test_get_run_context_outside_any_run_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="outside any run"):
        get_run_context()


def test_get_run_context_in_the_body_and_in_tasks() -> None:
    seen: dict[str, RunContext] = {}

    @task
    def probe(name: str) -> None:
        seen[name] = get_run_context()

    @flow
    def pipeline() -> None:
        seen["body"] = get_run_context()
        probe("direct")
        probe.submit("submitted").wait()

    flow_run = pipeline.run()

    assert seen["body"].flow_run is flow_run
    assert seen["body"].task_run is None
    direct, submitted = flow_run.task_runs
    assert seen["direct"].flow_run is flow_run
    assert seen["direct"].task_run is direct
    assert seen["submitted"].flow_run is flow_run
    assert seen["submitted"].task_run is submitted
    with pytest.raises(RuntimeError):
        get_run_context()  # nothing leaks out of the run


def test_get_run_context_in_a_subflow_names_the_subflow_run() -> None:
    seen: list[FlowRun | None] = []

    @flow
    def child() -> None:
        seen.append(get_run_context().flow_run)

    @flow
    def parent() -> None:
        child()
        seen.append(get_run_context().flow_run)

    flow_run = parent.run()

    assert seen == [flow_run.subflow_runs[0], flow_run]
