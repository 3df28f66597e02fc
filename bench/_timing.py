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
  peak memory (`peak_rss_mb`) and the tail of a log (`log_tail`);
- for the scripts that run each (framework, workload) cell in a subprocess of its own
  (flow_overhead.py, atoms_overhead.py): their options (`cell_option_parser`, `cell_settings`,
  `selected`), the child's side (`Impl`, `NotApplicable`, `run_one`, `timed_runs`, its
  `--one FRAMEWORK WORKLOAD` entry `child_main`), the parent's (`CellResult`,
  `run_cell_process`, `print_progress`, `WholeRun`) and the report's shared parts
  (`describe_cells`, `result_row`, `ratio_of`, `Target`, `targets_table`, `framework_notes`).

bench/ is not a package: a script imports this as `_timing`, which Python finds because it puts
the script's own directory first on `sys.path`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import importlib.metadata
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
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


# --- a cell per subprocess (flow_overhead.py, atoms_overhead.py) -----------------------------
# The parent runs each (framework, workload) cell as this script again with the hidden options
# `--one FRAMEWORK WORKLOAD --n N`; the child sets the framework up, warms up, times whole runs
# of the workload and prints what it found as one JSON line after `RESULT_MARK`.

RESULT_MARK = "BENCH-CELL-RESULT "
MISSED_TARGETS = "(some targets missed or could not be measured; the exit status stays 0: a report)"
ImplT = TypeVar("ImplT", bound="Impl")


class NotApplicable(Exception):
    """The framework has no way to run this workload as asked."""


class Impl:
    """A framework, set up in a cell's subprocess; a script's subclass runs its workloads."""

    note = ""  # what the report should know about how it ran

    def close(self) -> None:
        pass


def first_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def cell_option_parser(
    description: str,
    quick_help: str,
    frameworks: Iterable[str],
    workloads: Iterable[str],
    full_seconds: float,
    quick_seconds: float,
) -> argparse.ArgumentParser:
    """`option_parser`, `--frameworks`, `--workloads` and the hidden `--one` and `--n`."""
    parser = option_parser(
        description,
        quick_help,
        seconds_help=(
            f"a cell's timed runs stop once they took this long (default {full_seconds:g}, "
            f"quick {quick_seconds:g})"
        ),
    )
    parser.add_argument(
        "--frameworks", metavar="A,B", help=f"only these, of: {', '.join(frameworks)}"
    )
    parser.add_argument(
        "--workloads", metavar="A,B", help=f"only these, of: {', '.join(workloads)}"
    )
    # Hidden: what the parent runs in its subprocesses.
    parser.add_argument("--one", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    return parser


def cell_settings(args: argparse.Namespace, full_seconds: float, quick_seconds: float) -> Settings:
    """The parent's settings: `--seconds` is the time budget of a cell's timed runs."""
    settings = Settings.from_args(args, quick_min_iterations=1)
    if args.seconds is None:
        settings = dataclasses.replace(
            settings, seconds=quick_seconds if args.quick else full_seconds, min_iterations=1
        )
    return settings


def selected(
    args: argparse.Namespace, frameworks: Sequence[str], workloads: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The framework keys and workloads that `--frameworks` and `--workloads` asked for."""
    keys = args.frameworks.split(",") if args.frameworks else list(frameworks)
    chosen = args.workloads.split(",") if args.workloads else list(workloads)
    unknown = [k for k in keys if k not in frameworks] + [w for w in chosen if w not in workloads]
    if unknown:
        raise SystemExit(
            f"unknown: {', '.join(unknown)}; frameworks: {', '.join(frameworks)}; "
            f"workloads: {', '.join(workloads)}"
        )
    return keys, chosen


# --- the child: one cell ---------------------------------------------------------------------


def timed_runs(
    fn: Callable[[int], Any],
    check: Callable[[int, Any], None],
    n: int,
    repeats: int,
    seconds: float,
    warm_up_n: int,
    reset: Callable[[], None],
) -> Iterator[int]:
    """One untimed, checked run of `warm_up_n` elements, then the ns of each timed run of n.

    Each result is checked; the runs stop after `repeats`, or once they took `seconds`.
    `reset` comes before every run, the warm-up's included.
    """
    warm = min(n, warm_up_n)
    reset()
    check(warm, fn(warm))
    spent = 0.0
    for _ in range(repeats):
        reset()
        start = time.perf_counter_ns()
        result = fn(n)
        elapsed = time.perf_counter_ns() - start
        check(n, result)
        yield elapsed
        spent += elapsed / 1e9
        if spent >= seconds:
            break


def run_one(
    setup: Callable[[], ImplT],
    workload: Callable[[ImplT], Callable[[int], Any]],
    check: Callable[[int, Any], None],
    n: int,
    repeats: int,
    seconds: float,
    warm_up_n: int,
    *,
    reset: Callable[[], None] = lambda: None,
    record: Callable[[ImplT], dict[str, Any]] | None = None,
    tracebacks: bool = False,
) -> dict[str, Any]:
    """Set up, warm up and time one cell (see `timed_runs`): what the parent reports.

    Import and setup are timed apart, and the peak RSS read after them and at the end.
    `record(impl)`, after each timed run, gives more figures of that run: each is appended to
    a list under its name. With `tracebacks`, an error's traceback goes to stderr (the log).
    """
    out: dict[str, Any] = {"n": n, "times_ns": [], "error": None, "na": None, "note": ""}
    started = time.perf_counter()
    try:
        impl = setup()
    except Exception as error:
        if tracebacks:
            traceback.print_exc()
        out["error"] = f"unavailable: {first_line(error)}"
        out["rss_peak_mb"] = peak_rss_mb()
        return out
    out["setup_s"] = time.perf_counter() - started
    out["rss_setup_mb"] = peak_rss_mb()
    out["note"] = impl.note
    try:
        for elapsed in timed_runs(workload(impl), check, n, repeats, seconds, warm_up_n, reset):
            out["times_ns"].append(elapsed)
            for name, value in (record(impl) if record else {}).items():
                out.setdefault(name, []).append(value)
    except NotApplicable as reason:
        out["na"] = str(reason)
    except Exception as error:
        if tracebacks:
            traceback.print_exc()
        out["error"] = first_line(error)
    finally:
        with contextlib.suppress(Exception):
            impl.close()
    out["rss_peak_mb"] = peak_rss_mb()
    return out


def child_main(
    args: argparse.Namespace,
    measure: Callable[[str, str, int, int, float], dict[str, Any]],
    full_n: dict[str, int],
    full_seconds: float,
) -> int:
    """`--one FRAMEWORK WORKLOAD`: `measure(key, workload, n, repeats, seconds)`, printed."""
    key, workload = args.one
    n = args.n or full_n[workload]
    out = measure(key, workload, n, args.repeats or 3, args.seconds or full_seconds)
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# --- the parent: every cell, then the report -------------------------------------------------


@dataclass
class CellResult:
    """What one cell's subprocess found (or why it found nothing)."""

    framework: Any  # the script's description of the framework: `.key` names it for `--one`
    workload: str
    n: int
    times_ns: list[int] = field(default_factory=list)
    error: str | None = None
    na: str | None = None  # why the framework cannot run the workload (`NotApplicable`)
    note: str = ""
    setup_s: float | None = None
    rss_setup_mb: float | None = None
    rss_peak_mb: float | None = None
    wall_s: float = 0.0  # the subprocess's, all told

    def us_per_unit(self, stat: str) -> float | None:
        """us per task (or atom, ...): the run that counts divided by n; None if none ran."""
        if not self.times_ns or self.error or self.na:
            return None
        best = min(self.times_ns) if stat == "min" else statistics.median(self.times_ns)
        return best / 1000 / self.n


ResultT = TypeVar("ResultT", bound=CellResult)


def run_cell_process(
    script: str,
    result: ResultT,
    repeats: int,
    seconds: float,
    logs: str,
    timeout: float,
    env: dict[str, str] | None = None,
) -> ResultT:
    """Run `result`'s cell as `script --one ...` in a subprocess; fill `result` in from it.

    The subprocess's stderr goes to a log in `logs`, whose tail an error shows.
    """
    key, workload = result.framework.key, result.workload
    log = os.path.join(logs, f"{key}-{workload}.log")
    command = [sys.executable, os.path.abspath(script), "--one", key, workload]
    command += ["--n", str(result.n), "--repeats", str(repeats), "--seconds", str(seconds)]
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        try:
            done = subprocess.run(
                command,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result.error = f"timed out after {timeout:g} s"
            return result
        finally:
            result.wall_s = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        tail = log_tail(log, 5).strip().replace("\n", " / ")
        result.error = f"subprocess exited {done.returncode} with no result: {tail[-400:]}"
        return result
    out = json.loads(lines[-1][len(RESULT_MARK) :])
    names = {f.name for f in dataclasses.fields(result)} - {"framework", "workload", "n", "wall_s"}
    for name in names & out.keys():
        setattr(result, name, out[name])
    if result.error and not result.error.startswith("unavailable"):
        tail = log_tail(log, 3).strip().replace("\n", " / ")
        if tail:
            result.error += f" (stderr: {tail[-300:]})"
    return result


def print_progress(script: str, result: CellResult, show_error: bool = False) -> None:
    """A cell's line on stderr: its time all told and each timed run's."""
    runs = ", ".join(f"{t / 1e9:.2f}" for t in result.times_ns)
    error = f"; error: {result.error}" if show_error and result.error else ""
    print(
        f"bench/{script}: {result.framework.key} {result.workload} (n={result.n:,}): "
        f"{result.wall_s:.1f} s (timed runs, s: {runs or '-'}){error}",
        file=sys.stderr,
    )


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


class WholeRun:
    """The wall time and load average of a whole run, for a report's last line."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.load_at_start = load_average()

    def summary(self) -> str:
        wall = time.perf_counter() - self.started
        load = f"{self.load_at_start} at the start, {load_average()} at the end"
        return f"Whole run: {wall:.1f} s; load average (1 min): {load}."


def describe_cells(settings: Settings, warm_up: str, capped: str = "") -> str:
    """How the cells were timed, up to the warm-up (`warm_up`: "10 atoms")."""
    return (
        f"one fresh subprocess per cell; {settings.stat} of up to {settings.repeats} timed runs "
        f"of the whole workload per cell (fewer once its runs took {settings.seconds:g} s"
        f"{capped}), after one untimed run of {warm_up}"
    )


def fmt_mb(mb: float | None) -> str:
    return "-" if mb is None else f"{mb:,.0f} MB"


def result_row(
    result: CellResult, label: str, stat: str, ratio: float | None, middle: Sequence[str] = ()
) -> list[str]:
    """A cell's table row: label, n, us, ratio, `middle` (a script's own columns), peak RSS,
    RSS after setup, runs, import + setup; with its error (or n/a) instead of us if it has no
    figure (and "-" in the rest of the figures' columns)."""
    us = result.us_per_unit(stat)
    if us is None:
        text = f"n/a: {result.na}" if result.na else result.error or "no runs"
        figures = [text, "-", *["-" for _ in middle]]
        setup = "-"
    else:
        figures = [fmt_us(us), "-" if ratio is None else fmt_ratio(ratio), *middle]
        setup = "-" if result.setup_s is None else f"{result.setup_s:.2f} s"
    return [
        label,
        f"{result.n:,}",
        *figures,
        fmt_mb(result.rss_peak_mb),
        fmt_mb(result.rss_setup_mb),
        str(len(result.times_ns)),
        setup,
    ]


def result_table(
    title: str, unit: str, middle: Sequence[str], setup: str, rows: Iterable[list[str]]
) -> list[str]:
    """A workload's heading and table of `result_row`s: `unit` ("us/task") heads the figures,
    `middle` names a script's own columns and `setup` the last one."""
    columns = ["framework", "n", unit, "vs reflow", *middle]
    columns += ["peak RSS", "RSS after setup", "runs", setup]
    return ["", f"### {title}", "", *table_head(columns, left=1), *map(table_row, rows)]


def ratio_of(
    results: dict[tuple[str, str], ResultT], top: str, bottom: str, workload: str, stat: str
) -> float | None:
    """us per unit of framework `top` over `bottom`'s in `workload`, if both have one."""
    a, b = results.get((top, workload)), results.get((bottom, workload))
    ua = a.us_per_unit(stat) if a else None
    ub = b.us_per_unit(stat) if b else None
    return ua / ub if ua is not None and ub else None


@dataclass(frozen=True)
class Target:
    top: str  # us per unit of this framework ...
    bottom: str  # ... over this one's, in the same workload
    workload: str
    ratio: float
    at_least: bool  # the ratio must be at least `ratio` (else at most)

    def describe(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.ratio:g}x"

    def met(self, ratio: float) -> bool:
        return ratio >= self.ratio if self.at_least else ratio <= self.ratio


def targets_table(
    unit: str,
    targets: Iterable[tuple[str, Target]],
    results: dict[tuple[str, str], ResultT],
    stat: str,
    name: Callable[[str], str] = str,
) -> tuple[list[str], bool]:
    """The report's "Targets" table, of (label, target) rows, and whether every one was met.

    A target with a side not measured is missed; `name` names that side by its key.
    """
    lines = ["", f"Targets ({unit}, same run):", ""]
    lines += table_head(["target", "workload", "measured", "verdict"], left=2)
    all_pass = True
    for label, target in targets:
        top, bottom, workload = target.top, target.bottom, target.workload
        ratio = ratio_of(results, top, bottom, workload, stat)
        if ratio is None:
            missing = [
                name(k)
                for k in (top, bottom)
                if (r := results.get((k, workload))) is None or r.us_per_unit(stat) is None
            ]
            measured, ok_text = f"n/a ({', '.join(missing)}: not measured)", "MISS"
            all_pass = False
        else:
            ok = target.met(ratio)
            all_pass &= ok
            measured, ok_text = fmt_ratio(ratio), verdict(ok)
        lines.append(table_row([label, workload, measured, ok_text]))
    return lines, all_pass


def framework_notes(
    keys_and_names: Iterable[tuple[str, str]], results: dict[tuple[str, str], ResultT]
) -> list[str]:
    """A note per framework whose cells left one: "name: note; other note."."""
    notes = []
    for key, name in keys_and_names:
        cell_notes = {r.note for (k, _), r in results.items() if k == key and r.note}
        if cell_notes:
            notes.append(f"{name}: {'; '.join(sorted(cell_notes))}.")
    return notes
