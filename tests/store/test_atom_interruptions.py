"""A kept atoms run stopped at every one of its state changes, then resumed, ends as an
uninterrupted run does, and does what it did only once.

An events subscriber raising KeyboardInterrupt stops the engine at the k-th atom state change,
before the store records that change (the subscriber comes first): the store then holds what a
process killed at that instant would have left, once its writer had caught up. For every k,
the resumed run returns (or raises) what the uninterrupted run does, and the side effects of
the two processes together are the uninterrupted run's, with at most the step in progress at
the interruption done twice. Flows cover retries, nested scopes handing REVERT up, ForEach,
REVERT_ALL and `defer_reverts`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reflow import events
from reflow.atoms import (
    AlwaysRevert,
    AlwaysRevertAll,
    ForEach,
    FunctorTask,
    LinearFlow,
    RemoteFailure,
    Times,
    resume,
    run,
)

Log = list[str]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return tmp_path / "home"


def step(
    log: Log, name: str, fails: Callable[[dict[str, Any]], bool] = lambda kw: False, *needs: str
) -> FunctorTask:
    """Logs `x:name` when it runs, `r:name` when reverted; fails when `fails(arguments)`."""

    def work(**kwargs: Any) -> str:
        log.append(f"x:{name}")
        if fails(kwargs):
            raise TimeoutError(f"{name} timed out")
        return name

    return FunctorTask(work, name=name, requires=needs, revert=lambda: log.append(f"r:{name}"))


def reverted_all(log: Log) -> LinearFlow:
    return LinearFlow("plain").add(
        step(log, "a"), step(log, "b"), step(log, "c"), step(log, "d", lambda kw: True)
    )


def checkout(log: Log) -> LinearFlow:
    payment = LinearFlow("payment", retry=AlwaysRevert(name="pay-reverts")).add(
        step(log, "authorize"), step(log, "pay", lambda kw: kw["attempt"] == 1, "attempt")
    )
    order = LinearFlow("order", retry=Times(2, name="twice", provides="attempt"))
    return order.add(step(log, "reserve"), payment, step(log, "ship"))


def exhausted(log: Log) -> LinearFlow:
    flaky = LinearFlow("flaky", retry=Times(3, name="thrice", provides="attempt"))
    return flaky.add(step(log, "a"), step(log, "b", lambda kw: True, "attempt"))


def letters(log: Log) -> LinearFlow:
    inner = LinearFlow("f2", retry=ForEach(["a", "b", "c"], name="letters", provides="letter"))
    inner.add(
        step(log, "t2", lambda kw: kw["letter"] == "a", "letter"),
        step(log, "t3", lambda kw: kw["letter"] == "b", "letter"),
    )
    return LinearFlow("f1").add(step(log, "t1"), inner, step(log, "t4"))


def revert_all(log: Log) -> LinearFlow:
    payment = LinearFlow("payment", retry=AlwaysRevertAll(name="pay-reverts-all")).add(
        step(log, "authorize"), step(log, "pay", lambda kw: True)
    )
    order = LinearFlow("order", retry=Times(2, name="twice"))
    return order.add(step(log, "reserve"), payment, step(log, "ship"))


def deferred(log: Log) -> LinearFlow:
    mirrors = ForEach(["eu", "us"], name="mirrors", provides="mirror")
    upload = LinearFlow("upload", retry=mirrors).add(step(log, "upload", lambda kw: True, "mirror"))
    return LinearFlow("publish").add(step(log, "bucket"), upload)


FLOWS: list[tuple[Callable[[Log], LinearFlow], dict[str, Any]]] = [
    (reverted_all, {}),
    (checkout, {}),
    (exhausted, {}),
    (letters, {}),
    (revert_all, {}),
    (deferred, {"defer_reverts": True}),
]


class StopAt:
    """Interrupts the run at its k-th atom state change (counting from 0)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen = 0

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.StateChange):
            self.seen += 1
            if self.seen - 1 == self.k:
                raise KeyboardInterrupt


def outcome(call: Callable[[], dict[str, Any]]) -> tuple[str, object]:
    """("ok", the store) or ("failed", the error's message), whichever process raised it."""
    try:
        return "ok", call()
    except Exception as exc:
        return "failed", exc.failure.exception_str if isinstance(exc, RemoteFailure) else str(exc)


@pytest.mark.parametrize(("make", "options"), FLOWS, ids=[f.__name__ for f, _ in FLOWS])
def test_a_run_stopped_at_any_state_change_resumes_to_the_same_end(
    make: Callable[[Log], LinearFlow], options: dict[str, Any], tmp_path: Path
) -> None:
    db = str(tmp_path / "runs.db")
    expected: Log = []
    counter = StopAt(-1)
    with events.subscribe(counter):
        want = outcome(lambda: run(make(expected), **options))

    for k in range(counter.seen):
        before: Log = []
        with events.subscribe(StopAt(k)), pytest.raises(KeyboardInterrupt):
            run(make(before), runs=db, run_id=f"run-{k}", **options)
        after: Log = []

        got = outcome(lambda: resume(f"run-{k}", make(after), runs=db))  # noqa: B023

        assert got == want, f"stopped at state change {k}"
        assert before == expected[: len(before)], f"stopped at state change {k}"
        redone = expected[len(before) - 1 :] if before else None  # the step in progress
        assert after in (expected[len(before) :], redone), f"stopped at state change {k}"


def test_a_run_stopped_twice_resumes_to_the_same_end(tmp_path: Path) -> None:
    """Stopped during the run, then again during its resume, then resumed."""
    db = str(tmp_path / "runs.db")
    want = outcome(lambda: run(checkout([])))
    for k in range(0, 40, 7):
        for j in range(0, 30, 5):
            run_id = f"run-{k}-{j}"
            with events.subscribe(StopAt(k)), pytest.raises(KeyboardInterrupt):
                run(checkout([]), runs=db, run_id=run_id)
            try:
                with events.subscribe(StopAt(j)):
                    got = outcome(lambda: resume(run_id, checkout([]), runs=db))  # noqa: B023
            except KeyboardInterrupt:
                got = outcome(lambda: resume(run_id, checkout([]), runs=db))  # noqa: B023
            assert got == want, f"stopped at {k}, then at {j}"
