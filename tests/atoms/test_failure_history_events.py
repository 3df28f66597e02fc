"""`Failure` (an exception as data, across processes), a controller's `History`, and the events
an atoms run publishes: a state change per atom state, and progress reports."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from reflow import events
from reflow.atoms import (
    Decision,
    Failure,
    FunctorTask,
    History,
    LinearFlow,
    RemoteFailure,
    Retry,
    Task,
    Times,
    WrappedFailure,
    run,
)
from reflow.events import Progress, StateChange
from reflow.executors import InlineExecutor, ThreadExecutor

# --- Failure ------------------------------------------------------------------------------------


class Custom(Exception):
    pass


class HoldsLock(Exception):
    """Cannot be pickled: it carries a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_value_error() -> None:
    raise ValueError("bad value")


def captured(fn: Any) -> Failure:
    try:
        fn()
    except Exception as exc:
        return Failure(exc)
    raise AssertionError("did not raise")


def test_a_failure_captures_the_exception_its_type_names_message_and_traceback() -> None:
    failure = captured(raise_value_error)

    assert isinstance(failure.exception, ValueError)
    assert failure.exception_str == "bad value"
    assert failure.exception_type_name == "builtins.ValueError"
    assert failure.type_names == (
        "builtins.ValueError",
        "builtins.Exception",
        "builtins.BaseException",
    )
    assert "raise_value_error" in failure.traceback_str
    assert failure.traceback_str.endswith("ValueError: bad value")
    assert "builtins.ValueError" in repr(failure)


def test_a_failure_of_a_custom_exception_is_named_by_module_and_qualname() -> None:
    failure = Failure(Custom("mine"))

    assert failure.exception_type_name == f"{__name__}.Custom"
    assert failure.traceback_str.endswith("Custom: mine")


def test_check_answers_the_first_given_type_or_dotted_name_it_is_an_instance_of() -> None:
    failure = Failure(KeyError("k"))

    assert failure.check(KeyError) is KeyError
    assert failure.check(ValueError, LookupError, KeyError) is LookupError  # the first that fits
    assert failure.check(Exception) is Exception
    assert failure.check(ValueError, OSError) is None
    assert failure.check("builtins.KeyError") == "builtins.KeyError"
    assert failure.check("builtins.LookupError") == "builtins.LookupError"
    assert failure.check("builtins.ValueError") is None
    assert Failure(Custom("x")).check(f"{__name__}.Custom") == f"{__name__}.Custom"


def test_matches_compares_type_and_message() -> None:
    failure = Failure(ValueError("same"))

    assert failure.matches(Failure(ValueError("same")))
    assert not failure.matches(Failure(ValueError("other")))
    assert not failure.matches(Failure(TypeError("same")))


def test_reraise_raises_the_captured_exception_itself() -> None:
    failure = captured(raise_value_error)

    with pytest.raises(ValueError, match="bad value") as raised:
        failure.reraise()

    assert raised.value is failure.exception


def test_a_failure_takes_only_exceptions() -> None:
    with pytest.raises(TypeError):
        Failure("not an exception")  # type: ignore[arg-type]


def test_a_failure_survives_pickling_with_its_exception() -> None:
    failure = captured(raise_value_error)

    loaded = pickle.loads(pickle.dumps(failure))

    assert isinstance(loaded.exception, ValueError)
    assert loaded.exception.args == ("bad value",)
    assert loaded.type_names == failure.type_names
    assert loaded.traceback_str == failure.traceback_str
    assert loaded.matches(failure)
    assert loaded.check(ValueError) is ValueError
    with pytest.raises(ValueError, match="bad value"):
        loaded.reraise()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: HoldsLock("locked"), id="unpicklable-attribute"),
        pytest.param(lambda: type("Local", (Exception,), {})("locked"), id="unimportable-class"),
    ],
)
def test_a_failure_whose_exception_cannot_be_pickled_still_travels_as_text(make: Any) -> None:
    exc = make()
    failure = Failure(exc)

    loaded = pickle.loads(pickle.dumps(failure))

    assert loaded.exception is None
    assert loaded.exception_str == "locked"
    assert loaded.type_names == failure.type_names
    assert loaded.traceback_str == failure.traceback_str
    assert loaded.check(type(exc)) is type(exc)  # by name: works without the object
    assert loaded.check(Exception) is Exception
    assert loaded.matches(failure)
    with pytest.raises(RemoteFailure) as raised:
        loaded.reraise()
    assert str(raised.value) == f"{failure.exception_type_name}: locked"
    assert raised.value.failure is loaded
    # the original is untouched
    assert failure.exception is exc


# --- History ------------------------------------------------------------------------------------


def snapshot(history: History) -> dict[str, Any]:
    def outcomes(index: int | None = None) -> list[tuple[str, str]]:
        return [(name, f.exception_type_name) for name, f in history.outcomes_iter(index)]

    return {
        "len": len(history),
        "provided": list(history.provided_iter()),
        "values": [value for value, _ in history],
        "first": history[0][0],
        "outcomes": outcomes(),
        "outcomes0": outcomes(0),
        "outcomes_last": outcomes(-1),
        "key_error": history.caused_by(KeyError),
        "key_error_0": history.caused_by(KeyError, index=0),
        "key_error_last": history.caused_by(KeyError, index=-1),
        "lookup_error": history.caused_by(LookupError),
        "value_error_by_name": history.caused_by("builtins.ValueError"),
        "os_error": history.caused_by(OSError),
        "failure": history.failure,
    }


class Inspecting(Retry):
    """Provides "first", "second", "third"; records what its history says at each decision."""

    default_provides = "value"

    def __init__(self) -> None:
        super().__init__(name="inspecting")
        self.lengths_at_execute: list[int] = []
        self.snapshots: list[dict[str, Any]] = []

    def execute(self, history: History) -> str:
        self.lengths_at_execute.append(len(history))
        return ["first", "second", "third"][len(history)]

    def on_failure(self, history: History) -> Decision:
        self.snapshots.append(snapshot(history))
        return Decision.RETRY


def fail_on(wanted: str, error: type[Exception]) -> Any:
    def execute(value: str) -> str:
        if value == wanted:
            raise error(f"on {value}")
        return value

    return execute


def test_history_records_each_try_value_and_the_failures_by_atom() -> None:
    controller = Inspecting()
    flow = LinearFlow("f", retry=controller).add(
        FunctorTask(fail_on("first", KeyError), name="k"),
        FunctorTask(fail_on("second", ValueError), name="v"),
    )

    assert run(flow) == {"value": "third"}

    assert controller.lengths_at_execute == [0, 1, 2]
    one, two = controller.snapshots
    assert one == {
        "len": 1,
        "provided": ["first"],
        "values": ["first"],
        "first": "first",
        "outcomes": [("k", "builtins.KeyError")],
        "outcomes0": [("k", "builtins.KeyError")],
        "outcomes_last": [("k", "builtins.KeyError")],
        "key_error": True,
        "key_error_0": True,
        "key_error_last": True,
        "lookup_error": True,
        "value_error_by_name": False,
        "os_error": False,
        "failure": None,
    }
    assert two == {
        "len": 2,
        "provided": ["first", "second"],
        "values": ["first", "second"],
        "first": "first",
        "outcomes": [("k", "builtins.KeyError"), ("v", "builtins.ValueError")],
        "outcomes0": [("k", "builtins.KeyError")],
        "outcomes_last": [("v", "builtins.ValueError")],
        "key_error": True,
        "key_error_0": True,
        "key_error_last": False,
        "lookup_error": True,
        "value_error_by_name": True,
        "os_error": False,
        "failure": None,
    }


def test_history_failure_is_the_controllers_own_and_counts_only_with_include_retry() -> None:
    seen: list[tuple[Any, bool, bool]] = []

    class Broken(Retry):
        def execute(self, history: History) -> None:
            raise ConnectionError("controller could not start")

        def on_failure(self, history: History) -> Decision:
            return Decision.RETRY

        def revert(self, history: History) -> None:
            seen.append(
                (
                    history.failure,
                    history.caused_by(ConnectionError),
                    history.caused_by(ConnectionError, include_retry=True),
                )
            )

    ran: list[str] = []
    flow = LinearFlow("f", retry=Broken(name="broken")).add(
        FunctorTask(lambda: ran.append("t"), name="t")
    )

    with pytest.raises(ConnectionError, match="controller could not start"):
        run(flow)

    assert ran == []
    [(failure, without, with_retry)] = seen
    assert isinstance(failure, Failure)
    assert failure.check(ConnectionError) is ConnectionError
    assert without is False
    assert with_retry is True


# --- events -------------------------------------------------------------------------------------


@pytest.fixture
def seen() -> Iterator[list[Any]]:
    """Every atom event published while the test runs."""
    collected: list[Any] = []

    def keep(event: Any) -> None:
        if event.run_kind == "atom":
            collected.append(event)

    with events.subscribe(keep):
        yield collected


def states(seen: list[Any]) -> list[tuple[str, str]]:
    return [(e.name, e.state.name) for e in seen if isinstance(e, StateChange)]


def of(seen: list[Any], name: str) -> list[str]:
    return [state for atom, state in states(seen) if atom == name]


def flaky(failures: int) -> Any:
    calls = iter(range(1, 1000))

    def execute() -> str:
        call = next(calls)
        if call <= failures:
            raise RuntimeError(f"flaky call {call}")
        return f"done on call {call}"

    return execute


def test_every_atom_state_of_a_retried_scope_is_an_event_in_order(seen: list[Any]) -> None:
    flow = LinearFlow("f", retry=Times(2, name="r")).add(
        FunctorTask(lambda: "ok", name="ok"), FunctorTask(flaky(1), name="flaky")
    )

    run(flow, executor=InlineExecutor())

    assert states(seen) == [
        ("r", "Pending"),
        ("ok", "Pending"),
        ("flaky", "Pending"),
        ("r", "Running"),
        ("r", "Completed"),
        ("ok", "Running"),
        ("ok", "Completed"),
        ("flaky", "Running"),
        ("flaky", "Failed"),
        ("flaky", "Reverting"),
        ("flaky", "Reverted"),
        ("ok", "Reverting"),
        ("ok", "Reverted"),
        ("r", "Retrying"),
        ("ok", "Pending"),
        ("flaky", "Pending"),
        ("r", "Running"),
        ("r", "Completed"),
        ("ok", "Running"),
        ("ok", "Completed"),
        ("flaky", "Running"),
        ("flaky", "Completed"),
    ]
    changes = [e for e in seen if isinstance(e, StateChange)]
    assert {e.run_kind for e in changes} == {"atom"}
    assert len({e.parent_id for e in changes}) == 1
    assert changes[0].parent_id is not None
    # each event's previous state is the atom's state before it
    last: dict[str, Any] = {}
    for e in changes:
        assert e.previous is last.get(e.name)
        last[e.name] = e.state
    # one run id per execution of an atom: a retried atom gets a new one
    flaky_ids = [(e.state.name, e.run_id) for e in changes if e.name == "flaky"]
    first_try = {run_id for state, run_id in flaky_ids[:5]}
    second_try = {run_id for state, run_id in flaky_ids[5:]}
    assert len(first_try) == 1
    assert len(second_try) == 1
    assert first_try != second_try
    failed = next(e for e in changes if e.state.name == "Failed")
    assert isinstance(failed.state.exception, RuntimeError)
    assert str(failed.state.exception) == "flaky call 1"
    assert last["flaky"].data == "done on call 2"
    assert last["r"].data == 2  # the controller's value of the last try


def test_a_failed_flow_publishes_reverts_and_leaves_atoms_that_never_ran_pending(
    seen: list[Any],
) -> None:
    flow = LinearFlow("f").add(
        FunctorTask(lambda: 1, name="a"),
        FunctorTask(flaky(1), name="b"),
        FunctorTask(lambda: 3, name="c"),
    )

    with pytest.raises(RuntimeError):
        run(flow)

    assert of(seen, "a") == ["Pending", "Running", "Completed", "Reverting", "Reverted"]
    assert of(seen, "b") == ["Pending", "Running", "Failed", "Reverting", "Reverted"]
    assert of(seen, "c") == ["Pending"]


def test_a_failed_revert_is_published_as_a_failed_state(seen: list[Any]) -> None:
    def cannot_undo() -> None:
        raise OSError("stuck")

    flow = LinearFlow("f").add(
        FunctorTask(lambda: 1, name="a"),
        FunctorTask(lambda: 2, name="b", revert=cannot_undo),
        FunctorTask(flaky(1), name="c"),
    )

    with pytest.raises(WrappedFailure):
        run(flow)

    assert of(seen, "b") == ["Pending", "Running", "Completed", "Reverting", "Failed"]
    assert of(seen, "a") == ["Pending", "Running", "Completed"]  # upstream of b: not reverted
    last_of_b = [e for e in seen if isinstance(e, StateChange) and e.name == "b"][-1]
    assert isinstance(last_of_b.state.exception, OSError)


class Reporting(Task):
    def execute(self) -> str:
        self.update_progress(0.25)
        self.update_progress(1.0, {"step": "done"})
        return "reported"


def test_update_progress_publishes_progress_events_of_the_running_atom(seen: list[Any]) -> None:
    run(LinearFlow("f").add(Reporting(name="reporting")))

    kinds = [
        (e.state.name if isinstance(e, StateChange) else ("progress", e.progress)) for e in seen
    ]
    assert kinds == ["Pending", "Running", ("progress", 0.25), ("progress", 1.0), "Completed"]
    progress = [e for e in seen if isinstance(e, Progress)]
    running = next(e for e in seen if isinstance(e, StateChange) and e.state.name == "Running")
    assert [(p.run_kind, p.name, p.details) for p in progress] == [
        ("atom", "reporting", {}),
        ("atom", "reporting", {"step": "done"}),
    ]
    assert {p.run_id for p in progress} == {running.run_id}
    assert {p.parent_id for p in progress} == {running.parent_id}


def test_progress_from_worker_threads_reaches_subscribers(seen: list[Any]) -> None:
    flow = LinearFlow("f").add(Reporting(name="one"), Reporting(name="two"))

    run(flow, executor=ThreadExecutor(2))

    reported = [(e.name, e.progress) for e in seen if isinstance(e, Progress)]
    assert reported == [("one", 0.25), ("one", 1.0), ("two", 0.25), ("two", 1.0)]


def test_progress_out_of_range_fails_the_atom() -> None:
    class Overshoot(Task):
        def execute(self) -> None:
            self.update_progress(1.5)

    with pytest.raises(ValueError, match=r"between 0\.0 and 1\.0"):
        run(Overshoot(name="overshoot"))


def test_progress_outside_a_run_goes_nowhere(seen: list[Any]) -> None:
    Reporting(name="alone").execute()

    assert seen == []


def test_failure_check_takes_bare_names_of_builtin_exceptions() -> None:
    failure = Failure(KeyError("x"))

    assert failure.check("KeyError") == "KeyError"
    assert failure.check("LookupError") == "LookupError"
    assert failure.check("mymodule.KeyError") is None
    assert failure.check("ValueError", "Exception") == "Exception"


def test_a_failure_read_back_from_its_data_checks_and_reraises_by_its_texts() -> None:
    try:
        raise TimeoutError("the gateway timed out")
    except TimeoutError as exc:
        data = Failure(exc).to_dict()

    back = Failure.from_dict(json.loads(json.dumps(data)))  # as a store keeps it: JSON

    assert back.check(OSError) is OSError
    assert back.check(KeyError) is None
    assert back.exception_str == "the gateway timed out"
    assert back.traceback_str == data["traceback_str"]
    with pytest.raises(RemoteFailure, match=r"builtins\.TimeoutError: the gateway timed out"):
        back.reraise()
