"""Property tests: jitter stays in its bounds; retry_delay_seconds lists follow Prefect."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from reflow import task
from reflow.retry import AttemptState, Phase, waits
from reflow.task.options import Jittered
from reflow.testing import instant

delays = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
factors = st.floats(min_value=0, max_value=100, allow_nan=False, allow_infinity=False)


def within(value: float, low: float, high: float) -> bool:
    """`low <= value <= high`, allowing for the rounding of `random.uniform`."""
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    return low - slack <= value <= high + slack


@given(delay=delays, factor=factors, attempt=st.integers(min_value=1, max_value=50))
def test_jittered_delay_is_within_its_bounds(delay: float, factor: float, attempt: int) -> None:
    wait = Jittered(waits.fixed(delay), factor)

    drawn = wait(AttemptState(attempt, Phase.FAILURE))

    assert within(drawn, delay * (1 - min(factor, 1)), delay * (1 + factor))
    assert drawn >= 0


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(min_value=1e-3, max_value=1e6), min_size=1, max_size=5),
    factor=factors,
    retries=st.integers(min_value=1, max_value=8),
)
def test_task_waits_are_jittered_within_bounds(
    values: list[float], factor: float, retries: int
) -> None:
    t = task(retries=retries, retry_delay_seconds=values, retry_jitter_factor=factor)(_fail)

    with instant() as clock:
        state = t(return_state=True)

    assert state.is_failed()
    assert len(clock.waits) == retries
    for n, drawn in enumerate(clock.waits):
        base = values[min(n, len(values) - 1)]
        assert within(drawn, base * (1 - min(factor, 1)), base * (1 + factor))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=6),
    retries=st.integers(min_value=0, max_value=10),
)
def test_a_delay_list_gives_its_values_in_order_then_repeats_the_last(
    values: list[float], retries: int
) -> None:
    t = task(retries=retries, retry_delay_seconds=values)(_fail)

    with instant() as clock:
        t(return_state=True)

    expected = [values[min(n, len(values) - 1)] for n in range(retries)]
    assert clock.waits == [w for w in expected if w > 0]  # a zero wait is no wait at all


@settings(max_examples=40, deadline=None)
@given(
    factor=st.floats(min_value=0.001, max_value=100, allow_nan=False),
    retries=st.integers(min_value=0, max_value=10),
)
def test_exponential_backoff_doubles(factor: float, retries: int) -> None:
    from reflow.task import exponential_backoff

    t = task(retries=retries, retry_delay_seconds=exponential_backoff(factor))(_fail)

    with instant() as clock:
        t(return_state=True)

    assert len(clock.waits) == retries
    for n, drawn in enumerate(clock.waits):
        assert math.isclose(drawn, factor * 2**n)


def _fail() -> None:
    raise ValueError("always")
