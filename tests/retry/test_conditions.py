"""Stop conditions: each condition alone, their algebra, and how `until=` uses them."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from reflow import retry
from reflow.retry import (
    AttemptsExhausted,
    AttemptState,
    Condition,
    ExceptionMatches,
    NoException,
    Phase,
    ResultMatches,
    TimeElapsed,
)
from reflow.testing import VirtualClock
from tests.retry._support import Flavor, Recorder, Script


def state(
    attempt: int = 1,
    exception: BaseException | None = None,
    result: object = None,
    elapsed: float = 0.0,
) -> AttemptState:
    return AttemptState(attempt, Phase.FAILURE, elapsed, exception, result)


# --- each condition ---------------------------------------------------------------------------


def test_attempts_exhausted_is_true_from_the_nth_attempt() -> None:
    condition = AttemptsExhausted(3)

    assert [condition(state(n)) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_exception_matches_a_type_and_its_subclasses() -> None:
    condition = ExceptionMatches(OSError)

    assert condition(state(exception=ConnectionResetError()))
    assert not condition(state(exception=ValueError()))


def test_exception_matches_any_of_a_tuple() -> None:
    condition = ExceptionMatches((KeyError, ValueError))

    assert condition(state(exception=KeyError()))
    assert condition(state(exception=ValueError()))
    assert not condition(state(exception=TypeError()))


def test_exception_matches_with_a_predicate() -> None:
    condition = ExceptionMatches(lambda exc: "busy" in str(exc))

    assert condition(state(exception=RuntimeError("server busy")))
    assert not condition(state(exception=RuntimeError("bad request")))


def test_exception_matches_is_false_without_an_exception() -> None:
    assert not ExceptionMatches(Exception)(state(result="ok"))


def test_result_matches_the_returned_value() -> None:
    condition = ResultMatches(lambda r: r == "ready")

    assert condition(state(result="ready"))
    assert not condition(state(result="pending"))
    assert not condition(state(exception=ValueError("ready")))


def test_time_elapsed_is_true_once_the_time_passed() -> None:
    condition = TimeElapsed(timedelta(seconds=5))

    assert not condition(state(elapsed=4.9))
    assert condition(state(elapsed=5.0))


def test_no_exception_is_true_when_the_attempt_returned() -> None:
    assert NoException()(state(result=None))
    assert not NoException()(state(exception=ValueError()))


# --- algebra ----------------------------------------------------------------------------------


def test_or_is_true_when_either_part_is() -> None:
    condition = AttemptsExhausted(3) | ExceptionMatches(KeyError)

    assert condition(state(3, ValueError()))
    assert condition(state(1, KeyError()))
    assert not condition(state(1, ValueError()))


def test_and_is_true_only_when_both_parts_are() -> None:
    condition = AttemptsExhausted(2) & ExceptionMatches(KeyError)

    assert condition(state(2, KeyError()))
    assert not condition(state(1, KeyError()))
    assert not condition(state(2, ValueError()))


def test_invert_negates() -> None:
    condition = ~ExceptionMatches(KeyError)

    assert condition(state(exception=ValueError()))
    assert not condition(state(exception=KeyError()))


def test_double_invert_gives_back_the_same_condition() -> None:
    condition = ExceptionMatches(KeyError)

    assert ~~condition is condition


def test_plain_callables_combine_on_either_side() -> None:
    def late(s: AttemptState) -> bool:
        return s.attempt >= 3

    left = late | ExceptionMatches(KeyError)
    right = ExceptionMatches(KeyError) & late

    assert isinstance(left, Condition)
    assert isinstance(right, Condition)
    assert left(state(3, ValueError()))
    assert left(state(1, KeyError()))
    assert not left(state(1, ValueError()))
    assert right(state(3, KeyError()))
    assert not right(state(2, KeyError()))


def test_combined_condition_repr_reads_like_the_expression() -> None:
    condition = AttemptsExhausted(3) | ~ExceptionMatches((ValueError, KeyError))

    assert repr(condition) == "(AttemptsExhausted(3) | ~ExceptionMatches((ValueError, KeyError)))"


def test_or_with_a_non_callable_raises() -> None:
    with pytest.raises(TypeError, match="stop condition"):
        AttemptsExhausted(3) | 3  # type: ignore[operator]


# --- until= in a retried call -----------------------------------------------------------------

RETRY_ONLY_VALUE_ERRORS = AttemptsExhausted(3) | ~ExceptionMatches(ValueError)


def test_until_retries_the_matched_exception(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(until=RETRY_ONLY_VALUE_ERRORS, wait=1)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 3
    assert reflow_clock.waits == [1, 1]


def test_until_stops_at_once_on_any_other_exception(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError, KeyError, "ok")
    fetch = retry(until=RETRY_ONLY_VALUE_ERRORS, wait=1)(flavor.function(script))

    with pytest.raises(KeyError):
        flavor.call(fetch)
    assert script.calls == 2
    assert reflow_clock.waits == [1]


def test_double_negation_behaves_as_the_condition(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    fatal = ~~ExceptionMatches(KeyError)
    script = Script(ValueError, KeyError, "ok")
    fetch = retry(until=AttemptsExhausted(5) | fatal, wait=1)(flavor.function(script))

    with pytest.raises(KeyError):
        flavor.call(fetch)
    assert script.calls == 2


def test_and_condition_in_until(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    give_up_late = ExceptionMatches(ValueError) & AttemptsExhausted(2)
    script = Script(ValueError)
    fetch = retry(until=AttemptsExhausted(5) | give_up_late, wait=0)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 2


def test_plain_callable_as_until(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(until=lambda s: s.attempt >= 2, wait=0)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 2


def test_until_and_attempts_both_apply(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(until=~ExceptionMatches(ValueError), attempts=2, wait=0)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 2


def test_deadline_stops_once_the_time_passed(reflow_clock: VirtualClock) -> None:
    calls = 0

    @retry(deadline=5, wait=0)
    def slow() -> None:
        nonlocal calls
        calls += 1
        reflow_clock.advance(3)  # each attempt takes 3 s
        raise ValueError(calls)

    with pytest.raises(ValueError, match="2"):
        slow()
    assert calls == 2


def test_time_elapsed_accepts_a_timedelta_in_until(reflow_clock: VirtualClock) -> None:
    calls = 0

    @retry(until=TimeElapsed(timedelta(seconds=2.5)), wait=1)
    def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("failure")

    with pytest.raises(ValueError, match="failure"):
        flaky()
    assert calls == 4  # attempts at 0, 1, 2 and 3 s
    assert reflow_clock.waits == [1, 1, 1]


# --- ResultMatches: retrying on a bad result (polling) ----------------------------------------

UNTIL_READY = AttemptsExhausted(5) | ResultMatches(lambda r: r == "ready")


def test_result_matches_polls_until_ready(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script("pending", "pending", "ready")
    poll = retry(until=UNTIL_READY, wait=2)(flavor.function(script))

    assert flavor.call(poll) == "ready"
    assert script.calls == 3
    assert reflow_clock.waits == [2, 2]


def test_result_matches_still_retries_exceptions(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script("pending", ConnectionError, "ready")
    poll = retry(until=UNTIL_READY, wait=2)(flavor.function(script))

    assert flavor.call(poll) == "ready"
    assert script.calls == 3


def test_result_matches_polls_with_the_on_shorthand(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script("pending", ConnectionError, "ready")
    poll = retry(until=ResultMatches(lambda r: r == "ready"), on=ConnectionError, attempts=5)(
        flavor.function(script)
    )

    assert flavor.call(poll) == "ready"
    assert script.calls == 3


def test_result_matches_with_on_stops_on_other_exceptions(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script("pending", KeyError, "ready")
    poll = retry(until=ResultMatches(lambda r: r == "ready"), on=ConnectionError, attempts=5)(
        flavor.function(script)
    )

    with pytest.raises(KeyError):
        flavor.call(poll)
    assert script.calls == 2


def test_bad_results_are_reported_to_on_failure(reflow_clock: VirtualClock) -> None:
    seen: list[object] = []
    poll = retry(until=UNTIL_READY, wait=0, on_failure=lambda s: seen.append(s.result))(
        Script("pending", "ready").step
    )

    assert poll() == "ready"
    assert seen == ["pending"]


def _events(recorder: Recorder) -> list[tuple[str, int, object]]:
    return [(s.phase.value, s.attempt, s.result) for s in recorder.states]


def test_polling_that_runs_out_is_a_give_up(
    flavor: Flavor, reflow_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    script = Script("pending", "running")
    poll = retry(
        until=UNTIL_READY, attempts=3, wait=1,
        on_success=recorder, on_failure=recorder, on_giveup=recorder,
    )(flavor.function(script))  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="reflow.retry"):
        assert flavor.call(poll) == "running"  # the last result, returned, not raised
    assert script.calls == 3
    assert _events(recorder) == [
        ("on_failure", 1, "pending"),
        ("on_failure", 2, "running"),
        ("on_failure", 3, "running"),  # the last rejected result too
        ("on_giveup", 3, "running"),  # once; on_success never fires
    ]
    (record,) = [r for r in caplog.records if r.name == "reflow.retry"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"reflow: gave up polling {poll.__qualname__} after 3 attempts in 2.00 s; "
        "returning the last result 'running'"
    )


def test_accepted_result_is_a_success_without_a_warning(
    flavor: Flavor, reflow_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    script = Script("pending", "ready")
    poll = retry(until=UNTIL_READY, wait=1, on_success=recorder, on_giveup=recorder)(
        flavor.function(script)
    )

    with caplog.at_level(logging.DEBUG, logger="reflow.retry"):
        assert flavor.call(poll) == "ready"
    assert _events(recorder) == [("on_success", 2, "ready")]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_result_on_the_last_attempt_is_accepted_only_when_it_matches(
    reflow_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    poll = retry(until=UNTIL_READY, wait=0, on_success=recorder, on_giveup=recorder)(
        Script("pending", "pending", "pending", "pending", "ready").step
    )

    assert poll() == "ready"  # the fifth and last attempt: accepted for being ready
    assert _events(recorder) == [("on_success", 5, "ready")]


def test_time_running_out_does_not_accept_a_result(
    reflow_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    poll = retry(
        until=ResultMatches(lambda r: r == "ready") | TimeElapsed(5), wait=10,
        on_success=recorder, on_giveup=recorder,
    )(Script("pending").step)  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="reflow.retry"):
        assert poll() == "pending"
    assert reflow_clock.waits == [10]  # TimeElapsed(5) holds at 10 s, yet "pending" is no success
    assert _events(recorder) == [("on_giveup", 2, "pending")]
    assert "reflow: gave up polling" in caplog.text


def test_polling_ended_by_the_deadline_rule_warns_with_the_reason(
    reflow_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    poll = retry(
        until=ResultMatches(lambda r: r == "ready"), deadline=5, wait=10, on_giveup=recorder
    )(Script("pending").step)

    with caplog.at_level(logging.WARNING, logger="reflow.retry"):
        assert poll() == "pending"
    assert _events(recorder) == [("on_giveup", 1, "pending")]
    (record,) = [r for r in caplog.records if r.name == "reflow.retry"]
    assert record.getMessage().endswith(
        "after 1 attempt in 0.00 s (the next wait of 10 s would pass the 5 s deadline); "
        "returning the last result 'pending'"
    )


def test_a_result_is_judged_as_if_nothing_had_been_spent(reflow_clock: VirtualClock) -> None:
    asked: list[AttemptState] = []

    def watch(state: AttemptState) -> bool:
        asked.append(state)
        return False

    script = Script("pending", "ready")

    @retry(until=watch | ResultMatches(lambda r: r == "ready") | AttemptsExhausted(3), wait=1)
    def poll(job: str, *, timeout: int) -> str:
        return script.step()  # type: ignore[no-any-return]

    assert poll("job-1", timeout=30) == "ready"
    judged = [s for s in asked if s.attempt == 0]  # the acceptance questions
    assert [s.result for s in judged] == ["pending", "ready"]
    assert all(s.elapsed == 0 for s in judged)
    # The judged state is still the call's: its name and arguments are kept.
    assert all(s.args == ("job-1",) and s.kwargs == {"timeout": 30} for s in judged)
    assert all(s.name == poll.__qualname__ for s in judged)


# --- a condition that raises ------------------------------------------------------------------


def _broken(state: AttemptState) -> bool:
    raise LookupError("no such field")


def test_error_in_the_stop_condition_keeps_the_attempts_error_as_cause(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    script = Script(ConnectionError)
    fetch = retry(until=_broken, attempts=3, wait=1, on_failure=recorder, on_giveup=recorder)(
        flavor.function(script)
    )

    with pytest.raises(LookupError, match="no such field") as info:
        flavor.call(fetch)
    assert info.value.__cause__ is script.raised[0]
    assert recorder.phases() == ["on_failure"]  # the call ends at once: no give-up
    assert info.value.__notes__ == [
        f"reflow: raised by the stop condition {fetch.policy.until!r} after attempt 1 of "
        f"{fetch.__qualname__} failed"
    ]
    assert script.calls == 1
    assert reflow_clock.waits == []


def test_error_in_a_condition_judging_a_result_names_the_attempt(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script({"status": "running"}, None)
    poll = retry(until=ResultMatches(lambda r: r["status"] == "done"), attempts=3, wait=1)(
        flavor.function(script)
    )

    with pytest.raises(TypeError) as info:
        flavor.call(poll)
    assert info.value.__cause__ is None  # the attempt returned: there is no error of its own
    assert info.value.__notes__ == [
        f"reflow: raised by the stop condition {poll.policy.until!r} after attempt 2 of "
        f"{poll.__qualname__} returned"
    ]
    assert script.calls == 2
