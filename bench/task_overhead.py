"""Overhead of calling a reflow `@task` next to a bare call and a Prefect 3 `@task`, in one process.

Run it through `bench/run`, which makes the venv with Prefect installed:

    bench/run task                    # full run, under 2 minutes on a shared 2-core box
    bench/run task --quick            # smoke run (most of it is Prefect's server start)
    bench/run task --markdown FILE    # also write the report (markdown) to FILE

Every row wraps the same trivial target, `add(x, y) -> x + y`, and is called as `f(1, 2)`
outside any flow: a reflow task runs at once, and so does a Prefect 3 task (it runs its task
engine). Each row is timed sync and async (async: an `async def` target, awaited inside one
event loop). A cell is microseconds per call: the best (min, or `--stat median`) of several
interleaved repeats, each repeat auto-scaled to a fixed duration but never fewer than a few
calls, so Prefect's millisecond calls get few iterations. The first call of each row is timed
on its own and left out of the repeats (Prefect's first call starts its server).

Prefect runs with no server configured and no network: `PREFECT_API_URL` unset, ephemeral mode
allowed, `PREFECT_HOME` in a temporary directory, analytics off. In Prefect 3 that means its
first call starts a temporary API server in a subprocess on 127.0.0.1 (SQLite in the temporary
`PREFECT_HOME`); the server's output goes to a log file there. Its tasks are made with
`cache_policy=NO_CACHE, persist_result=False`, so no call reads or writes a result.

The target: Prefect's per-call overhead is at least 100 times reflow `@task`'s, where the
overhead of a row is its time minus the bare call's in the same column.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import _timing

import reflow

MODES = ("sync", "async")
BASELINE = "bare call"
REFLOW_TASK = "reflow @task"
PREFECT_TASK = "Prefect @task"
PREFECT_HELD = "Prefect @task, client held open"
TARGET_RATIO = 100.0
QUICK_MIN_ITERATIONS = 3  # per repeat; full runs use _timing.MIN_ITERATIONS
SERVER_LOG = "ephemeral-server.log"
MISSED = "(the target missed or could not be measured; the exit status stays 0: a report)"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


# --- the target ------------------------------------------------------------------------------


def make_add() -> Callable[[int, int], int]:
    def add(x: int, y: int) -> int:
        return x + y

    return add


def make_add_async() -> Callable[[int, int], Awaitable[int]]:
    async def add(x: int, y: int) -> int:
        return x + y

    return add


# --- reflow ----------------------------------------------------------------------------------


def no_wrapping(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


@dataclass
class Impl:
    name: str
    decorate: Decorator
    around: tuple[_timing.Around | None, _timing.Around | None] = (None, None)  # (sync, async)
    first_call: bool = True  # whether its first call is worth its own column


REFLOW_IMPLS = [
    Impl(BASELINE, no_wrapping),
    Impl("reflow.retry(attempts=3, wait=0)", reflow.retry(attempts=3, wait=0)),
    Impl(REFLOW_TASK, reflow.task),
    Impl("reflow @task(retries=2)", reflow.task(retries=2)),
]


# --- Prefect, with no server and no network --------------------------------------------------


@dataclass
class PrefectSetup:
    impls: list[Impl] = field(default_factory=list)
    import_seconds: float = 0.0
    home: str = ""
    error: str | None = None  # why Prefect could not run, when it could not


def load_prefect() -> PrefectSetup:
    setup = PrefectSetup()
    home = tempfile.TemporaryDirectory(prefix="reflow-bench-prefect-", ignore_cleanup_errors=True)
    # Registered before Prefect registers its server's stop, so it runs after it.
    atexit.register(home.cleanup)
    setup.home = home.name
    _timing.configure_prefect_env(home.name)
    started = time.perf_counter()
    try:
        import prefect
        from prefect.cache_policies import NO_CACHE
        from prefect.context import AsyncClientContext, SyncClientContext
    except Exception as error:  # an import that fails here fails for a reason worth reporting
        setup.error = f"import prefect failed: {type(error).__name__}: {error}"
        return setup
    setup.import_seconds = time.perf_counter() - started

    def prefect_task(fn: Callable[..., Any]) -> Callable[..., Any]:
        return prefect.task(cache_policy=NO_CACHE, persist_result=False)(fn)

    setup.impls = [
        Impl(PREFECT_TASK, prefect_task),
        # What a flow gives its tasks: one API client for the whole run, not one per call.
        Impl(
            PREFECT_HELD,
            prefect_task,
            around=(SyncClientContext.get_or_create, AsyncClientContext.get_or_create),
            first_call=False,
        ),
    ]
    return setup


@contextlib.contextmanager
def stderr_to(path: str) -> Iterator[None]:
    """Point file descriptor 2 at `path`, so a subprocess started meanwhile writes there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


# --- cells -----------------------------------------------------------------------------------


@dataclass
class Cell(_timing.Cell):
    """A cell whose column is a mode, sync or async, and whose first call is timed apart."""

    first_ns: int | None = None

    def us_per_call(self, stat: str) -> float:
        return self.ns_per_call(stat) / 1000


def build_cells(impls: list[Impl]) -> list[Cell]:
    cells = []
    for impl in impls:
        for index, mode in enumerate(MODES):
            is_async = mode == "async"
            fn = impl.decorate(make_add_async() if is_async else make_add())
            around = impl.around[index]
            cells.append(Cell(impl.name, mode, lambda fn=fn: fn(1, 2), is_async, around))
    return cells


def first_call(runner: asyncio.Runner, cell: Cell) -> None:
    """Time the very first call of a freshly decorated function; it must return 3.

    An async first call is timed inside the event loop, like the repeats: `runner.run`'s own
    cost stays out of it.
    """

    async def timed_async() -> tuple[int, Any]:
        start = time.perf_counter_ns()
        result = await cell.call()
        return time.perf_counter_ns() - start, result

    if cell.is_async:
        cell.first_ns, result = runner.run(timed_async())
    else:
        start = time.perf_counter_ns()
        result = cell.call()
        cell.first_ns = time.perf_counter_ns() - start
    if result != 3:
        raise SystemExit(f"{cell.impl} / {cell.column}: add(1, 2) returned {result!r}")


def check_cell(runner: asyncio.Runner, cell: Cell, calls: int = 3) -> None:
    """Warm up: a few calls, each of which must return 3."""
    results = _timing.warm_up(runner, cell, calls)
    if results != [3] * calls:
        raise SystemExit(f"{cell.impl} / {cell.column}: add(1, 2) returned {results!r}")


# --- report ----------------------------------------------------------------------------------


def fmt_first(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.1f} ms"
    return _timing.fmt_us(ns / 1000)


def report(
    cells: list[Cell],
    impls: list[Impl],
    prefect: PrefectSetup,
    settings: _timing.Settings,
    wall: float,
) -> tuple[str, bool]:
    us = {(c.impl, c.column): c.us_per_call(settings.stat) for c in cells}
    first = {(c.impl, c.column): c.first_ns for c in cells}
    iterations = {(c.impl, c.column): c.iterations for c in cells}
    lines = [
        _timing.environment(("reflow", "prefect", "pydantic", "httpx", "fastapi")),
        f"{settings.describe(min_iterations=True)}; "
        f"ratio = us/call / {BASELINE} in the same column",
        "",
        *_timing.table_head(
            ["implementation", "sync", "async", "first call, sync", "first call, async"]
        ),
    ]
    for impl in impls:
        row = [impl.name]
        for mode in MODES:
            value, base = us[impl.name, mode], us[BASELINE, mode]
            row.append(f"{_timing.fmt_us(value)} ({_timing.fmt_ratio(value / base)})")
        for mode in MODES:
            row.append(fmt_first(first[impl.name, mode]) if impl.first_call else "-")
        lines.append(_timing.table_row(row))
    lines.append("")
    prefect_iterations = sorted(
        {n for (name, _), n in iterations.items() if name.startswith("Prefect")}
    )
    if prefect_iterations:
        lines.append(
            "Prefect cells ran "
            + "/".join(map(str, prefect_iterations))
            + f" calls per repeat; `import prefect` took {prefect.import_seconds:.2f} s. "
            "Prefect's first sync call starts its ephemeral API server."
        )
        lines.append("")

    lines.append("Target (overhead = us/call minus the bare call's, same column):")
    lines.append("")
    lines.extend(_timing.table_head(["ratio", "target", "sync", "async"], left=2))
    all_pass = True

    def overhead(name: str, mode: str) -> float:
        return us[name, mode] - us[BASELINE, mode]

    row = [f"{PREFECT_TASK} / {REFLOW_TASK} overhead", f">= {TARGET_RATIO:g}x"]
    for mode in MODES:
        if (PREFECT_TASK, mode) not in us:
            row.append("n/a (Prefect did not run)")
            all_pass = False
            continue
        ratio = overhead(PREFECT_TASK, mode) / overhead(REFLOW_TASK, mode)
        ok = ratio >= TARGET_RATIO
        all_pass &= ok
        row.append(f"{ratio:,.0f}x {_timing.verdict(ok)}")
    lines.append(_timing.table_row(row))
    lines.append("")
    lines.append("For context (not targets), overhead ratios in the same run:")
    lines.append("")
    context = [
        (PREFECT_HELD, REFLOW_TASK),
        (PREFECT_TASK, "reflow @task(retries=2)"),
        (REFLOW_TASK, "reflow.retry(attempts=3, wait=0)"),
    ]
    for top, bottom in context:
        if (top, "sync") not in us or (bottom, "sync") not in us:
            continue
        ratios = [f"{mode} {overhead(top, mode) / overhead(bottom, mode):,.1f}x" for mode in MODES]
        lines.append(f"- {top} / {bottom}: " + ", ".join(ratios))
    lines.append("")
    lines.append("Overhead per call (us/call minus the bare call's):")
    lines.append("")
    for impl in impls:
        if impl.name != BASELINE:
            each = ", ".join(
                f"{mode} {_timing.fmt_us(overhead(impl.name, mode))}" for mode in MODES
            )
            lines.append(f"- {impl.name}: {each}")
    if prefect.error:
        lines.append("")
        lines.append(f"Prefect did not run: {prefect.error}")
    lines.append("")
    lines.append(f"Whole run: {wall:.1f} s.")
    return "\n".join(lines) + "\n", all_pass


def main(argv: list[str] | None = None) -> int:
    parser = _timing.option_parser(__doc__.splitlines()[0], "fast smoke run")
    parser.add_argument("--no-prefect", action="store_true", help="time the reflow rows only")
    args = parser.parse_args(argv)
    settings = _timing.Settings.from_args(args, quick_min_iterations=QUICK_MIN_ITERATIONS)

    started = time.perf_counter()
    prefect = PrefectSetup(error="left out (--no-prefect)") if args.no_prefect else load_prefect()
    impls = REFLOW_IMPLS + prefect.impls
    with asyncio.Runner() as runner:
        cells = build_cells(impls)
        reflow_cells = [c for c in cells if not c.impl.startswith("Prefect")]
        for cell in reflow_cells:
            first_call(runner, cell)
        if prefect.impls:
            log = os.path.join(prefect.home, SERVER_LOG)
            try:
                with stderr_to(log):  # the server subprocess inherits this stderr
                    for cell in cells:
                        if cell.impl == PREFECT_TASK:
                            first_call(runner, cell)
            except Exception as error:
                prefect.error = f"its first call raised {type(error).__name__}: {error}"
                if tail := _timing.log_tail(log):
                    prefect.error += "\n\nLast lines of its server's log:\n\n" + tail
                prefect.impls = []
                impls = REFLOW_IMPLS
                cells = reflow_cells
        _timing.measure(cells, runner, settings, check_cell)
    wall = time.perf_counter() - started
    text, all_pass = report(cells, impls, prefect, settings, wall)
    return _timing.finish(text, settings, all_pass, MISSED)


if __name__ == "__main__":
    sys.exit(main())
