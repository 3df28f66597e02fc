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
  `taskflow.task.Task` subclass per atom, `linear_flow.Flow` / `unordered_flow.Flow`;
- kept runs, serial: reflow with `runs=<a fresh SQLite file>` (every atom's states and result
  kept by the store's writer, the run's end committed before `run` returns), and TaskFlow with
  `backend=` its SQLAlchemy persistence backend on a fresh SQLite file (schema made by its
  alembic migrations; `engines.run` makes a logbook and flow detail per run and saves every
  atom's state and result as it goes).

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
executor, parallel vs parallel and kept in SQLite vs kept in SQLite, on both workloads; and a
kept reflow atom at most 3 times an in-memory one (the flows' durability target, borrowed).
TaskFlow kept in SQLite runs n=100 (about 0.1 s per atom there: 10 s a run).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
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
TARGET_RATIO = 50.0


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
TASKFLOW_KEPT_FULL_N = {"linear": 100, "unordered": 100}  # ~0.1 s an atom: ~10 s a run
TASKFLOW_KEPT_QUICK_N = {"linear": 50, "unordered": 50}
KEPT_TARGET_RATIO = 3.0  # a kept atom at most 3x an in-memory one (the flows' durability target)
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
    Framework(
        "reflow-serial-sqlite",
        "reflow.atoms.run, InlineExecutor, kept in SQLite (runs=)",
        "reflow",
        "serial-sqlite",
    ),
    Framework(
        "taskflow-serial-sqlite",
        "TaskFlow engines.run, engine='serial', SQLAlchemy/SQLite backend",
        "taskflow",
        "serial-sqlite",
        TASKFLOW_KEPT_FULL_N,
        TASKFLOW_KEPT_QUICK_N,
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


class Impl(_timing.Impl):
    """Builds the two workloads alike in both libraries; a subclass gives its classes and run."""

    build_ns = 0  # of the last run: the time spent building the flow
    Inc: Any  # the library's Task subclass whose execute(x) returns inc(x)
    LinearFlow: Callable[[str], Any]  # a pattern's class, called with the flow's name
    UnorderedFlow: Callable[[str], Any]

    def run(self, flow: Any, store: dict[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def linear(self, n: int) -> dict[str, Any]:
        start = time.perf_counter_ns()
        flow = self.LinearFlow("linear")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", rebind={"x": f"x{i}"}, provides=f"x{i + 1}"))
        self.build_ns = time.perf_counter_ns() - start
        return self.run(flow, {"x0": 0})

    def unordered(self, n: int) -> dict[str, Any]:
        start = time.perf_counter_ns()
        flow = self.UnorderedFlow("unordered")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", inject={"x": i}, provides=f"y{i}"))
        self.build_ns = time.perf_counter_ns() - start
        return self.run(flow, None)


def kept_in() -> str:
    """A fresh folder for a cell's database (and REFLOW_HOME: reflow's signing key)."""
    import os

    home = tempfile.mkdtemp(prefix="reflow-bench-atoms-")
    os.environ["REFLOW_HOME"] = home
    return home


class ReflowImpl(Impl):
    def __init__(self, mode: str) -> None:
        import reflow.atoms
        from reflow.executors import InlineExecutor, ThreadExecutor

        class Inc(reflow.atoms.Task):
            def execute(self, x: int) -> int:
                return inc(x)

        self.atoms, self.Inc = reflow.atoms, Inc
        self.LinearFlow, self.UnorderedFlow = reflow.atoms.LinearFlow, reflow.atoms.UnorderedFlow
        self.new_executor: Callable[[], Any] = (
            ThreadExecutor if mode == "parallel" else InlineExecutor
        )
        self.runs: str | None = None
        self.note = f"a fresh {self.new_executor()!r} per run"
        if mode == "serial-sqlite":
            self.runs = f"{kept_in()}/runs.db"
            self.note += (
                "; runs=<a fresh SQLite file>: every run kept (each atom's states and result, "
                "written by the store's writer; the run's end committed before run() returns)"
            )

    def run(self, flow: Any, store: dict[str, Any] | None) -> dict[str, Any]:
        return self.atoms.run(flow, store=store, executor=self.new_executor(), runs=self.runs)


class TaskFlowImpl(Impl):
    def __init__(self, mode: str) -> None:
        import taskflow.engines
        from taskflow import task
        from taskflow.patterns import linear_flow, unordered_flow

        class Inc(task.Task):  # type: ignore[misc]
            def execute(self, x: int) -> int:
                return inc(x)

        self.engines, self.Inc = taskflow.engines, Inc
        self.LinearFlow, self.UnorderedFlow = linear_flow.Flow, unordered_flow.Flow
        self.mode = mode
        self.backend: Any = None
        if mode == "parallel":
            self.note = "its default executor, a thread pool made per run"
        if mode == "serial-sqlite":
            import contextlib

            from taskflow.persistence import backends

            self.mode = "serial"
            path = f"{kept_in()}/taskflow.db"
            self.backend = backends.fetch({"connection": f"sqlite:///{path}"})
            with contextlib.closing(self.backend.get_connection()) as conn:
                conn.upgrade()  # its schema, made by alembic
            self.note = (
                "backend=<its SQLAlchemy backend on a fresh SQLite file>: a logbook and flow "
                "detail per run (engines.run's default), every atom's state and result saved"
            )

    def run(self, flow: Any, store: dict[str, Any] | None) -> dict[str, Any]:
        result: dict[str, Any] = self.engines.run(
            flow, store=store, engine=self.mode, backend=self.backend
        )
        return result


def make_impl(framework: Framework) -> Impl:
    cls = ReflowImpl if framework.library == "reflow" else TaskFlowImpl
    return cls(framework.mode)


# --- one cell, in its own subprocess ---------------------------------------------------------


def run_one(key: str, workload: str, n: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Set up `key`, warm up, time up to `repeats` runs of `workload`; what the parent reports."""
    return _timing.run_one(
        lambda: make_impl(BY_KEY[key]),
        lambda impl: impl.linear if workload == "linear" else impl.unordered,
        lambda n, store: check_result(workload, n, store),
        n,
        repeats,
        seconds,
        WARM_UP_N,
        reset=reset_threads,
        record=lambda impl: {"build_ns": impl.build_ns, "threads": len(_threads)},
        tracebacks=True,
    )


# --- the parent: every cell, then the report -------------------------------------------------


@dataclass
class Result(_timing.CellResult):
    build_ns: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)

    def best(self, stat: str) -> int | None:
        """Index of the run that counts (min), or None for the median of the runs."""
        if stat == "min":
            return self.times_ns.index(min(self.times_ns))
        return None

    def build_us_per_atom(self, stat: str) -> float | None:
        if not self.build_ns or self.error:
            return None
        i = self.best(stat)
        build = self.build_ns[i] if i is not None else statistics.median(self.build_ns)
        return build / 1000 / self.n


def fmt_threads(threads: list[int]) -> str:
    if not threads:
        return "-"
    low, high = min(threads), max(threads)
    return str(low) if low == high else f"{low}-{high}"


def report(
    results: dict[tuple[str, str], Result],
    frameworks: list[Framework],
    workloads: list[str],
    settings: _timing.Settings,
    quick: bool,
    whole_run: str,
) -> tuple[str, bool]:
    stat = settings.stat
    lines = [
        _timing.environment(("reflow", "taskflow")),
        _timing.describe_cells(settings, f"{WARM_UP_N} atoms")
        + "; timed: building the flow + compile/load + run, to "
        "the returned dict; us/atom = run time / n; vs reflow = us/atom / reflow's in the same "
        "mode (serial, parallel, or serial kept in SQLite); build = the part spent building the "
        "flow; threads = threads the atoms ran on; peak RSS = the subprocess's ru_maxrss, "
        "setup = after imports",
    ]
    for workload in workloads:
        rows = []
        for framework in frameworks:
            r = results.get((framework.key, workload))
            if r is None:
                continue
            ratio = _timing.ratio_of(
                results, framework.key, reflow_of(framework.mode), workload, stat
            )
            build = r.build_us_per_atom(stat)
            middle = ["-" if build is None else _timing.fmt_us(build), fmt_threads(r.threads)]
            rows.append(_timing.result_row(r, framework.label, stat, ratio, middle))
        lines += _timing.result_table(
            WORKLOAD_TITLES[workload], "us/atom", ["of which build", "threads"], "import", rows
        )

    targets = []
    for mode in ("serial", "parallel", "serial-sqlite"):
        top, bottom = f"taskflow-{mode}", reflow_of(mode)
        if top not in BY_KEY or not any(f.key in (top, bottom) for f in frameworks):
            continue
        for workload in workloads:
            target = _timing.Target(top, bottom, workload, TARGET_RATIO, at_least=True)
            targets.append((f"TaskFlow {mode} / reflow {mode} {target.describe()}", target))
    kept, memory = reflow_of("serial-sqlite"), reflow_of("serial")
    if any(f.key in (kept, memory) for f in frameworks):
        for workload in workloads:
            target = _timing.Target(kept, memory, workload, KEPT_TARGET_RATIO, at_least=False)
            targets.append((f"reflow kept in SQLite / in memory {target.describe()}", target))
    table, all_pass = _timing.targets_table("us/atom", targets, results, stat)
    lines += table

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
    notes += _timing.framework_notes([(f.key, f.label) for f in frameworks], results)
    notes.append(
        "Both libraries: one Task subclass whose execute(x) returns inc(x) = x + 1; atoms named "
        "inc-{i}; linear: rebind x -> x{i}, provides x{i+1}, store {x0: 0}; unordered: inject "
        "x = i, provides y{i}."
    )
    lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", whole_run]
    return "\n".join(lines) + "\n", all_pass


def parent_main(args: Any, settings: _timing.Settings) -> int:
    keys, workloads = _timing.selected(args, list(BY_KEY), WORKLOADS)
    frameworks = [f for f in FRAMEWORKS if f.key in keys]
    whole_run = _timing.WholeRun()
    results: dict[tuple[str, str], Result] = {}
    with tempfile.TemporaryDirectory(
        prefix="reflow-bench-atoms-", ignore_cleanup_errors=True
    ) as logs:
        for framework in frameworks:
            for workload in workloads:
                n = framework.quick_n[workload] if args.quick else framework.full_n[workload]
                result = _timing.run_cell_process(
                    __file__,
                    Result(framework, workload, n),
                    settings.repeats,
                    settings.seconds,
                    logs,
                    CHILD_TIMEOUT,
                )
                results[framework.key, workload] = result
                _timing.print_progress("atoms", result, show_error=True)
    text, all_pass = report(
        results, frameworks, workloads, settings, args.quick, whole_run.summary()
    )
    return _timing.finish(text, settings, all_pass, _timing.MISSED_TARGETS)


def main(argv: list[str] | None = None) -> int:
    parser = _timing.cell_option_parser(
        __doc__.splitlines()[0],
        "smoke run: smaller n for TaskFlow, fewer runs",
        BY_KEY,
        WORKLOADS,
        FULL_SECONDS,
        QUICK_SECONDS,
    )
    args = parser.parse_args(argv)
    if args.one:
        return _timing.child_main(args, run_one, FULL_N, FULL_SECONDS)
    return parent_main(args, _timing.cell_settings(args, FULL_SECONDS, QUICK_SECONDS))


if __name__ == "__main__":
    sys.exit(main())
