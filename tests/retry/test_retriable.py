"""`@retry` and `Retriable`: calls, exhaustion, pass-through, metadata, methods, options, threads.

Tests taking `flavor` run twice, with a sync and with an `async def` function: both paths must
behave the same.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from typing import Any

import pytest

from reflow import Retriable, retry
from reflow.retry import DEFAULT_ATTEMPTS, AttemptState
from reflow.testing import VirtualClock
from tests.retry._support import Flavor, Recorder, Script

# --- calls and exhaustion ---------------------------------------------------------------------


def test_success_on_first_try_calls_once_and_never_sleeps(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script("ok")
    fetch = retry(attempts=3, wait=1)(flavor.function(script))

    assert flavor.call(fetch) == "ok"
    assert script.calls == 1
    assert reflow_clock.waits == []


def test_one_failure_then_success_calls_twice(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError, "ok")
    fetch = retry(attempts=3, wait=1)(flavor.function(script))

    assert flavor.call(fetch) == "ok"
    assert script.calls == 2
    assert reflow_clock.waits == [1]


def test_exhaustion_calls_exactly_the_number_of_attempts(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=4, wait=1)(flavor.function(script))

    with pytest.raises(ValueError, match="failure 4"):
        flavor.call(fetch)
    assert script.calls == 4
    assert reflow_clock.waits == [1, 1, 1]


def test_exhaustion_raises_the_original_exception_object(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=3, wait=1)(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value is script.raised[-1]
    assert type(info.value) is ValueError


def test_exhaustion_adds_a_note_naming_the_attempts(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=3, wait=1)(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    notes = info.value.__notes__
    assert len(notes) == 1
    assert notes[0].startswith("reflow: gave up after 3 attempts")


def test_earlier_failures_get_no_note(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=3, wait=1)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert [hasattr(exc, "__notes__") for exc in script.raised] == [False, False, True]


def test_exception_not_retried_gets_a_not_retried_note(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(on=ConnectionError, wait=1)(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value.__notes__ == [
        f"reflow: not retried: the stop condition {fetch.policy.until!r} holds"
    ]
    assert script.calls == 1


def test_a_single_attempt_policy_says_not_retried(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    fetch = retry(attempts=1)(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value.__notes__ == [
        "reflow: not retried: the stop condition AttemptsExhausted(1) holds"
    ]


def test_exhaustion_note_gives_the_attempts_and_the_time(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    fetch = retry(attempts=3, wait=1)(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value.__notes__ == ["reflow: gave up after 3 attempts in 2.00 s"]


def test_exception_not_retried_after_retries_says_gave_up(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    fetch = retry(on=ConnectionError, wait=1)(flavor.function(Script(ConnectionError, KeyError)))

    with pytest.raises(KeyError) as info:
        flavor.call(fetch)
    assert info.value.__notes__ == ["reflow: gave up after 2 attempts in 1.00 s"]


def test_bare_retry_makes_the_default_number_of_attempts(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == DEFAULT_ATTEMPTS == 5


def test_bare_retry_waits_grow_from_a_tenth_of_a_second_with_jitter(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    fetch = retry(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert len(reflow_clock.waits) == 4
    for retry_number, wait in enumerate(reflow_clock.waits):
        assert 0 <= wait <= 0.1 * 2**retry_number


def test_arguments_are_passed_to_every_attempt(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    seen: list[tuple[Any, ...]] = []
    script = Script(ValueError, "ok")
    inner = flavor.function(script)

    def record(state: AttemptState) -> None:
        seen.append((state.args, state.kwargs))

    fetch = retry(attempts=3, wait=0, before_attempt=record)(inner)
    assert flavor.call(fetch, 1, key="k") == "ok"
    assert seen == [((1,), {"key": "k"}), ((1,), {"key": "k"})]


# --- the `on=` shorthand ----------------------------------------------------------------------


def test_on_retries_the_listed_exceptions(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ConnectionError, ConnectionError, "ok")
    fetch = retry(on=ConnectionError, wait=1)(flavor.function(script))

    assert flavor.call(fetch) == "ok"
    assert script.calls == 3


def test_on_stops_at_once_on_other_exceptions(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(KeyError, "ok")
    fetch = retry(on=(ConnectionError, ValueError), wait=1)(flavor.function(script))

    with pytest.raises(KeyError):
        flavor.call(fetch)
    assert script.calls == 1
    assert reflow_clock.waits == []


def test_on_alone_keeps_the_default_attempts(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(on=ValueError, wait=0)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == DEFAULT_ATTEMPTS


def test_on_accepts_a_predicate(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError("transient"), ValueError("fatal"), "ok")
    fetch = retry(on=lambda exc: "transient" in str(exc), wait=0)(flavor.function(script))

    with pytest.raises(ValueError, match="fatal"):
        flavor.call(fetch)
    assert script.calls == 2


def test_attempts_combines_with_on(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=2, on=ValueError, wait=0)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 2


# --- exceptions that are never retried --------------------------------------------------------

NEVER_RETRIED = [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError]


@pytest.mark.parametrize("exc_type", NEVER_RETRIED, ids=lambda t: t.__name__)
def test_base_exceptions_are_never_retried_or_delayed(
    flavor: Flavor, reflow_clock: VirtualClock, exc_type: type[BaseException]
) -> None:
    script = Script(exc_type, "ok")
    fetch = retry(attempts=5, wait=1)(flavor.function(script))

    with pytest.raises(exc_type):
        flavor.call(fetch)
    assert script.calls == 1
    assert reflow_clock.waits == []


@pytest.mark.parametrize("exc_type", NEVER_RETRIED, ids=lambda t: t.__name__)
def test_base_exceptions_pass_through_a_policy_with_hooks_and_timeout(
    flavor: Flavor, reflow_clock: VirtualClock, exc_type: type[BaseException]
) -> None:
    recorder = Recorder()
    script = Script(exc_type, "ok")
    fetch = retry(attempts=5, wait=1, timeout=5, on_failure=recorder, on_giveup=recorder)(
        flavor.function(script)
    )

    with pytest.raises(exc_type):
        flavor.call(fetch)
    assert script.calls == 1
    assert reflow_clock.waits == []
    assert recorder.events == []


# --- what the Retriable looks like ------------------------------------------------------------


def _documented(x: int) -> int:
    """Doubles x."""
    return 2 * x


def test_retriable_keeps_name_doc_and_wrapped() -> None:
    wrapped = retry(attempts=2)(_documented)

    assert isinstance(wrapped, Retriable)
    assert wrapped.__name__ == "_documented"
    assert wrapped.__qualname__ == "_documented"
    assert wrapped.__doc__ == "Doubles x."
    assert wrapped.__wrapped__ is _documented
    assert wrapped(4) == 8


def test_async_retriable_returns_an_awaitable() -> None:
    async def double(x: int) -> int:
        return 2 * x

    wrapped = retry(attempts=2)(double)
    pending = wrapped(4)
    assert asyncio.iscoroutine(pending)
    assert asyncio.run(pending) == 8


def test_async_retriable_is_a_coroutine_function() -> None:
    async def double(x: int) -> int:
        return 2 * x

    wrapped = retry(attempts=2)(double)
    stacked = retry(attempts=2)(wrapped)
    sync = retry(attempts=2)(_documented)
    if sys.version_info >= (3, 12):
        assert inspect.iscoroutinefunction(wrapped)
        assert inspect.iscoroutinefunction(stacked)
        assert not inspect.iscoroutinefunction(sync)
    else:  # Python 3.11: inspect has no marker for callables; asyncio's check is the one
        assert asyncio.iscoroutinefunction(wrapped)
        assert asyncio.iscoroutinefunction(stacked)
        assert not asyncio.iscoroutinefunction(sync)


def test_repr_names_the_function_and_policy() -> None:
    from reflow.retry import AttemptsExhausted, ExceptionMatches

    wrapped = retry(until=AttemptsExhausted(3) | ~ExceptionMatches(ValueError), wait=2)(_documented)
    text = repr(wrapped)
    assert text.startswith("<Retriable _documented ")
    assert "AttemptsExhausted(3) | ~ExceptionMatches(ValueError)" in text
    assert "waits.fixed(2" in text


class _Client:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    @retry(attempts=3, wait=1)
    def fetch(self, path: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(path)
        return f"{path} from {id(self)}"

    @retry(attempts=3, wait=1)
    async def fetch_async(self, path: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(path)
        return f"{path} from {id(self)}"


def test_retriable_works_as_a_method_with_self_bound(reflow_clock: VirtualClock) -> None:
    client = _Client(failures=1)

    assert client.fetch("/a") == f"/a from {id(client)}"
    assert client.calls == 2


def test_retriable_works_as_an_async_method_with_self_bound(reflow_clock: VirtualClock) -> None:
    client = _Client(failures=2)

    assert asyncio.run(client.fetch_async("/b")) == f"/b from {id(client)}"
    assert client.calls == 3


def test_retriable_accessed_on_the_class_is_the_retriable() -> None:
    assert isinstance(_Client.fetch, Retriable)


def test_retries_stack(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError)
    inner = retry(attempts=2, wait=1)(flavor.function(script))
    outer = retry(attempts=3, wait=5)(inner)

    with pytest.raises(ValueError, match="failure 6"):
        flavor.call(outer)
    assert script.calls == 6
    assert reflow_clock.waits == [1, 5, 1, 5, 1]


# --- with_options -----------------------------------------------------------------------------


def test_with_options_returns_a_new_retriable_with_the_overrides(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    original = retry(attempts=2, wait=1)(flavor.function(script))
    patient = original.with_options(attempts=4)

    assert patient is not original
    assert isinstance(patient, Retriable)
    with pytest.raises(ValueError, match="failure"):
        flavor.call(patient)
    assert script.calls == 4
    assert reflow_clock.waits == [1, 1, 1]


def test_with_options_leaves_the_original_untouched(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    original = retry(attempts=2, wait=1)(flavor.function(script))
    original.with_options(attempts=4, wait=3)

    with pytest.raises(ValueError, match="failure"):
        flavor.call(original)
    assert script.calls == 2
    assert reflow_clock.waits == [1]


def test_with_options_keeps_the_hooks(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    original = retry(attempts=2, wait=0, on_failure=[recorder])(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        original.with_options(attempts=3)()
    assert recorder.phases() == ["on_failure"] * 3


def test_hook_added_to_a_copy_does_not_reach_the_original(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    original = retry(attempts=2, wait=0)(Script(ValueError).step)
    copy = original.with_options()
    copy.on_failure(recorder)

    with pytest.raises(ValueError, match="failure"):
        original()
    assert recorder.events == []


def test_with_options_rejects_an_unknown_option() -> None:
    wrapped = retry(attempts=2)(_documented)

    with pytest.raises(TypeError, match=r"unknown option.*retries"):
        wrapped.with_options(retries=3)  # type: ignore[call-arg]


def test_with_options_validates_at_once() -> None:
    wrapped = retry(attempts=2)(_documented)

    with pytest.raises(ValueError, match="attempts"):
        wrapped.with_options(attempts=0)


# --- concurrency ------------------------------------------------------------------------------


def test_calls_from_many_threads_keep_their_attempts_apart(reflow_clock: VirtualClock) -> None:
    threads = 8
    start_together = threading.Barrier(threads, timeout=10)
    lock = threading.Lock()
    calls = dict.fromkeys(range(threads), 0)
    recorded: list[tuple[str, int, int]] = []

    def record(state: AttemptState) -> None:
        with lock:
            recorded.append((state.phase.value, state.args[0], state.attempt))

    @retry(attempts=threads + 1, wait=0.5, before_attempt=record, on_success=record)
    def work(k: int) -> int:
        """Fails `k` times, then returns `k`; every call's first attempt runs at once."""
        with lock:
            calls[k] += 1
            number = calls[k]
        if number == 1:
            start_together.wait()
        if number <= k:
            raise ValueError(k)
        return k

    results: dict[int, int] = {}

    def run(k: int) -> None:
        results[k] = work(k)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert not start_together.broken
    assert results == {k: k for k in range(threads)}
    for k in range(threads):
        attempts = [n for phase, arg, n in recorded if arg == k and phase == "before_attempt"]
        successes = [n for phase, arg, n in recorded if arg == k and phase == "on_success"]
        assert attempts == list(range(1, k + 2))
        assert successes == [k + 1]


async def test_concurrent_async_calls_keep_their_attempts_apart(
    reflow_clock: VirtualClock,
) -> None:
    calls: dict[int, int] = {}
    recorded: list[tuple[int, int]] = []

    @retry(attempts=10, wait=0.5, on_success=lambda s: recorded.append((s.args[0], s.attempt)))
    async def work(k: int) -> int:
        calls[k] = calls.get(k, 0) + 1
        await asyncio.sleep(0)
        if calls[k] <= k:
            raise ValueError(k)
        return k

    results = await asyncio.gather(*(work(k) for k in range(8)))

    assert results == list(range(8))
    assert sorted(recorded) == [(k, k + 1) for k in range(8)]
