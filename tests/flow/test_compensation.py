"""Compensation in decorated flows: `@task(revert=...)` undoes completed work when its flow
fails, and `@flow(retry=controller)` lets a reflow.atoms controller decide the flow's tries."""

from __future__ import annotations

from typing import Any

import pytest

from reflow import Pause, flow, task
from reflow.atoms import AlwaysRevertAll, Decision, ForEach, History, Retry, Times
from reflow.executors import InlineExecutor


def make_booking(log: list[str]) -> Any:
    @task
    def book(item: str) -> str:
        log.append(f"book {item}")
        return f"booking-{item}"

    @book.revert
    def cancel(result: str, item: str) -> None:
        log.append(f"cancel {result}")

    return book


def test_a_failing_flow_reverts_its_completed_tasks_newest_first() -> None:
    log: list[str] = []
    book = make_booking(log)

    @task
    def pay() -> None:
        raise ConnectionError("card declined")

    @flow(executor=InlineExecutor())
    def trip() -> None:
        book("hotel")
        book("car")
        pay()

    flow_run = trip.run()

    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, ConnectionError)
    assert log == ["book hotel", "book car", "cancel booking-car", "cancel booking-hotel"]
    states = [r.state.name for r in flow_run.task_runs]
    assert states == ["Reverted", "Reverted", "Failed"]


def test_a_completed_flow_reverts_nothing() -> None:
    log: list[str] = []
    book = make_booking(log)

    @flow
    def trip() -> str:
        return book("hotel")

    assert trip() == "booking-hotel"
    assert log == ["book hotel"]


def test_plain_retries_reuse_completed_runs_and_revert_only_at_the_end() -> None:
    log: list[str] = []
    book = make_booking(log)

    @task
    def pay() -> None:
        log.append("pay")
        raise ConnectionError("declined")

    @flow(retries=2)
    def trip() -> None:
        book("hotel")
        pay()

    trip.run()

    assert log == ["book hotel", "pay", "pay", "pay", "cancel booking-hotel"]


def test_times_retries_the_flow_reverting_each_failed_try() -> None:
    log: list[str] = []
    book = make_booking(log)
    tries = iter([True, True, False])

    @task
    def pay() -> str:
        if next(tries):
            raise ConnectionError("declined")
        return "paid"

    @flow(retry=Times(3))
    def trip() -> str:
        book("hotel")
        return pay()

    assert trip() == "paid"
    assert log == [
        "book hotel", "cancel booking-hotel",
        "book hotel", "cancel booking-hotel",
        "book hotel",
    ]  # fmt: skip


def test_for_each_passes_each_value_to_the_flow_until_one_works() -> None:
    tried: list[str] = []

    @task
    def connect(ip: str) -> str:
        tried.append(ip)
        if ip != "10.0.0.3":
            raise ConnectionError(ip)
        return f"connected to {ip}"

    @flow(retry=ForEach(["10.0.0.1", "10.0.0.2", "10.0.0.3"], provides="ip"))
    def reach(ip: str) -> str:
        return connect(ip)

    flow_run = reach.run()

    assert flow_run.result() == "connected to 10.0.0.3"
    assert tried == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert flow_run.parameters["ip"] == "10.0.0.3"


def test_for_each_exhausted_fails_the_flow_with_the_last_error() -> None:
    @task
    def connect(ip: str) -> str:
        raise ConnectionError(ip)

    @flow(retry=ForEach(["a", "b"], provides="ip"))
    def reach(ip: str) -> str:
        return connect(ip)

    with pytest.raises(ConnectionError, match="b"):
        reach()


def test_a_subflow_with_a_controller_reverts_before_the_parent_sees_its_failure() -> None:
    log: list[str] = []
    book = make_booking(log)

    @task
    def confirm(ip: str) -> None:
        log.append(f"confirm {ip}")
        raise TimeoutError(ip)

    @flow(retry=ForEach(["x", "y"], provides="ip"))
    def inner(ip: str) -> None:
        book(ip)
        confirm(ip)

    @flow
    def outer() -> None:
        book("outer")
        inner()

    flow_run = outer.run()

    assert flow_run.state.is_failed()
    assert log == [
        "book outer",
        "book x", "confirm x", "cancel booking-x",
        "book y", "confirm y", "cancel booking-y",
        "cancel booking-outer",
    ]  # fmt: skip


def test_revert_all_in_a_subflow_stops_the_parents_retries() -> None:
    runs: list[str] = []

    @task
    def fails() -> None:
        runs.append("fails")
        raise ValueError("broken")

    @flow(retry=AlwaysRevertAll())
    def inner() -> None:
        fails()

    @flow(retry=Times(5))
    def outer() -> None:
        inner()

    with pytest.raises(ValueError, match="broken"):
        outer()
    assert runs == ["fails"]


def test_a_paused_try_resumed_is_the_same_try_with_the_same_value() -> None:
    seen: list[int] = []
    pauses = iter([True])

    @task
    def approve(attempt: int) -> str:
        seen.append(attempt)
        if next(pauses, False):
            raise Pause("waiting for approval")
        if attempt == 1:
            raise ConnectionError("declined")
        return f"approved on try {attempt}"

    @flow(retry=Times(2, provides="attempt"))
    def gate(attempt: int) -> str:
        return approve(attempt)

    flow_run = gate.run()
    assert flow_run.state.is_paused()

    state = flow_run.resume()

    assert state.result() == "approved on try 2"
    assert seen == [1, 1, 2]  # try 1 paused, went on, failed; then try 2
    history = flow_run.scope.history
    assert list(history.provided_iter()) == [1, 2]
    assert [sorted(failures) for _, failures in history] == [["approve-0"], []]


def test_a_custom_controller_sees_the_failures_by_call_key() -> None:
    seen: list[list[tuple[str, str]]] = []

    class Twice(Retry):
        def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
            seen.append([(name, f.exception_str) for name, f in history.outcomes_iter(-1)])
            return Decision.RETRY if len(history) < 2 else Decision.REVERT

    @task
    def fails(x: int) -> None:
        raise KeyError(x)

    @flow(retry=Twice())
    def job() -> None:
        fails.submit(1)
        fails.submit(2)

    job.run()

    assert seen == [[("fails-0", "1"), ("fails-1", "2")], [("fails-0", "1"), ("fails-1", "2")]]


def test_a_revert_that_fails_is_reported_with_the_failure() -> None:
    @task
    def first() -> int:
        return 1

    @first.revert
    def undo_first(result: int) -> None:
        raise OSError("cannot undo first")

    @task
    def second() -> None:
        raise ValueError("second failed")

    @flow
    def job() -> None:
        first()
        second()

    flow_run = job.run()

    error = flow_run.state.exception
    assert isinstance(error, ExceptionGroup)
    assert [type(e) for e in error.exceptions] == [ValueError, OSError]
    assert flow_run.revert_errors[0].args == ("cannot undo first",)


def test_bad_controller_options_are_errors_at_decoration() -> None:
    with pytest.raises(TypeError, match="retry controller"):
        flow(retry=3)
    with pytest.raises(ValueError, match="not both"):
        flow(retry=Times(2), retries=1)

    def no_ip() -> None: ...

    with pytest.raises(TypeError, match="no parameter 'ip'"):
        flow(retry=ForEach(["a"], provides="ip"))(no_ip)
