"""`reflow.states`: state types and names, results, predicates, constructors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reflow import states
from reflow.states import (
    FINAL_TYPES,
    STATE_TYPES,
    State,
    StateError,
    StateType,
    new_state,
    state_filter,
)

EXPECTED_TYPES = {
    "Pending": StateType.PENDING,
    "Scheduled": StateType.SCHEDULED,
    "AwaitingRetry": StateType.SCHEDULED,
    "Running": StateType.RUNNING,
    "Retrying": StateType.RUNNING,
    "Reverting": StateType.RUNNING,
    "Completed": StateType.COMPLETED,
    "Cached": StateType.COMPLETED,
    "Skipped": StateType.COMPLETED,
    "RolledBack": StateType.COMPLETED,
    "Failed": StateType.FAILED,
    "TimedOut": StateType.FAILED,
    "TriggerFailed": StateType.FAILED,
    "Cancelled": StateType.CANCELLED,
    "Reverted": StateType.CANCELLED,
    "Crashed": StateType.CRASHED,
    "Paused": StateType.PAUSED,
}


def test_every_state_name_has_its_type() -> None:
    assert STATE_TYPES == EXPECTED_TYPES
    assert {t.name for t in StateType} == {
        "PENDING", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED",
        "PAUSED",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_each_constructor_builds_its_state(name: str) -> None:
    state = getattr(states, name)()

    assert isinstance(state, State)
    assert state.name == name
    assert state.type is EXPECTED_TYPES[name]
    assert new_state(name).type is EXPECTED_TYPES[name]


def test_final_types() -> None:
    assert (
        frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})
        == FINAL_TYPES
    )
    final = {name for name, kind in EXPECTED_TYPES.items() if new_state(name).is_final()}
    assert final == {
        "Completed", "Cached", "Skipped", "RolledBack", "Failed", "TimedOut", "TriggerFailed",
        "Cancelled", "Reverted", "Crashed",
    }  # fmt: skip


def test_unknown_state_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown state 'Done'"):
        new_state("Done")
    with pytest.raises(ValueError, match="Completed"):  # lists the known names
        new_state("completed")


def test_new_state_keeps_what_it_is_given() -> None:
    error = ValueError("x")
    state = new_state("Failed", message="m", exception=error, attempt=3)

    assert state.message == "m"
    assert state.exception is error
    assert state.attempt == 3
    assert state.data is None


def test_completed_result_is_its_data() -> None:
    assert states.Completed({"a": 1}).result() == {"a": 1}
    assert states.Cached(5).result() == 5
    assert states.Skipped("no", data="s").result() == "s"
    assert states.Completed().result() is None
    assert states.RolledBack().result() is None


@pytest.mark.parametrize("make", [states.Failed, states.TimedOut, states.Crashed])
def test_failure_result_raises_its_exception(make: object) -> None:
    error = KeyError("k")
    state = make(error)  # type: ignore[operator]

    with pytest.raises(KeyError) as info:
        state.result()
    assert info.value is error
    assert state.result(raise_on_failure=False) is error


def test_failure_without_exception_raises_state_error() -> None:
    state = states.TriggerFailed("upstream failed")

    with pytest.raises(StateError, match="ended TriggerFailed: upstream failed"):
        state.result()
    assert state.result(raise_on_failure=False) is None
    with pytest.raises(StateError, match="no result"):
        states.Failed().result()


@pytest.mark.parametrize("name", ["Pending", "Scheduled", "AwaitingRetry", "Running", "Paused"])
def test_a_state_that_has_not_ended_has_no_result(name: str) -> None:
    with pytest.raises(StateError, match="has no result yet"):
        new_state(name).result()
    with pytest.raises(StateError):
        new_state(name).result(raise_on_failure=False)


def test_cancelled_has_no_result() -> None:
    with pytest.raises(StateError, match="Cancelled: stopped"):
        states.Cancelled("stopped").result()
    assert states.Cancelled().result(raise_on_failure=False) is None


def test_state_error_is_a_runtime_error() -> None:
    assert issubclass(StateError, RuntimeError)


PREDICATES = [
    "is_pending", "is_scheduled", "is_running", "is_completed", "is_failed", "is_cancelled",
    "is_crashed", "is_paused", "is_skipped", "is_cached", "is_final",
]  # fmt: skip

TRUE_PREDICATES = {
    "Pending": {"is_pending"},
    "Scheduled": {"is_scheduled"},
    "AwaitingRetry": {"is_scheduled"},
    "Running": {"is_running"},
    "Retrying": {"is_running"},
    "Completed": {"is_completed", "is_final"},
    "Cached": {"is_completed", "is_cached", "is_final"},
    "Skipped": {"is_completed", "is_skipped", "is_final"},
    "RolledBack": {"is_completed", "is_final"},
    "Failed": {"is_failed", "is_final"},
    "TimedOut": {"is_failed", "is_final"},
    "TriggerFailed": {"is_failed", "is_final"},
    "Cancelled": {"is_cancelled", "is_final"},
    "Crashed": {"is_crashed", "is_final"},
    "Paused": {"is_paused"},
}


@pytest.mark.parametrize("name", sorted(TRUE_PREDICATES))
def test_predicates(name: str) -> None:
    state = new_state(name)

    true = {p for p in PREDICATES if getattr(state, p)()}
    assert true == TRUE_PREDICATES[name]


def test_timestamps_and_time() -> None:
    before = datetime.now(UTC).timestamp()
    state = states.Running()
    later = states.Completed(1)
    after = datetime.now(UTC).timestamp()

    assert before <= state.timestamp <= later.timestamp <= after
    assert state.time.tzinfo is UTC
    assert state.time.timestamp() == pytest.approx(state.timestamp)


def test_states_are_immutable() -> None:
    state = states.Completed(1)

    with pytest.raises(AttributeError):
        state.name = "Failed"  # type: ignore[misc]


def test_constructor_defaults() -> None:
    assert states.Running().attempt == 1
    assert states.Retrying().attempt == 2
    assert states.AwaitingRetry("soon", attempt=2).message == "soon"
    assert states.Completed(1, message="done", attempt=2).attempt == 2
    assert states.Skipped("why").message == "why"
    assert states.TimedOut(TimeoutError("t"), attempt=1).is_failed()
    assert states.Cancelled("c", attempt=4).attempt == 4


def test_repr() -> None:
    assert repr(states.Completed(3)) == "State(Completed, result=3)"
    assert repr(states.Failed(ValueError("x"), message="boom")) == (
        "State(Failed, message='boom', exception=ValueError('x'))"
    )
    assert repr(states.Pending()) == "State(Pending)"


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("timedout", ("FAILED", "TimedOut")),
        ("Skipped", ("COMPLETED", "Skipped")),
        ("FAILED", ("FAILED", None)),
        ("Failed", ("FAILED", None)),  # a name that is also a type's: the whole type
        ("paused", ("PAUSED", None)),
    ],
)
def test_a_state_filter_is_a_type_or_a_state_name_in_any_case(
    text: str, meant: tuple[str, str | None]
) -> None:
    assert state_filter(text) == meant


def test_a_state_filter_that_names_no_state_lists_the_states() -> None:
    with pytest.raises(ValueError, match=r"'Sleepy' is not a state; the states are .*Cached"):
        state_filter("Sleepy")
