"""Waits: every accepted form, strategies and their sum, jitter bounds, deadlines, zero waits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reflow import retry, waits
from reflow.retry import AttemptState, Phase
from reflow.testing import VirtualClock, instant
from tests.retry._support import Flavor, Script


def state(attempt: int, exception: BaseException | None = None) -> AttemptState:
    return AttemptState(attempt, Phase.FAILURE, 0.0, exception)


def waits_of(flavor: Flavor, clock: VirtualClock, wait: object, attempts: int = 4) -> list[float]:
    """The waits a call that always fails asks for, with `attempts` attempts."""
    fetch = retry(attempts=attempts, wait=wait)(flavor.function(Script(ValueError)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    return clock.waits


# --- the forms `wait=` accepts ----------------------------------------------------------------


def test_number_waits_the_same_before_every_retry(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    assert waits_of(flavor, reflow_clock, 2.5) == [2.5, 2.5, 2.5]


def test_timedelta_waits_its_seconds(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    assert waits_of(flavor, reflow_clock, timedelta(milliseconds=1500)) == [1.5, 1.5, 1.5]


def test_list_gives_one_wait_per_retry_and_the_last_repeats(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    assert waits_of(flavor, reflow_clock, [1, 2], attempts=5) == [1, 2, 2, 2]


def test_callable_is_asked_for_each_wait(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    assert waits_of(flavor, reflow_clock, lambda s: s.attempt * 10) == [10, 20, 30]


def test_callable_wait_sees_the_failed_attempt(reflow_clock: VirtualClock) -> None:
    seen: list[tuple[int, str]] = []

    def wait(s: AttemptState) -> float:
        seen.append((s.attempt, str(s.exception)))
        return 0.5

    fetch = retry(attempts=3, wait=wait)(Script(ValueError).step)
    with pytest.raises(ValueError, match="failure"):
        fetch()
    assert seen == [(1, "failure 1"), (2, "failure 2")]


def test_callable_may_return_a_timedelta(reflow_clock: VirtualClock) -> None:
    assert waits_of(Flavor(False), reflow_clock, lambda s: timedelta(seconds=3), 2) == [3]


# --- strategies -------------------------------------------------------------------------------


def test_fixed_strategy(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    assert waits_of(flavor, reflow_clock, waits.fixed(3)) == [3, 3, 3]


def test_exponential_doubles_up_to_the_cap(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    wait = waits.exponential(initial=1, max=5)

    assert waits_of(flavor, reflow_clock, wait, attempts=6) == [1, 2, 4, 5, 5]


def test_exponential_uses_its_base() -> None:
    wait = waits.exponential(initial=0.5, max=100, base=3)

    assert [wait(state(n)) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]


def test_exponential_stays_at_the_cap_for_huge_attempt_numbers() -> None:
    wait = waits.exponential(initial=1, max=30)

    assert wait(state(100_000)) == 30


def test_sequence_strategy(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    assert waits_of(flavor, reflow_clock, waits.sequence([1, 3]), attempts=4) == [1, 3, 3]


def test_chain_uses_one_strategy_per_retry_and_the_last_repeats(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    wait = waits.chain(0.5, waits.fixed(1), waits.exponential(initial=2, max=100))

    # Each strategy is asked with the call's attempt number: the exponential goes on from 3.
    assert waits_of(flavor, reflow_clock, wait, attempts=6) == [0.5, 1, 8, 16, 32]


def test_strategies_add() -> None:
    wait = waits.fixed(1) + waits.exponential(initial=1, max=10)

    assert [wait(state(n)) for n in (1, 2, 3)] == [2, 3, 5]


def test_numbers_add_to_strategies_on_either_side() -> None:
    assert (waits.fixed(1) + 0.5)(state(1)) == 1.5
    assert (0.5 + waits.fixed(1))(state(1)) == 1.5


def test_sum_of_strategies_as_a_wait(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    assert waits_of(flavor, reflow_clock, waits.fixed(1) + [1, 2]) == [2, 3, 3]  # noqa: RUF005


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _retry_after(exc: BaseException) -> float | None:
    return getattr(exc, "retry_after", None)


def test_from_exception_takes_the_wait_from_the_error(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(RateLimited(3), ValueError, "ok")
    fetch = retry(attempts=5, wait=waits.from_exception(_retry_after, fallback=0.5))(
        flavor.function(script)
    )

    assert flavor.call(fetch) == "ok"
    assert reflow_clock.waits == [3, 0.5]


def test_from_exception_fallback_may_be_a_strategy() -> None:
    wait = waits.from_exception(_retry_after, waits.exponential(initial=1, max=10))

    assert wait(state(3, ValueError())) == 4
    assert wait(state(3, RateLimited(7))) == 7


def test_strategies_have_readable_reprs() -> None:
    assert repr(waits.fixed(2)) == "waits.fixed(2, jitter=0)"
    assert repr(waits.exponential(initial=1, max=8)) == (
        "waits.exponential(initial=1, max=8, base=2, jitter=0)"
    )


# --- zero waits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wait", [0, 0.0, timedelta(0), [0], waits.fixed(0), waits.fixed(0, jitter=1)], ids=repr
)
def test_zero_wait_never_calls_sleep(
    flavor: Flavor, reflow_clock: VirtualClock, wait: object
) -> None:
    assert waits_of(flavor, reflow_clock, wait) == []


# --- deadlines --------------------------------------------------------------------------------


def test_gives_up_instead_of_waiting_past_the_deadline(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=5, wait=10, deadline=5)(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert script.calls == 1
    assert reflow_clock.waits == []
    assert "deadline" in info.value.__notes__[0]
    assert info.value.__notes__[0].startswith("reflow: gave up after 1 attempt ")


def test_waits_that_fit_the_deadline_are_taken(reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=10, wait=1, deadline=2.5)(script.step)

    with pytest.raises(ValueError, match="failure 3") as info:
        fetch()
    assert reflow_clock.waits == [1, 1]
    assert "2.5 s deadline" in info.value.__notes__[0]


def test_deadline_accepts_a_timedelta(reflow_clock: VirtualClock) -> None:
    fetch = retry(attempts=10, wait=1, deadline=timedelta(seconds=2))(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        fetch()
    assert reflow_clock.waits == [1, 1]


@given(
    schedule=st.lists(st.floats(0, 10), min_size=1, max_size=6),
    deadline=st.floats(0.01, 30),
)
def test_no_wait_ever_passes_the_deadline(schedule: list[float], deadline: float) -> None:
    with instant() as clock:
        fetch = retry(attempts=50, wait=schedule, deadline=deadline)(Script(ValueError).step)
        with pytest.raises(ValueError, match="failure"):
            fetch()
    assert clock.total_wait <= deadline


# --- jitter -----------------------------------------------------------------------------------

factors = st.floats(0, 1)
seconds = st.floats(0, 1e6)


@given(wait=seconds, jitter=factors, attempt=st.integers(1, 100))
def test_fixed_jitter_stays_within_bounds(wait: float, jitter: float, attempt: int) -> None:
    drawn = waits.fixed(wait, jitter=jitter)(state(attempt))

    assert wait * (1 - jitter) <= drawn <= wait


@given(values=st.lists(seconds, min_size=1, max_size=5), jitter=factors, attempt=st.integers(1, 9))
def test_sequence_jitter_stays_within_bounds(
    values: list[float], jitter: float, attempt: int
) -> None:
    base = values[min(attempt, len(values)) - 1]
    drawn = waits.sequence(values, jitter=jitter)(state(attempt))

    assert base * (1 - jitter) <= drawn <= base


@given(
    initial=seconds,
    cap=seconds,
    base=st.floats(1, 10),
    jitter=factors,
    attempt=st.integers(1, 10_000),
)
def test_exponential_never_exceeds_its_max(
    initial: float, cap: float, base: float, jitter: float, attempt: int
) -> None:
    drawn = waits.exponential(initial=initial, max=cap, base=base, jitter=jitter)(state(attempt))

    assert 0 <= drawn <= cap


@given(
    initial=st.floats(0.001, 10), cap=st.floats(0, 100), jitter=factors, attempt=st.integers(1, 40)
)
def test_exponential_jitter_stays_within_bounds(
    initial: float, cap: float, jitter: float, attempt: int
) -> None:
    unjittered = min(cap, initial * 2 ** (attempt - 1))
    drawn = waits.exponential(initial=initial, max=cap, jitter=jitter)(state(attempt))

    assert unjittered * (1 - jitter) <= drawn <= unjittered


def test_full_jitter_spreads_waits() -> None:
    wait = waits.fixed(10, jitter=1)

    assert len({wait(state(1)) for _ in range(20)}) > 1


# --- a wait that raises -----------------------------------------------------------------------


class NoAdvice(Exception):
    """An error that carries no `retry_after`."""


def _required_retry_after(exc: BaseException) -> float:
    return exc.retry_after  # type: ignore[attr-defined, no-any-return]


def test_error_in_a_wait_strategy_keeps_the_attempts_error_as_cause(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(RateLimited(3), NoAdvice)
    fetch = retry(attempts=5, wait=waits.from_exception(_required_retry_after))(
        flavor.function(script)
    )

    with pytest.raises(AttributeError, match="retry_after") as info:
        flavor.call(fetch)
    assert info.value.__cause__ is script.raised[1]  # the attempt's own error is not lost
    assert info.value.__notes__ == [
        f"reflow: raised by the wait strategy {fetch.policy.wait!r} after attempt 2 of "
        f"{fetch.__qualname__} failed"
    ]
    assert script.calls == 2
    assert reflow_clock.waits == [3]


@pytest.mark.parametrize(
    ("returned", "error", "message"),
    [
        (-1, ValueError, "must be zero or more seconds"),
        (float("inf"), ValueError, "must be finite"),
        ("soon", TypeError, "must be a number of seconds"),
    ],
    ids=["negative", "infinite", "not-a-duration"],
)
def test_bad_wait_returned_by_a_function_keeps_the_attempts_error_as_cause(
    flavor: Flavor,
    reflow_clock: VirtualClock,
    returned: object,
    error: type[Exception],
    message: str,
) -> None:
    def how_long(state: AttemptState) -> object:
        return returned

    script = Script(ConnectionError)
    fetch = retry(attempts=3, wait=how_long)(flavor.function(script))  # type: ignore[arg-type]

    with pytest.raises(error, match=f"the wait returned by how_long {message}") as info:
        flavor.call(fetch)
    assert info.value.__cause__ is script.raised[0]
    assert info.value.__notes__[0].startswith(
        "reflow: raised by the wait strategy how_long after attempt 1 of "
    )
    assert script.calls == 1
    assert reflow_clock.waits == []
