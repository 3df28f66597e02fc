"""The timing and reporting machinery that bench/'s scripts share.

Each script keeps what it measures (its targets, rows and checks) and its own report; this
module holds what they all do the same way:

- options: `--quick`, `--markdown FILE`, `--repeats`, `--seconds`, `--stat` (`option_parser`,
  `Settings`); a script adds its own options after these;
- cells: one row's zero-argument callable in one column of the table, timed in a bare `for`
  loop, sync or awaited inside one event loop, optionally inside a context manager held while
  timing (`Cell`, `run_cell`, `warm_up`);
- iteration-count calibration and interleaved repeats (`calibrate`, `measure`);
- the report: its first two lines (`environment`, `Settings.describe`), markdown table rows
  (`table_head`, `table_row`, `verdict`), numbers (`fmt_us`, `fmt_ratio`), printing it and
  writing `--markdown FILE` (`finish`);
- Prefect with no server configured and no network (`configure_prefect_env`), a subprocess's
  peak memory (`peak_rss_mb`) and the tail of a log (`log_tail`).

bench/ is not a package: a script imports this as `_timing`, which Python finds because it puts
the script's own directory first on `sys.path`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import itertools
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

MIN_ITERATIONS = 10  # per repeat, unless a script lets its quick run use fewer

Around = Callable[[], Any]  # a factory of a (sync or async) context manager held while timing


# --- options ---------------------------------------------------------------------------------


SECONDS_HELP = "duration of one repeat of a cell (default 0.15, quick 0.01)"


def option_parser(
    description: str, quick_help: str, seconds_help: str = SECONDS_HELP
) -> argparse.ArgumentParser:
    """A parser with the options every script takes (`seconds_help`: what `--seconds` means)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--repeats", type=int, help="repeats per cell (default 9, quick 3)")
    parser.add_argument("--seconds", type=float, help=seconds_help)
    parser.add_argument("--stat", choices=("min", "median"), default="min")
    return parser


@dataclass(frozen=True)
class Settings:
    """How every cell is timed and reported, from the options of `option_parser`."""

    stat: str  # "min" | "median": which of a cell's repeats counts
    repeats: int
    seconds: float  # the duration one repeat of a cell is calibrated to
    min_iterations: int  # calls per repeat, however slow the call
    markdown: str | None  # where to write the report too

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, quick_min_iterations: int = MIN_ITERATIONS
    ) -> Settings:
        return cls(
            stat=args.stat,
            repeats=args.repeats or (3 if args.quick else 9),
            seconds=args.seconds or (0.01 if args.quick else 0.15),
            min_iterations=quick_min_iterations if args.quick else MIN_ITERATIONS,
            markdown=args.markdown,
        )

    def describe(self, *, min_iterations: bool = False) -> str:
        """'min of 9 interleaved repeats of ~0.15 s each per cell': how the cells were timed."""
        at_least = f" (at least {self.min_iterations} calls)" if min_iterations else ""
        return (
            f"{self.stat} of {self.repeats} interleaved repeats of ~{self.seconds:g} s"
            f"{at_least} each per cell"
        )


# --- cells -----------------------------------------------------------------------------------


@dataclass
class Cell:
    """One cell of a script's table: its row's callable, called with no arguments."""

    impl: str  # the row
    column: str
    call: Callable[[], Any]
    is_async: bool  # `call()` returns an awaitable, awaited inside the event loop
    around: Around | None = None
    iterations: int = 0  # calls per repeat, set by `calibrate`
    times: list[int] = field(default_factory=list)  # ns of each repeat

    def ns_per_call(self, stat: str) -> float:
        best = min(self.times) if stat == "min" else statistics.median(self.times)
        return best / self.iterations

    def held(self) -> Any:
        """The context manager the calls run in (a null one when the cell has none)."""
        return self.around() if self.around else contextlib.nullcontext()


CellT = TypeVar("CellT", bound=Cell)


def time_sync(cell: Cell, n: int) -> int:
    fn = cell.call
    with cell.held():
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            fn()
        return time.perf_counter_ns() - start


async def time_async(cell: Cell, n: int) -> int:
    fn = cell.call
    async with cell.held():
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            await fn()
        return time.perf_counter_ns() - start


def run_cell(runner: asyncio.Runner, cell: Cell, n: int) -> int:
    """ns for `n` calls of the cell, the timing loop included (a few ns a call)."""
    if cell.is_async:
        return runner.run(time_async(cell, n))
    return time_sync(cell, n)


def warm_up(runner: asyncio.Runner, cell: Cell, calls: int) -> list[Any]:
    """Call the cell `calls` times, untimed, and return what the calls returned."""

    async def call_async() -> list[Any]:
        async with cell.held():
            return [await cell.call() for _ in range(calls)]

    def call_sync() -> list[Any]:
        with cell.held():
            return [cell.call() for _ in range(calls)]

    return runner.run(call_async()) if cell.is_async else call_sync()


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
    cells: Sequence[CellT],
    runner: asyncio.Runner,
    settings: Settings,
    check: Callable[[asyncio.Runner, CellT], None],
) -> None:
    """Check and calibrate each cell, then time `settings.repeats` repeats of every cell."""
    for cell in cells:
        check(runner, cell)
        calibrate(runner, cell, settings.seconds, settings.min_iterations)
    # Interleave: every repeat times every cell once, so slow spells of a noisy box are shared.
    for _ in range(settings.repeats):
        for cell in cells:
            gc.collect()
            cell.times.append(run_cell(runner, cell, cell.iterations))


# --- report ----------------------------------------------------------------------------------


def versions(dists: Iterable[str]) -> dict[str, str]:
    found = {}
    for dist in dists:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "?"
    return found


def environment(dists: Iterable[str]) -> str:
    """A report's first line: this Python and machine, and the version of each of `dists`."""
    return (
        f"Python {platform.python_version()}"
        f" ({platform.python_implementation()}, {sys.platform}, {os.cpu_count()} CPUs); "
        + ", ".join(f"{k} {v}" for k, v in versions(dists).items())
    )


def table_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table_head(columns: Sequence[str], left: int = 1) -> list[str]:
    """A markdown table's header and rule: the first `left` columns left-aligned, the rest right."""
    rule = ["---"] * left + ["---:"] * (len(columns) - left)
    return [table_row(columns), table_row(rule)]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def fmt_us(us: float) -> str:
    if us < 1:
        return f"{us:.3f} us"
    if us < 100:
        return f"{us:.2f} us"
    if us < 1000:
        return f"{us:.1f} us"
    return f"{us:,.0f} us"


def fmt_ratio(ratio: float) -> str:
    if ratio < 0.1:
        return f"{ratio:.2g}x"
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def finish(text: str, settings: Settings, all_pass: bool, missed: str) -> int:
    """Print the report, write it to `--markdown FILE` too, and say `missed` if a target was.

    The exit status is 0 either way: a report, not a test.
    """
    print(text, end="")
    if settings.markdown:
        with open(settings.markdown, "w", encoding="utf-8") as out:
            out.write(text)
    if not all_pass:
        print(missed)
    return 0


# --- Prefect, processes, logs ----------------------------------------------------------------


def configure_prefect_env(home: str, environ: MutableMapping[str, str] = os.environ) -> None:
    """Settings for a Prefect that needs no server and no network; before `import prefect`.

    `environ` is this process's environment by default, or the one a subprocess will get.
    """
    for name in [name for name in environ if name.startswith("PREFECT_")]:
        del environ[name]  # PREFECT_API_URL, PREFECT_PROFILE, ...: nothing from outside
    environ.update(
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


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (ru_maxrss: KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError:
        return ""
