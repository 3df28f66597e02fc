"""`attempting()` / `attempting_async()`: the retry policy around a block of code."""

from __future__ import annotations

import asyncio

import pytest

from reflow import attempting, attempting_async
from reflow.retry import AttemptTimeout
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
