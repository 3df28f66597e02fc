"""RetryBudget: retries capped over a sliding window, shared between Retriables."""

from __future__ import annotations

from typing import Any

import pytest

from reflow import RetryBudget, attempting, retry
from reflow.testing import VirtualClock
from tests.retry._support import Flavor, Script


def _tight() -> RetryBudget:
    """One retry a second, none earned by calls."""
    return RetryBudget(ratio=0, min_per_second=1, window=1)


def test_second_retry_in_the_same_second_is_refused(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=5, wait=0, budget=_tight())(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert script.calls == 2
    assert info.value is script.raised[-1]
    assert "budget" in info.value.__notes__[0]


def test_budget_is_shared_between_retriables(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    budget = _tight()
    first = retry(attempts=5, wait=0, budget=budget)(flavor.function(Script(ValueError, "ok")))
    second_script = Script(ValueError)
    second = retry(attempts=5, wait=0, budget=budget)(flavor.function(second_script))

    assert flavor.call(first) == "ok"  # spends the only retry of this second
    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(second)
    assert second_script.calls == 1
    assert "budget" in info.value.__notes__[0]


def test_budget_refills_when_the_window_slides(reflow_clock: VirtualClock) -> None:
    budget = _tight()
    fetch = retry(attempts=5, wait=0, budget=budget)(Script(ValueError).step)
    with pytest.raises(ValueError, match="failure"):
        fetch()

    reflow_clock.advance(1)
    script = Script(ValueError, "ok")
    assert retry(attempts=5, wait=0, budget=budget)(script.step)() == "ok"
    assert script.calls == 2


def test_each_call_earns_a_fraction_of_a_retry(reflow_clock: VirtualClock) -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0, window=10)
    healthy = retry(attempts=5, wait=0, budget=budget)(Script("ok").step)
    healthy()
    healthy()  # two calls so far: one retry earned; the next call earns half of one more

    script = Script(ValueError)
    with pytest.raises(ValueError, match="failure"):
        retry(attempts=5, wait=0, budget=budget)(script.step)()
    assert script.calls == 2


def test_budget_applies_to_attempting_blocks(reflow_clock: VirtualClock) -> None:
    budget = _tight()
    entered: list[int] = []

    def run() -> None:
        for attempt in attempting(attempts=5, wait=0, budget=budget):
            with attempt:
                entered.append(attempt.number)
                raise ValueError("failure")

    with pytest.raises(ValueError, match="failure") as info:
        run()
    assert entered == [1, 2]
    assert "budget" in info.value.__notes__[0]


def test_budget_repr_shows_its_settings() -> None:
    assert repr(RetryBudget(ratio=0.2, min_per_second=5, window=30)) == (
        "RetryBudget(ratio=0.2, min_per_second=5, window=30)"
    )


BAD_BUDGETS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"ratio": -0.1}, ValueError, "ratio must be 0 or more"),
    ({"ratio": "0.1"}, TypeError, "ratio must be a number"),
    ({"ratio": float("inf")}, ValueError, "ratio must be 0 or more and finite"),
    ({"min_per_second": -1}, ValueError, "min_per_second must be 0 or more"),
    ({"min_per_second": "10"}, TypeError, "min_per_second must be a number"),
    ({"window": 0}, ValueError, "window must be at least 1 second"),
    ({"window": 0.5}, TypeError, "window must be a whole number of seconds"),
    ({"window": True}, TypeError, "window must be a whole number of seconds"),
    ({"window": 10.0}, TypeError, "window must be a whole number of seconds"),
    ({"window": -5}, ValueError, "window must be at least 1 second"),
    ({"ratio": True}, TypeError, "ratio must be a number"),
    ({"ratio": float("nan")}, ValueError, "ratio must be 0 or more and finite"),
    ({"min_per_second": None}, TypeError, "min_per_second must be a number"),
    ({"min_per_second": float("inf")}, ValueError, "min_per_second must be 0 or more and finite"),
]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    BAD_BUDGETS,
    ids=[next(iter(args)) + "=" + repr(next(iter(args.values()))) for args, _, _ in BAD_BUDGETS],
)
def test_bad_retry_budget_arguments_raise(
    args: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RetryBudget(**args)


def test_budget_window_is_kept_as_whole_seconds() -> None:
    budget = RetryBudget(window=30)
    assert budget.window == 30
    assert type(budget.window) is int
    assert RetryBudget(ratio=1, min_per_second=0.5).min_per_second == 0.5  # numbers may be floats
