"""`attempting()` / `attempting_async()`: the retry policy around a block of code."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from reflow import attempting, attempting_async
from reflow.retry import AttemptTimeout, timeouts
from reflow.retry.hooks import HOOK_NAMES
from reflow.testing import VirtualClock
from tests.retry._support import FAIL_THEN_SUCCEED_EVENTS, Recorder, Script, spin

# --- sync -------------------------------------------------------------------------------------


def run_block(script: Script, **options: object) -> tuple[object, list[int]]:
    """Run `script.step()` in an attempting() loop; return its value and the attempt numbers."""
    numbers: list[int] = []
    value: object = None
    for attempt in attempting(**options):  # type: ignore[misc]
        with attempt:
            numbers.append(attempt.number)
            value = script.step()
    return value, numbers


def test_block_that_succeeds_runs_once(reflow_clock: VirtualClock) -> None:
    script = Script("ok")

    assert run_block(script, attempts=3, wait=1) == ("ok", [1])
    assert reflow_clock.waits == []


def test_block_is_retried_until_it_succeeds(reflow_clock: VirtualClock) -> None:
    script = Script(ValueError, ValueError, "ok")

    assert run_block(script, attempts=5, wait=2) == ("ok", [1, 2, 3])
    assert reflow_clock.waits == [2, 2]


def test_block_gives_up_with_the_original_exception_and_a_note(
    reflow_clock: VirtualClock,
) -> None:
    script = Script(ValueError)

    with pytest.raises(ValueError, match="failure") as info:
        run_block(script, attempts=3, wait=1)
    assert script.calls == 3
    assert info.value is script.raised[-1]
    assert len(info.value.__notes__) == 1
    assert info.value.__notes__[0].startswith("reflow: gave up after 3 attempts")


def test_block_stops_at_once_on_an_exception_not_retried(reflow_clock: VirtualClock) -> None:
    script = Script(KeyError, "ok")

    with pytest.raises(KeyError):
        run_block(script, on=ValueError, wait=1)
    assert script.calls == 1
    assert reflow_clock.waits == []


def test_block_not_retried_gets_a_not_retried_note(reflow_clock: VirtualClock) -> None:
    def run() -> None:
        for attempt in attempting(on=ValueError, wait=1):
            with attempt:
                raise KeyError("missing")

    with pytest.raises(KeyError) as info:
        run()
    (note,) = info.value.__notes__
    assert note.startswith("reflow: not retried: the stop condition (AttemptsExhausted(5) | ")
    assert note.endswith("ExceptionMatches(ValueError))) holds")


def test_block_hooks_run_in_order(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    hooks = {kind: recorder for kind in HOOK_NAMES}

    run_block(Script(ValueError, "ok"), attempts=3, wait=1, **hooks)
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


def test_loop_body_without_with_attempt_counts_as_a_success(reflow_clock: VirtualClock) -> None:
    rounds = 0
    for _attempt in attempting(attempts=3):
        rounds += 1
        if rounds > 3:  # the loop never ends: fail rather than hang
            break
    assert rounds == 1


@pytest.mark.parametrize(
    "exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit], ids=lambda t: t.__name__
)
def test_block_never_retries_base_exceptions(
    reflow_clock: VirtualClock, exc_type: type[BaseException]
) -> None:
    recorder = Recorder()
    script = Script(exc_type, "ok")

    with pytest.raises(exc_type):
        run_block(script, attempts=5, wait=1, on_failure=recorder)
    assert script.calls == 1
    assert reflow_clock.waits == []
    assert recorder.events == []


def test_block_timeout_interrupts_a_python_loop_and_retries(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    numbers: list[int] = []
    for attempt in attempting(attempts=3, wait=0, timeout=0.05, on_failure=recorder):
        with attempt:
            numbers.append(attempt.number)
            if attempt.number == 1:
                spin()
    assert numbers == [1, 2]
    assert [type(s.exception) for s in recorder.states] == [AttemptTimeout]


def test_block_timeout_raises_attempt_timeout_when_exhausted(reflow_clock: VirtualClock) -> None:
    def run() -> None:
        for attempt in attempting(attempts=2, wait=0, timeout=0.05):
            with attempt:
                spin()

    with pytest.raises(AttemptTimeout, match=r"timed out after 0\.05 s") as info:
        run()
    assert info.value.__notes__[0].startswith("reflow: gave up after 2 attempts")


def test_nested_blocks_each_bound_their_own_attempt(reflow_clock: VirtualClock) -> None:
    inner_numbers: list[int] = []
    inner_failures = Recorder()

    def run() -> None:
        for outer in attempting(attempts=1, timeout=0.05):
            with outer:
                for inner in attempting(attempts=3, wait=0, timeout=5, on_failure=inner_failures):
                    with inner:
                        inner_numbers.append(inner.number)
                        spin()

    with pytest.raises(AttemptTimeout) as info:
        run()
    assert str(info.value) == "attempt timed out after 0.05 s"  # the outer's
    assert inner_numbers == [1]  # the outer's interrupt went straight through the inner loop
    assert inner_failures.events == []


def test_inner_block_timeout_is_retried_by_the_inner_loop(reflow_clock: VirtualClock) -> None:
    inner_failures = Recorder()
    outer_failures = Recorder()
    inner_numbers: list[int] = []
    for outer in attempting(attempts=2, wait=0, timeout=5, on_failure=outer_failures):
        with outer:
            for inner in attempting(attempts=2, wait=0, timeout=0.05, on_failure=inner_failures):
                with inner:
                    inner_numbers.append(inner.number)
                    if inner.number == 1:
                        spin()
    assert inner_numbers == [1, 2]
    assert [type(s.exception) for s in inner_failures.states] == [AttemptTimeout]
    assert outer_failures.events == []


def test_block_swallowing_the_interrupt_still_counts_as_timed_out(
    reflow_clock: VirtualClock,
) -> None:
    swallowed: list[BaseException] = []

    def run() -> None:
        for attempt in attempting(attempts=1, timeout=0.05):
            with attempt:
                try:
                    spin()
                except BaseException as exc:
                    swallowed.append(exc)

    with pytest.raises(AttemptTimeout, match=r"timed out after 0\.05 s"):
        run()
    assert [type(exc) for exc in swallowed] == [timeouts.Interrupt]


@pytest.mark.parametrize("raises", [False, True], ids=["block-returned", "block-raised"])
def test_block_lets_through_an_interrupt_it_did_not_arm(
    reflow_clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, raises: bool
) -> None:
    """An outer timeout's interrupt that lands as the inner block disarms is not the inner's."""
    real_disarm = timeouts.disarm

    def disarm_as_an_outer_interrupt_lands(armed: Any) -> bool:
        real_disarm(armed)
        raise timeouts.Interrupt

    monkeypatch.setattr(timeouts, "disarm", disarm_as_an_outer_interrupt_lands)
    numbers: list[int] = []

    def run() -> None:
        for attempt in attempting(attempts=3, wait=0, timeout=5):
            with attempt:
                numbers.append(attempt.number)
                if raises:
                    raise ConnectionError("reset")  # would be retried, were it not interrupted

    with pytest.raises(timeouts.Interrupt):
        run()
    assert numbers == [1]


# --- async ------------------------------------------------------------------------------------


async def run_block_async(script: Script, **options: object) -> tuple[object, list[int]]:
    numbers: list[int] = []
    value: object = None
    async for attempt in attempting_async(**options):  # type: ignore[misc]
        async with attempt:
            numbers.append(attempt.number)
            await asyncio.sleep(0)
            value = script.step()
    return value, numbers


async def test_async_block_that_succeeds_runs_once(reflow_clock: VirtualClock) -> None:
    assert await run_block_async(Script("ok"), attempts=3, wait=1) == ("ok", [1])
    assert reflow_clock.waits == []


async def test_async_block_is_retried_until_it_succeeds(reflow_clock: VirtualClock) -> None:
    script = Script(ValueError, ValueError, "ok")

    assert await run_block_async(script, attempts=5, wait=2) == ("ok", [1, 2, 3])
    assert reflow_clock.waits == [2, 2]


async def test_async_block_gives_up_with_the_original_exception_and_a_note(
    reflow_clock: VirtualClock,
) -> None:
    script = Script(ValueError)

    with pytest.raises(ValueError, match="failure") as info:
        await run_block_async(script, attempts=3, wait=1)
    assert script.calls == 3
    assert info.value is script.raised[-1]
    assert info.value.__notes__[0].startswith("reflow: gave up after 3 attempts")


async def test_async_block_awaits_async_hooks_in_order(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()

    async def hook(state: object) -> None:
        await asyncio.sleep(0)
        recorder(state)  # type: ignore[arg-type]

    hooks = {kind: hook for kind in HOOK_NAMES}
    await run_block_async(Script(ValueError, "ok"), attempts=3, wait=1, **hooks)
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


@pytest.mark.parametrize(
    "exc_type", [asyncio.CancelledError, KeyboardInterrupt], ids=lambda t: t.__name__
)
async def test_async_block_never_retries_base_exceptions(
    reflow_clock: VirtualClock, exc_type: type[BaseException]
) -> None:
    script = Script(exc_type, "ok")

    with pytest.raises(exc_type):
        await run_block_async(script, attempts=5, wait=1)
    assert script.calls == 1
    assert reflow_clock.waits == []


async def test_async_block_timeout_cancels_the_attempt_and_retries(
    reflow_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    numbers: list[int] = []
    async for attempt in attempting_async(attempts=3, wait=0, timeout=0.05, on_failure=recorder):
        async with attempt:
            numbers.append(attempt.number)
            if attempt.number == 1:
                await asyncio.Event().wait()
    assert numbers == [1, 2]
    assert [type(s.exception) for s in recorder.states] == [AttemptTimeout]


async def test_async_block_timeout_raises_attempt_timeout_when_exhausted(
    reflow_clock: VirtualClock,
) -> None:
    async def run() -> None:
        async for attempt in attempting_async(attempts=2, wait=0, timeout=0.05):
            async with attempt:
                await asyncio.Event().wait()

    with pytest.raises(AttemptTimeout) as info:
        await run()
    assert info.value.__notes__[0].startswith("reflow: gave up after 2 attempts")


async def test_async_block_that_swallows_its_cancellation_counts_as_timed_out(
    reflow_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    numbers: list[int] = []
    async for attempt in attempting_async(attempts=3, wait=0, timeout=0.05, on_failure=recorder):
        async with attempt:
            numbers.append(attempt.number)
            if attempt.number == 1:
                # Swallowed: the block ends normally, but after its time was up.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
    assert numbers == [1, 2]
    assert [type(s.exception) for s in recorder.states] == [AttemptTimeout]


async def test_async_block_swallowing_cancellation_raises_attempt_timeout_when_exhausted(
    reflow_clock: VirtualClock,
) -> None:
    async def run() -> None:
        async for attempt in attempting_async(attempts=1, timeout=0.05):
            async with attempt:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()

    with pytest.raises(AttemptTimeout) as info:
        await run()
    assert str(info.value) == "attempt timed out after 0.05 s"
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
