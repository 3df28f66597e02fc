"""Overhead of reflow's `@retry` next to a hand-written loop and its peers, in one process.

Run it through `bench/run`, which makes the venv with the peers installed:

    bench/run                    # full run, under 2 minutes on a shared 2-core box
    bench/run --quick            # smoke run, a few seconds
    bench/run --markdown FILE    # also write the report (markdown) to FILE

Every implementation wraps the same target and allows 3 attempts with no wait. Two scenarios:

- success: the target returns at once, so this is the cost of the retry machinery's fast path;
- fail-once: the target raises ValueError on every odd call and returns on every even one, so
  each timed call is exactly one failed attempt, one (zero) wait and one successful attempt.

Each is timed sync and async (async: each library's async decorator, the timing loop running
inside one event loop and awaiting each call). A cell is ns per call: the best (min, or
`--stat median`) of several interleaved repeats, each repeat auto-scaled to a fixed duration.
Timing includes the `for` loop (a few ns, see the bare-call row). The garbage collector stays
on, as in a real program: cyclic garbage a library leaves behind is part of its cost.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import _timing
import backoff
import stamina
import stamina.instrumentation
import tenacity

import reflow
from reflow.retry import _clock as reflow_clock

ATTEMPTS = 3
SCENARIOS = ("sync success", "sync fail-once", "async success", "async fail-once")
BASELINE = "hand-written loop"
MISSED = "(some targets missed; the exit status stays 0: this is a report, not a test)"

SyncFn = Callable[[], Any]
AsyncFn = Callable[[], Awaitable[Any]]
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


# --- the targets -----------------------------------------------------------------------------


def make_ok() -> SyncFn:
    def ok() -> int:
        return 1

    return ok


def make_ok_async() -> AsyncFn:
    async def ok() -> int:
        return 1

    return ok


class Counter:
    """How many times a flaky target ran; odd runs raise."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0


def make_flaky(counter: Counter) -> SyncFn:
    def flaky() -> int:
        counter.calls += 1
        if counter.calls & 1:
            raise ValueError("odd call")
        return counter.calls

    return flaky


def make_flaky_async(counter: Counter) -> AsyncFn:
    async def flaky() -> int:
        counter.calls += 1
        if counter.calls & 1:
            raise ValueError("odd call")
        return counter.calls

    return flaky


# --- the implementations ---------------------------------------------------------------------


def hand_loop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The baseline: what one writes by hand, as a decorator like every other row."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except ValueError:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return wrapper


def hand_loop_async(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await fn(*args, **kwargs)
            except ValueError:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return wrapper


def no_retry(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


def reflow_retry() -> Decorator:
    return reflow.retry(attempts=ATTEMPTS, wait=0)


def tenacity_retry() -> Decorator:
    return tenacity.retry(
        stop=tenacity.stop_after_attempt(ATTEMPTS), wait=tenacity.wait_none(), reraise=True
    )


def stamina_retry() -> Decorator:
    return stamina.retry(
        on=ValueError, attempts=ATTEMPTS, wait_initial=0, wait_max=0, wait_jitter=0
    )


def backoff_retry() -> Decorator:
    return backoff.on_exception(backoff.constant, ValueError, max_tries=ATTEMPTS, interval=0)


@dataclass
class Impl:
    name: str
    sync: Decorator | None  # None: the row has no such cell
    async_: Decorator | None
    fail_once: bool = True  # whether the fail-once columns apply


IMPLS = [
    Impl("bare call (no retry)", no_retry, no_retry, fail_once=False),
    Impl(BASELINE, hand_loop, hand_loop_async),
    Impl("reflow", reflow_retry(), reflow_retry()),
    Impl("tenacity", tenacity_retry(), tenacity_retry()),
    Impl("stamina", stamina_retry(), stamina_retry()),
    Impl("backoff", backoff_retry(), backoff_retry()),
]


def prepare_stamina() -> None:
    """Make sure stamina really retries, and retries as quietly as the others.

    stamina can be switched off globally (`set_active(False)`, a testing idiom) or put in
    test mode (`set_testing`), both of which would make it look cheaper than it is. Its default
    instrumentation logs a WARNING on every retry; reflow, tenacity and backoff log nothing at
    the default level, so the hooks are removed to compare retry machinery with retry machinery.
    """
    stamina.set_active(True)
    stamina.set_testing(False)
    stamina.instrumentation.set_on_retry_hooks([])
    if not stamina.is_active() or stamina.is_testing():
        raise SystemExit("stamina is still deactivated or in test mode; its numbers would lie")


# --- cells -----------------------------------------------------------------------------------


@dataclass
class Cell(_timing.Cell):
    """A cell whose column is a scenario; a fail-once one counts its target's runs."""

    counter: Counter | None = None


def build_cells() -> list[Cell]:
    cells = []
    for impl in IMPLS:
        for scenario in SCENARIOS:
            is_async = scenario.startswith("async")
            decorate = impl.async_ if is_async else impl.sync
            fails = scenario.endswith("fail-once")
            if decorate is None or (fails and not impl.fail_once):
                continue
            counter = Counter() if fails else None
            if counter is not None:
                target = make_flaky_async(counter) if is_async else make_flaky(counter)
            else:
                target = make_ok_async() if is_async else make_ok()
            cells.append(Cell(impl.name, scenario, decorate(target), is_async, counter=counter))
    return cells


def check_cell(runner: asyncio.Runner, cell: Cell) -> None:
    """Each call must succeed; a fail-once call must run the target exactly twice."""
    before = cell.counter.calls if cell.counter else 0
    calls = 10
    if any(result is None for result in _timing.warm_up(runner, cell, calls)):
        raise SystemExit(f"{cell.impl} / {cell.column}: the call returned None")
    if cell.counter is not None and cell.counter.calls - before != 2 * calls:
        raise SystemExit(
            f"{cell.impl} / {cell.column}: {calls} calls ran the target "
            f"{cell.counter.calls - before} times, expected {2 * calls}"
        )


# --- do they sleep(0)? -----------------------------------------------------------------------


def probe_sleeps(runner: asyncio.Runner) -> dict[tuple[str, bool], list[float]]:
    """Record the sleeps each implementation asks for in one fail-once call, sync and async."""
    asked: list[float] = []

    def fake_sleep(seconds: float) -> None:
        asked.append(seconds)

    real_asyncio_sleep = asyncio.sleep

    async def fake_async_sleep(seconds: float, result: Any = None) -> Any:
        asked.append(seconds)
        return await real_asyncio_sleep(seconds, result)

    patches: list[tuple[Any, str, Any]] = [
        (time, "sleep", fake_sleep),
        (asyncio, "sleep", fake_async_sleep),
        (reflow_clock, "sleep", fake_sleep),
        (reflow_clock, "async_sleep", fake_async_sleep),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    found: dict[tuple[str, bool], list[float]] = {}
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        for impl in IMPLS:
            if not impl.fail_once:
                continue
            for is_async in (False, True):
                decorate = impl.async_ if is_async else impl.sync
                if decorate is None:
                    continue
                counter = Counter()
                if is_async:
                    runner.run(decorate(make_flaky_async(counter))())
                else:
                    decorate(make_flaky(counter))()
                found[impl.name, is_async] = list(asked)
                asked.clear()
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
    return found


def zero_sleep_cost(runner: asyncio.Runner, settings: _timing.Settings) -> tuple[float, float]:
    """ns per `time.sleep(0)` and per `await asyncio.sleep(0)` on this machine."""
    sync_cell = _timing.Cell("time.sleep(0)", "", functools.partial(time.sleep, 0), False)
    async_cell = _timing.Cell("asyncio.sleep(0)", "", functools.partial(asyncio.sleep, 0), True)
    for cell in (sync_cell, async_cell):
        _timing.calibrate(runner, cell, settings.seconds, settings.min_iterations)
        cell.times = [
            _timing.run_cell(runner, cell, cell.iterations) for _ in range(settings.repeats)
        ]
    return sync_cell.ns_per_call("min"), async_cell.ns_per_call("min")


def describe_sleeps(sleeps: list[float]) -> str:
    if not sleeps:
        return "no sleep call"
    return ", ".join(f"sleep({s:g})" for s in sleeps)


# --- report ----------------------------------------------------------------------------------


def fmt_ns(ns: float) -> str:
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} us"
    return f"{ns:,.0f} ns"


@dataclass
class Target:
    label: str
    numerator: tuple[str, str]  # (impl, "success" | "fail-once")
    denominator: tuple[str, str]
    bound: float
    at_most: bool  # True: ratio <= bound passes; False: ratio >= bound passes


TARGETS = [
    Target("reflow success / hand loop", ("reflow", "success"), (BASELINE, "success"), 2, True),
    Target("backoff / reflow success", ("backoff", "success"), ("reflow", "success"), 5, False),
    Target("tenacity / reflow success", ("tenacity", "success"), ("reflow", "success"), 30, False),
    Target(
        "tenacity / reflow fail-once",
        ("tenacity", "fail-once"),
        ("reflow", "fail-once"),
        10,
        False,
    ),
]


def report(
    cells: list[Cell],
    settings: _timing.Settings,
    sleeps: dict[tuple[str, bool], list[float]],
    zero_sleeps: tuple[float, float],
    wall: float,
) -> tuple[str, bool]:
    ns = {(c.impl, c.column): c.ns_per_call(settings.stat) for c in cells}
    lines = [
        _timing.environment(("reflow", "tenacity", "stamina", "backoff")),
        f"{settings.describe()}; "
        f"{ATTEMPTS} attempts, zero wait; ratio = ns/call / {BASELINE} in the same column",
        "",
        *_timing.table_head(["implementation", *SCENARIOS]),
    ]
    for impl in IMPLS:
        row = [impl.name]
        for scenario in SCENARIOS:
            value = ns.get((impl.name, scenario))
            base = ns.get((BASELINE, scenario))
            if value is None or base is None:
                row.append("n/a")
            else:
                row.append(f"{fmt_ns(value)} ({value / base:.2f}x)")
        lines.append(_timing.table_row(row))

    lines.append("")
    lines.append("Targets:")
    lines.append("")
    lines.extend(_timing.table_head(["ratio", "target", "sync", "async"], left=2))
    all_pass = True
    notes = []
    for target in TARGETS:
        op = "<=" if target.at_most else ">="
        row = [target.label, f"{op} {target.bound:g}x"]
        unslept = []
        for is_async, mode in ((False, "sync"), (True, "async")):
            (top_impl, top_kind), (bottom_impl, bottom_kind) = target.numerator, target.denominator
            top = ns[top_impl, f"{mode} {top_kind}"]
            bottom = ns[bottom_impl, f"{mode} {bottom_kind}"]
            ratio = top / bottom
            ok = ratio <= target.bound if target.at_most else ratio >= target.bound
            all_pass &= ok
            row.append(f"{ratio:.2f}x {_timing.verdict(ok)}")
            if top_kind == "fail-once":
                # The same ratio with the cost of the zero sleeps each side asked for taken out.
                cost = zero_sleeps[is_async]
                top -= cost * len(sleeps.get((top_impl, is_async), []))
                bottom -= cost * len(sleeps.get((bottom_impl, is_async), []))
                unslept.append(f"{mode} {top / bottom:.2f}x")
        lines.append(_timing.table_row(row))
        if unslept:
            notes.append(f"{target.label} without the zero sleeps' cost: " + ", ".join(unslept))
    lines.append("")
    lines.extend(notes)
    lines.append("")
    lines.append("Sleeps asked for in one fail-once call (time.sleep / asyncio.sleep / reflow's):")
    lines.append("")
    for impl in IMPLS:
        if not impl.fail_once:
            continue
        sync_s = describe_sleeps(sleeps.get((impl.name, False), []))
        async_s = describe_sleeps(sleeps.get((impl.name, True), []))
        lines.append(f"- {impl.name}: sync {sync_s}; async {async_s}")
    lines.append("")
    lines.append(
        f"On this machine `time.sleep(0)` alone costs {fmt_ns(zero_sleeps[0])} and "
        f"`await asyncio.sleep(0)` {fmt_ns(zero_sleeps[1])} (min of {settings.repeats})."
    )
    lines.append("")
    lines.append(f"Whole run: {wall:.1f} s.")
    return "\n".join(lines) + "\n", all_pass


def main(argv: list[str] | None = None) -> int:
    parser = _timing.option_parser(__doc__.splitlines()[0], "fast smoke run (a few seconds)")
    settings = _timing.Settings.from_args(parser.parse_args(argv))

    started = time.perf_counter()
    prepare_stamina()
    with asyncio.Runner() as runner:
        sleeps = probe_sleeps(runner)
        cells = build_cells()
        _timing.measure(cells, runner, settings, check_cell)
        zero_sleeps = zero_sleep_cost(runner, settings)
    wall = time.perf_counter() - started
    text, all_pass = report(cells, settings, sleeps, zero_sleeps, wall)
    return _timing.finish(text, settings, all_pass, MISSED)


if __name__ == "__main__":
    sys.exit(main())
