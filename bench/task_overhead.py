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

import argparse
import asyncio
import atexit
import contextlib
import gc
import importlib.metadata
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import reflow

MODES = ("sync", "async")
BASELINE = "bare call"
REFLOW_TASK = "reflow @task"
PREFECT_TASK = "Prefect @task"
PREFECT_HELD = "Prefect @task, client held open"
TARGET_RATIO = 100.0
MIN_ITERATIONS = 10  # per repeat; quick runs use 3
SERVER_LOG = "ephemeral-server.log"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
Around = Callable[[], Any]  # a factory of a (sync or async) context manager held while timing


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
    around: tuple[Around | None, Around | None] = (None, None)  # (sync, async)
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


def configure_prefect_env(home: str) -> None:
    """Settings for a Prefect that needs no server and no network; before `import prefect`."""
    for name in [name for name in os.environ if name.startswith("PREFECT_")]:
        del os.environ[name]  # PREFECT_API_URL, PREFECT_PROFILE, ...: nothing from outside
    os.environ.update(
        {
            "PREFECT_HOME": home,
            "PREFECT_PROFILES_PATH": os.path.join(home, "profiles.toml"),
            # No API URL: Prefect 3 starts a temporary server on 127.0.0.1 when this allows it
            # (alias of PREFECT_SERVER_EPHEMERAL_ENABLED).
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # a slow shared box
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the server would phone home
            "DO_NOT_TRACK": "1",  # and so would the client
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )


def load_prefect() -> PrefectSetup:
    setup = PrefectSetup()
    home = tempfile.TemporaryDirectory(prefix="reflow-bench-prefect-", ignore_cleanup_errors=True)
    # Registered before Prefect registers its server's stop, so it runs after it.
    atexit.register(home.cleanup)
    setup.home = home.name
    configure_prefect_env(home.name)
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


def log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError:
        return ""


# --- cells -----------------------------------------------------------------------------------


@dataclass
class Cell:
    impl: str
    mode: str
    call: Callable[[], Any]
    around: Around | None
    iterations: int = 0
    times: list[int] = field(default_factory=list)
    first_ns: int | None = None

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    def us_per_call(self, stat: str) -> float:
        best = min(self.times) if stat == "min" else statistics.median(self.times)
        return best / self.iterations / 1000


def build_cells(impls: list[Impl]) -> list[Cell]:
    cells = []
    for impl in impls:
        for index, mode in enumerate(MODES):
            fn = impl.decorate(make_add_async() if mode == "async" else make_add())
            cells.append(Cell(impl.name, mode, lambda fn=fn: fn(1, 2), impl.around[index]))
    return cells


def time_sync(cell: Cell, n: int) -> int:
    fn = cell.call
    with cell.around() if cell.around else contextlib.nullcontext():
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            fn()
        return time.perf_counter_ns() - start


async def time_async(cell: Cell, n: int) -> int:
    fn = cell.call
    async with cell.around() if cell.around else contextlib.nullcontext():
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            await fn()
        return time.perf_counter_ns() - start


def run_cell(runner: asyncio.Runner, cell: Cell, n: int) -> int:
    if cell.is_async:
        return runner.run(time_async(cell, n))
    return time_sync(cell, n)


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
        raise SystemExit(f"{cell.impl} / {cell.mode}: add(1, 2) returned {result!r}")


def check_cell(runner: asyncio.Runner, cell: Cell, calls: int = 3) -> None:
    """Warm up: a few calls, each of which must return 3."""

    async def call_async() -> list[Any]:
        async with cell.around() if cell.around else contextlib.nullcontext():
            return [await cell.call() for _ in range(calls)]

    def call_sync() -> list[Any]:
        with cell.around() if cell.around else contextlib.nullcontext():
            return [cell.call() for _ in range(calls)]

    results = runner.run(call_async()) if cell.is_async else call_sync()
    if results != [3] * calls:
        raise SystemExit(f"{cell.impl} / {cell.mode}: add(1, 2) returned {results!r}")


def calibrate(runner: asyncio.Runner, cell: Cell, seconds: float, min_iterations: int) -> None:
    """Pick the iteration count so one repeat of the cell takes about `seconds`."""
    target_ns = seconds * 1e9
    n = 1
    while True:
        elapsed = max(run_cell(runner, cell, n), 1)
        if elapsed >= target_ns / 5 or n >= 10_000_000:
            break
        n *= 10
    cell.iterations = max(min_iterations, round(n * target_ns / elapsed))


def measure(
    cells: list[Cell], runner: asyncio.Runner, repeats: int, seconds: float, min_iterations: int
) -> None:
    for cell in cells:
        check_cell(runner, cell)
        calibrate(runner, cell, seconds, min_iterations)
    # Interleave: every repeat times every cell once, so slow spells of a noisy box are shared.
    for _ in range(repeats):
        for cell in cells:
            gc.collect()
            cell.times.append(run_cell(runner, cell, cell.iterations))


# --- report ----------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("reflow", "prefect", "pydantic", "httpx", "fastapi"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "?"
    return found


def fmt_us(us: float) -> str:
    if us < 1:
        return f"{us:.3f} us"
    if us < 100:
        return f"{us:.2f} us"
    if us < 1000:
        return f"{us:.1f} us"
    return f"{us:,.0f} us"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def fmt_first(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.1f} ms"
    return fmt_us(ns / 1000)


def report(
    cells: list[Cell],
    impls: list[Impl],
    prefect: PrefectSetup,
    stat: str,
    repeats: int,
    seconds: float,
    min_iterations: int,
    wall: float,
) -> tuple[str, bool]:
    us = {(c.impl, c.mode): c.us_per_call(stat) for c in cells}
    first = {(c.impl, c.mode): c.first_ns for c in cells}
    iterations = {(c.impl, c.mode): c.iterations for c in cells}
    lines = []
    info = versions()
    lines.append(
        "Python "
        + info.pop("python")
        + f" ({platform.python_implementation()}, {sys.platform}, {os.cpu_count()} CPUs); "
        + ", ".join(f"{k} {v}" for k, v in info.items())
    )
    lines.append(
        f"{stat} of {repeats} interleaved repeats of ~{seconds:g} s (at least {min_iterations} "
        f"calls) each per cell; ratio = us/call / {BASELINE} in the same column"
    )
    lines.append("")
    lines.append("| implementation | sync | async | first call, sync | first call, async |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for impl in impls:
        row = [impl.name]
        for mode in MODES:
            value, base = us[impl.name, mode], us[BASELINE, mode]
            row.append(f"{fmt_us(value)} ({fmt_ratio(value / base)})")
        for mode in MODES:
            row.append(fmt_first(first[impl.name, mode]) if impl.first_call else "-")
        lines.append("| " + " | ".join(row) + " |")
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
    lines.append("| ratio | target | sync | async |")
    lines.append("| --- | --- | ---: | ---: |")
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
        row.append(f"{ratio:,.0f}x {'PASS' if ok else 'MISS'}")
    lines.append("| " + " | ".join(row) + " |")
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
            each = ", ".join(f"{mode} {fmt_us(overhead(impl.name, mode))}" for mode in MODES)
            lines.append(f"- {impl.name}: {each}")
    if prefect.error:
        lines.append("")
        lines.append(f"Prefect did not run: {prefect.error}")
    lines.append("")
    lines.append(f"Whole run: {wall:.1f} s.")
    return "\n".join(lines) + "\n", all_pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run")
    parser.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--repeats", type=int, help="repeats per cell (default 9, quick 3)")
    parser.add_argument(
        "--seconds", type=float, help="duration of one repeat of a cell (default 0.15, quick 0.01)"
    )
    parser.add_argument("--stat", choices=("min", "median"), default="min")
    parser.add_argument("--no-prefect", action="store_true", help="time the reflow rows only")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    seconds = args.seconds or (0.01 if args.quick else 0.15)
    min_iterations = 3 if args.quick else MIN_ITERATIONS

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
                if tail := log_tail(log):
                    prefect.error += "\n\nLast lines of its server's log:\n\n" + tail
                prefect.impls = []
                impls = REFLOW_IMPLS
                cells = reflow_cells
        measure(cells, runner, repeats, seconds, min_iterations)
    wall = time.perf_counter() - started
    text, all_pass = report(
        cells, impls, prefect, args.stat, repeats, seconds, min_iterations, wall
    )
    print(text, end="")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(text)
    if not all_pass:
        print("(the target missed or could not be measured; the exit status stays 0: a report)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
