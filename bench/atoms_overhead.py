"""Overhead per atom of reflow.atoms next to OpenStack TaskFlow, serial and parallel engines.

Run it through `bench/run`, which makes the venv with TaskFlow installed:

    bench/run atoms                   # full run, about 1.5 minutes on a shared 2-core box
    bench/run atoms --quick           # smoke run, under half a minute
    bench/run atoms --markdown FILE   # also write the report (markdown) to FILE

Two workloads, the same shape in both libraries, of trivial atoms (`execute(x)` returns
x + 1, through the same module-level function `inc`):

- linear: a linear flow of n atoms chained by provides/requires: atom i takes `x` from the
  store name `x{i}` (rebind) and provides `x{i+1}`; the store starts as {"x0": 0}, so the
  result under `x{n}` is n;
- unordered: an unordered flow of n independent atoms: atom i gets x = i (inject) and
  provides `y{i}` = i + 1.

The frameworks (labels as in the report):

- reflow serial: `reflow.atoms.run(flow, store, executor=InlineExecutor())` (atoms one at a
  time in the caller's thread, its default), a `reflow.atoms.Task` subclass per atom;
- reflow parallel: the same with a fresh `ThreadExecutor()` per run (default workers,
  min(32, CPUs + 4));
- TaskFlow serial / parallel: `taskflow.engines.run(flow, store, engine="serial")` /
  `engine="parallel"` (its default executor, a thread pool made per run), a
  `taskflow.task.Task` subclass per atom, `linear_flow.Flow` / `unordered_flow.Flow`.

What is timed, for both libraries alike: building the flow (n atom objects added to a
pattern), compiling/loading it (`engines.run` calls `engines.load`, which compiles the flow
and prepares its storage; `reflow.atoms.run` compiles and validates it) and running it, up to
the returned dict of results (`reflow.atoms.run` returns the store, `engines.run` its
`fetch_all()`). The report also shows the part of that spent building the flow. Each result
is checked: the final store value (`x{n}` == n) and its size for linear; every `y{i}` ==
i + 1 for unordered; and the threads the atoms ran on are counted (one for the serial rows).

Each (framework, workload) cell runs in a fresh subprocess (this script with `--one`), so its
peak RSS (`ru_maxrss`, read in that subprocess when it is done) is its own: the interpreter,
this script, the library's imports, the flows built and run. In the subprocess: import
(untimed, reported), one untimed warm-up run of 10 atoms, then up to `--repeats` timed runs of
the whole workload, each checked, stopping early once the runs took `--seconds`. A cell's
figure is its best (min, or `--stat median`) run divided by n. A failing cell shows its
error in its row (the subprocess's stderr, with the traceback, goes to a log whose tail is
shown) and the run goes on.

TaskFlow runs a smaller n for linear (its time per atom grows with n: its scheduler scans the
flow at each step; at 1,000 a run took ~30 s serial and ~35 s parallel here); per-atom figures
keep it comparable, and the smaller n flatters it.

The targets: TaskFlow's time per atom at least 50 times reflow's, serial engine vs serial
executor and parallel vs parallel, on both workloads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _timing

WORKLOADS = ("linear", "unordered")
WORKLOAD_TITLES = {
    "linear": "linear: a linear flow of n atoms chained by provides/requires (x{i+1} = x{i} + 1)",
    "unordered": "unordered: an unordered flow of n independent atoms (y{i} = i + 1)",
}
FULL_N = {"linear": 1_000, "unordered": 1_000}
QUICK_N = {"linear": 1_000, "unordered": 1_000}
WARM_UP_N = 10  # atoms of the untimed warm-up run
FULL_SECONDS = 10.0  # a cell's timed runs stop once they took this long (--seconds)
QUICK_SECONDS = 0.5
CHILD_TIMEOUT = 300.0  # seconds a subprocess may take, all told
RESULT_MARK = "ATOMS-OVERHEAD-RESULT "
TARGET_RATIO = 50.0
MISSED = "(some targets missed or could not be measured; the exit status stays 0: a report)"


@dataclass(frozen=True)
class Framework:
    key: str  # for --one and --frameworks
    label: str  # the report's row
    library: str  # "reflow" | "taskflow"
    mode: str  # "serial" | "parallel": what its ratio is taken against
    full_n: dict[str, int] = field(default_factory=lambda: FULL_N)
    quick_n: dict[str, int] = field(default_factory=lambda: QUICK_N)


TASKFLOW_FULL_N = {"linear": 500, "unordered": 1_000}
TASKFLOW_QUICK_N = {"linear": 100, "unordered": 1_000}
FRAMEWORKS = [
    Framework("reflow-serial", "reflow.atoms.run, InlineExecutor (serial)", "reflow", "serial"),
    Framework(
        "reflow-parallel", "reflow.atoms.run, ThreadExecutor() (parallel)", "reflow", "parallel"
    ),
    Framework(
        "taskflow-serial",
        "TaskFlow engines.run, engine='serial'",
        "taskflow",
        "serial",
        TASKFLOW_FULL_N,
        TASKFLOW_QUICK_N,
    ),
    Framework(
        "taskflow-parallel",
        "TaskFlow engines.run, engine='parallel'",
        "taskflow",
        "parallel",
        TASKFLOW_FULL_N,
        TASKFLOW_QUICK_N,
    ),
]
BY_KEY = {f.key: f for f in FRAMEWORKS}


def reflow_of(mode: str) -> str:
    return f"reflow-{mode}"


# --- the atoms' work, shared by both libraries -----------------------------------------------

_threads: set[int] = set()  # the threads atoms ran on since the last `reset_threads`


def inc(x: int) -> int:
    _threads.add(threading.get_ident())  # a set.add: atomic under the GIL, ~50 ns
    return x + 1


def reset_threads() -> None:
    _threads.clear()


def check_result(workload: str, n: int, store: Any) -> None:
    """The returned dict of a run of `workload` with n atoms is right, or AssertionError."""
    if not isinstance(store, dict):
        raise AssertionError(f"the run returned {type(store).__name__}, not a dict")
    if workload == "linear":
        # The initial x0 (reflow returns it with the store; TaskFlow's fetch_all may too) and
        # x1..xn provided by the atoms.
        want_keys = {f"x{i}" for i in range(1, n + 1)}
        got = store.get(f"x{n}")
        if got != n:
            raise AssertionError(f"linear n={n}: store['x{n}'] is {got!r}, not {n}")
        wrong = [k for k in want_keys if store.get(k) != int(k[1:])]
        extra = set(store) - want_keys - {"x0"}
    else:
        want_keys = {f"y{i}" for i in range(n)}
        wrong = [k for k in want_keys if store.get(k) != int(k[1:]) + 1]
        extra = set(store) - want_keys
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} wrong or missing value(s), e.g. {sorted(wrong)[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected key(s), e.g. {sorted(extra)[:3]}")
    if problems:
        raise AssertionError(f"{workload} n={n}: {'; '.join(problems)}")


# --- the libraries: each builds and runs the two workloads -----------------------------------


class Impl:
    note = ""  # what the report should know about how it ran
    build_ns = 0  # of the last run: the time spent building the flow

    def linear(self, n: int) -> dict[str, Any]:
        raise NotImplementedError

    def unordered(self, n: int) -> dict[str, Any]:
        raise NotImplementedError


class ReflowImpl(Impl):
    def __init__(self, mode: str) -> None:
        import reflow.atoms
        from reflow.executors import InlineExecutor, ThreadExecutor

        class Inc(reflow.atoms.Task):
            def execute(self, x: int) -> int:
                return inc(x)

        self.atoms, self.Inc = reflow.atoms, Inc
        self.new_executor: Callable[[], Any] = (
            InlineExecutor if mode == "serial" else ThreadExecutor
        )
        self.note = f"a fresh {self.new_executor()!r} per run"

    def linear(self, n: int) -> dict[str, Any]:
        start = time.perf_counter_ns()
        flow = self.atoms.LinearFlow("linear")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", rebind={"x": f"x{i}"}, provides=f"x{i + 1}"))
        self.build_ns = time.perf_counter_ns() - start
        return self.atoms.run(flow, store={"x0": 0}, executor=self.new_executor())

    def unordered(self, n: int) -> dict[str, Any]:
        start = time.perf_counter_ns()
        flow = self.atoms.UnorderedFlow("unordered")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", inject={"x": i}, provides=f"y{i}"))
        self.build_ns = time.perf_counter_ns() - start
        return self.atoms.run(flow, executor=self.new_executor())


class TaskFlowImpl(Impl):
    def __init__(self, mode: str) -> None:
        import taskflow.engines
        from taskflow import task
        from taskflow.patterns import linear_flow, unordered_flow

        class Inc(task.Task):  # type: ignore[misc]
            def execute(self, x: int) -> int:
                return inc(x)

        self.engines, self.Inc = taskflow.engines, Inc
        self.linear_flow, self.unordered_flow = linear_flow, unordered_flow
        self.mode = mode
        if mode == "parallel":
            self.note = "its default executor, a thread pool made per run"

    def linear(self, n: int) -> dict[str, Any]:
        start = time.perf_counter_ns()
        flow = self.linear_flow.Flow("linear")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", rebind={"x": f"x{i}"}, provides=f"x{i + 1}"))
        self.build_ns = time.perf_counter_ns() - start
        result: dict[str, Any] = self.engines.run(flow, store={"x0": 0}, engine=self.mode)
        return result

    def unordered(self, n: int) -> dict[str, Any]:
        start = time.perf_counter_ns()
        flow = self.unordered_flow.Flow("unordered")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", inject={"x": i}, provides=f"y{i}"))
        self.build_ns = time.perf_counter_ns() - start
        result: dict[str, Any] = self.engines.run(flow, engine=self.mode)
        return result


def make_impl(framework: Framework) -> Impl:
    cls = ReflowImpl if framework.library == "reflow" else TaskFlowImpl
    return cls(framework.mode)


# --- one cell, in its own subprocess ---------------------------------------------------------


def first_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def run_one(key: str, workload: str, n: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Set up `key`, warm up, time up to `repeats` runs of `workload`; what the parent reports."""
    out: dict[str, Any] = {
        "n": n,
        "times_ns": [],
        "build_ns": [],
        "threads": [],
        "error": None,
        "note": "",
    }
    started = time.perf_counter()
    try:
        impl = make_impl(BY_KEY[key])
    except Exception as error:
        traceback.print_exc()
        out["error"] = f"unavailable: {first_line(error)}"
        out["rss_peak_mb"] = _timing.peak_rss_mb()
        return out
    out["setup_s"] = time.perf_counter() - started
    out["rss_setup_mb"] = _timing.peak_rss_mb()
    out["note"] = impl.note
    fn = impl.linear if workload == "linear" else impl.unordered
    try:
        warm = min(n, WARM_UP_N)
        check_result(workload, warm, fn(warm))
        spent = 0.0
        for _ in range(repeats):
            reset_threads()
            start = time.perf_counter_ns()
            result = fn(n)
            elapsed = time.perf_counter_ns() - start
            check_result(workload, n, result)
            out["times_ns"].append(elapsed)
            out["build_ns"].append(impl.build_ns)
            out["threads"].append(len(_threads))
            spent += elapsed / 1e9
            if spent >= seconds:
                break
    except Exception as error:
        traceback.print_exc()
        out["error"] = first_line(error)
    out["rss_peak_mb"] = _timing.peak_rss_mb()
    return out


def child_main(args: Any) -> int:
    key, workload = args.one
    n = args.n or FULL_N[workload]
    out = run_one(key, workload, n, args.repeats or 3, args.seconds or FULL_SECONDS)
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# --- the parent: every cell, then the report -------------------------------------------------


@dataclass
class Result:
    framework: Framework
    workload: str
    n: int
    times_ns: list[int] = field(default_factory=list)
    build_ns: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    error: str | None = None
    note: str = ""
    setup_s: float | None = None
    rss_setup_mb: float | None = None
    rss_peak_mb: float | None = None
    wall_s: float = 0.0

    def best(self, stat: str) -> int | None:
        """Index of the run that counts (min), or None for the median of the runs."""
        if stat == "min":
            return self.times_ns.index(min(self.times_ns))
        return None

    def us_per_atom(self, stat: str) -> float | None:
        if not self.times_ns or self.error:
            return None
        best = min(self.times_ns) if stat == "min" else statistics.median(self.times_ns)
        return best / 1000 / self.n

    def build_us_per_atom(self, stat: str) -> float | None:
        if not self.build_ns or self.error:
            return None
        i = self.best(stat)
        build = self.build_ns[i] if i is not None else statistics.median(self.build_ns)
        return build / 1000 / self.n


def run_cell(
    framework: Framework, workload: str, n: int, settings: _timing.Settings, logs: str
) -> Result:
    log = os.path.join(logs, f"{framework.key}-{workload}.log")
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--one",
        framework.key,
        workload,
        "--n",
        str(n),
        "--repeats",
        str(settings.repeats),
        "--seconds",
        str(settings.seconds),
    ]
    result = Result(framework, workload, n)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        try:
            done = subprocess.run(
                command,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=CHILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result.error = f"timed out after {CHILD_TIMEOUT:g} s"
            return result
        finally:
            result.wall_s = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        tail = _timing.log_tail(log, 5).strip().replace("\n", " / ")
        result.error = f"subprocess exited {done.returncode} with no result: {tail[-400:]}"
        return result
    out = json.loads(lines[-1][len(RESULT_MARK) :])
    for name in (
        "times_ns",
        "build_ns",
        "threads",
        "error",
        "note",
        "setup_s",
        "rss_setup_mb",
        "rss_peak_mb",
    ):
        setattr(result, name, out.get(name, getattr(result, name)))
    if result.error and not result.error.startswith("unavailable"):
        tail = _timing.log_tail(log, 3).strip().replace("\n", " / ")
        if tail:
            result.error += f" (stderr: {tail[-300:]})"
    return result


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def fmt_mb(mb: float | None) -> str:
    return "-" if mb is None else f"{mb:,.0f} MB"


def fmt_threads(threads: list[int]) -> str:
    if not threads:
        return "-"
    low, high = min(threads), max(threads)
    return str(low) if low == high else f"{low}-{high}"


def ratio_of(
    results: dict[tuple[str, str], Result], top: str, bottom: str, workload: str, stat: str
) -> float | None:
    a, b = results.get((top, workload)), results.get((bottom, workload))
    ua = a.us_per_atom(stat) if a else None
    ub = b.us_per_atom(stat) if b else None
    return ua / ub if ua is not None and ub else None


def report(
    results: dict[tuple[str, str], Result],
    frameworks: list[Framework],
    workloads: list[str],
    settings: _timing.Settings,
    wall: float,
    quick: bool,
    load: str,
) -> tuple[str, bool]:
    stat = settings.stat
    lines = [
        _timing.environment(("reflow", "taskflow")),
        f"one fresh subprocess per cell; {stat} of up to {settings.repeats} timed runs of the "
        f"whole workload per cell (fewer once its runs took {settings.seconds:g} s), after one "
        f"untimed run of {WARM_UP_N} atoms; timed: building the flow + compile/load + run, to "
        "the returned dict; us/atom = run time / n; vs reflow = us/atom / reflow's in the same "
        "mode (serial or parallel); build = the part spent building the flow; threads = "
        "threads the atoms ran on; peak RSS = the subprocess's ru_maxrss, setup = after imports",
    ]
    for workload in workloads:
        lines += ["", f"### {WORKLOAD_TITLES[workload]}", ""]
        lines += _timing.table_head(
            [
                "framework",
                "n",
                "us/atom",
                "vs reflow",
                "of which build",
                "threads",
                "peak RSS",
                "RSS after setup",
                "runs",
                "import",
            ],
            left=1,
        )
        for framework in frameworks:
            r = results.get((framework.key, workload))
            if r is None:
                continue
            us = r.us_per_atom(stat)
            if us is None:
                row = [
                    framework.label,
                    f"{r.n:,}",
                    r.error or "no runs",
                    "-",
                    "-",
                    "-",
                    fmt_mb(r.rss_peak_mb),
                    fmt_mb(r.rss_setup_mb),
                    str(len(r.times_ns)),
                    "-",
                ]
            else:
                ratio = ratio_of(results, framework.key, reflow_of(framework.mode), workload, stat)
                build = r.build_us_per_atom(stat)
                row = [
                    framework.label,
                    f"{r.n:,}",
                    _timing.fmt_us(us),
                    "-" if ratio is None else _timing.fmt_ratio(ratio),
                    "-" if build is None else _timing.fmt_us(build),
                    fmt_threads(r.threads),
                    fmt_mb(r.rss_peak_mb),
                    fmt_mb(r.rss_setup_mb),
                    str(len(r.times_ns)),
                    "-" if r.setup_s is None else f"{r.setup_s:.2f} s",
                ]
            lines.append(_timing.table_row(row))

    lines += ["", "Targets (us/atom, same run):", ""]
    lines += _timing.table_head(["target", "workload", "measured", "verdict"], left=2)
    all_pass = True
    for mode in ("serial", "parallel"):
        top, bottom = f"taskflow-{mode}", reflow_of(mode)
        if top not in BY_KEY or not any(f.key in (top, bottom) for f in frameworks):
            continue
        for workload in workloads:
            label = f"TaskFlow {mode} / reflow {mode} >= {TARGET_RATIO:g}x"
            ratio = ratio_of(results, top, bottom, workload, stat)
            if ratio is None:
                missing = [
                    k
                    for k in (top, bottom)
                    if (r := results.get((k, workload))) is None or r.us_per_atom(stat) is None
                ]
                measured, verdict = f"n/a ({', '.join(missing)}: not measured)", "MISS"
                all_pass = False
            else:
                ok = ratio >= TARGET_RATIO
                all_pass &= ok
                measured, verdict = _timing.fmt_ratio(ratio), _timing.verdict(ok)
            lines.append(_timing.table_row([label, workload, measured, verdict]))

    notes = []
    default_n = QUICK_N if quick else FULL_N
    small = [
        (f, w)
        for f in frameworks
        for w in workloads
        if (f.key, w) in results and results[f.key, w].n != default_n[w]
    ]
    if small:
        sizes = "; ".join(f"{f.key} {w} {results[f.key, w].n:,}" for f, w in small)
        notes.append(
            f"Smaller n for TaskFlow ({sizes}); the others ran "
            + ", ".join(f"{w} {default_n[w]:,}" for w in workloads)
            + ": compare us/atom. TaskFlow's time per atom grows with n (when this bench was "
            "written, its linear flow took ~15 ms per atom at 500 atoms and ~28-35 ms at "
            "1,000, ~30 s a run), so at 1,000 it would be slower still per atom: the ratios "
            "flatter it."
        )
    parallel_linear = results.get((reflow_of("parallel"), "linear"))
    if parallel_linear is not None and parallel_linear.threads:
        notes.append(
            "threads: a linear flow has one ready atom at a time, so reflow's ThreadExecutor "
            "pool hands each to the same idle worker (1 thread); its parallel linear figure "
            "is a thread hand-off per atom (submit, then wait for the future)."
        )
    for framework in frameworks:
        cell_notes = {r.note for (k, _), r in results.items() if k == framework.key and r.note}
        if cell_notes:
            notes.append(f"{framework.label}: {'; '.join(sorted(cell_notes))}.")
    notes.append(
        "Both libraries: one Task subclass whose execute(x) returns inc(x) = x + 1; atoms named "
        "inc-{i}; linear: rebind x -> x{i}, provides x{i+1}, store {x0: 0}; unordered: inject "
        "x = i, provides y{i}."
    )
    lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", f"Whole run: {wall:.1f} s; load average (1 min): {load}."]
    return "\n".join(lines) + "\n", all_pass


def parent_main(args: Any, settings: _timing.Settings) -> int:
    keys = args.frameworks.split(",") if args.frameworks else [f.key for f in FRAMEWORKS]
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    unknown = [k for k in keys if k not in BY_KEY] + [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise SystemExit(
            f"unknown: {', '.join(unknown)}; frameworks: {', '.join(BY_KEY)}; "
            f"workloads: {', '.join(WORKLOADS)}"
        )
    frameworks = [f for f in FRAMEWORKS if f.key in keys]
    started = time.perf_counter()
    load_at_start = load_average()
    results: dict[tuple[str, str], Result] = {}
    with tempfile.TemporaryDirectory(
        prefix="reflow-bench-atoms-", ignore_cleanup_errors=True
    ) as logs:
        for framework in frameworks:
            for workload in workloads:
                n = framework.quick_n[workload] if args.quick else framework.full_n[workload]
                result = run_cell(framework, workload, n, settings, logs)
                results[framework.key, workload] = result
                runs = ", ".join(f"{t / 1e9:.2f}" for t in result.times_ns)
                print(
                    f"bench/atoms: {framework.key} {workload} (n={n:,}): {result.wall_s:.1f} s "
                    f"(timed runs, s: {runs or '-'})"
                    + (f"; error: {result.error}" if result.error else ""),
                    file=sys.stderr,
                )
    wall = time.perf_counter() - started
    load = f"{load_at_start} at the start, {load_average()} at the end"
    text, all_pass = report(results, frameworks, workloads, settings, wall, args.quick, load)
    return _timing.finish(text, settings, all_pass, MISSED)


def main(argv: list[str] | None = None) -> int:
    parser = _timing.option_parser(
        __doc__.splitlines()[0],
        "smoke run: smaller n for TaskFlow, fewer runs",
        seconds_help=(
            f"a cell's timed runs stop once they took this long (default {FULL_SECONDS:g}, "
            f"quick {QUICK_SECONDS:g})"
        ),
    )
    parser.add_argument("--frameworks", metavar="A,B", help=f"only these, of: {', '.join(BY_KEY)}")
    parser.add_argument(
        "--workloads", metavar="A,B", help=f"only these, of: {', '.join(WORKLOADS)}"
    )
    # Hidden: what the parent runs in its subprocesses.
    parser.add_argument("--one", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return child_main(args)
    settings = _timing.Settings.from_args(args, quick_min_iterations=1)
    if args.seconds is None:
        settings = _timing.Settings(
            stat=settings.stat,
            repeats=settings.repeats,
            seconds=QUICK_SECONDS if args.quick else FULL_SECONDS,
            min_iterations=1,
            markdown=settings.markdown,
        )
    return parent_main(args, settings)


if __name__ == "__main__":
    sys.exit(main())
