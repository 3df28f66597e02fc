"""Overhead per task of a reflow flow next to Prefect 3, TaskFlow, Dask and a bare thread pool.

Run it through `bench/run`, which makes the venv with the peers installed:

    bench/run flow                    # full run, about 5 minutes on a shared 2-core box
    bench/run flow --quick            # smoke run, under a minute
    bench/run flow --markdown FILE    # also write the report (markdown) to FILE

Four workloads, each run by every framework that has flows (or the matching primitive), on
the same trivial targets:

- sequential: n chained task calls in one flow, each result feeding the next (x = inc(x));
- map: a map of `inc` (x + 1) over range(n) in one flow, its results collected in a list;
- map-retry: the same map of `flaky`, which fails its first attempt on every element and
  returns x + 1 on the second (one retry, no delay);
- tiny-flows: n calls of a flow of one task call (x = one(x), where `one` returns inc(x)): what
  a flow run itself costs, its start and its end (for a kept run: a transaction per run).

The frameworks (labels as in the report):

- reflow: `@flow(persist=False)` / `@task`, its default executor (threads),
  `task.map(...).result()`: runs in memory;
- reflow + SQLite: the same with `@flow`, no options: every run kept in the default store,
  `$REFLOW_HOME/reflow.db` (REFLOW_HOME a fresh temporary folder); reflow + PostgreSQL: with
  `store=` the database of REFLOW_BENCH_POSTGRES_URL (default: postgres@127.0.0.1:5432/test);
- ThreadPoolExecutor floor: plain calls in a loop; `list(pool.map(fn, range(n)))` in a fresh
  `with ThreadPoolExecutor()` (default workers); map-retry retries by hand (try/except);
- Dask delayed: `dask.delayed` chains / lists computed with the threaded scheduler; it has no
  task retries (only distributed has), so it has no map-retry;
- Dask distributed: `LocalCluster(processes=False)` (one worker in this process, threads,
  no serialisation to other processes, so its memory is all in this process's RSS) and a
  `Client`: `client.submit` chains, `client.map` (with `retries=1`) and `client.gather`;
- TaskFlow: `taskflow.engines.load(flow, engine="parallel")` (its thread executor), a
  `linear_flow` of n tasks chained by provides/requires, an `unordered_flow` of n tasks, and
  for map-retry an `unordered_flow` of n one-task `linear_flow`s, each with `retry.Times(2)`;
  building the flow, loading and running the engine are all timed (that is what running it
  takes);
- Prefect 3: `@flow` / `@task` (`cache_policy=NO_CACHE, persist_result=False`), its default
  ThreadPoolTaskRunner, `task.map(...).result()`.

Each (framework, workload) cell runs in a fresh subprocess (this script with `--one`), so its
peak RSS (`ru_maxrss`, read in that subprocess when it is done) is its own: the interpreter,
this script, the framework's imports and setup, and the workload. In the subprocess: import
and set up (untimed, reported), one untimed warm-up run of a few elements, then up to
`--repeats` timed runs of the whole workload, each checked for the right result (and, for
map-retry, for exactly one failed attempt per element), stopping early once the runs took
`--seconds`. A cell's figure is the best (min, or `--stat median`) run divided by n.

Prefect, TaskFlow and Dask distributed run smaller n (the report says which): per-task figures
keep them comparable. TaskFlow's per-task cost grows with n (its scheduler scans every atom of
the flow at each step), so its figures at small n flatter it. Prefect's three subprocesses
share one temporary API server (Prefect 3's ephemeral server: no server configured, no
network, `PREFECT_HOME` in a temporary directory; see task_overhead.py), started before them
(at the very start of a quick run, alongside the other cells) and timed apart; before each
Prefect cell the bench waits, untimed, for that server to go idle, and each Prefect cell has
one timed run (its later runs in a process were 5-30 times slower, its server behind on the
events of the earlier ones). Every subprocess's stderr (the frameworks' own logging, as they
configure it) goes to a log file; the tail of it is shown when a cell fails. The box's load
average is in the report's last line: a busy box (tests running alongside) slows every row.

The targets: Prefect's and TaskFlow's time per task at least 100 times reflow's, sequential
and map; reflow's map within 3 times the thread-pool floor's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import _timing

WORKLOADS = ("sequential", "map", "map-retry", "tiny-flows")
WORKLOAD_TITLES = {
    "sequential": "sequential: n chained task calls in one flow (x = inc(x))",
    "map": "map: inc (x + 1) mapped over range(n), results collected",
    "map-retry": "map-retry: flaky mapped over range(n); every element fails once, then succeeds",
    "tiny-flows": "tiny-flows: n calls of a one-task flow (x = one(x)); us per flow run",
}
FULL_N = {"sequential": 1_000, "map": 10_000, "map-retry": 10_000, "tiny-flows": 1_000}
QUICK_N = {"sequential": 200, "map": 1_000, "map-retry": 1_000, "tiny-flows": 200}
WARM_UP_N = 10  # elements of the untimed warm-up run
FULL_SECONDS = 10.0  # a cell's timed runs stop once they took this long (--seconds)
QUICK_SECONDS = 0.5
CHILD_TIMEOUT = 600.0  # seconds a subprocess may take, all told
IDLE_WAIT_CAP = 60.0  # seconds to wait for Prefect's server to go idle before a cell
TARGET_PEER_RATIO = 100.0
TARGET_FLOOR_RATIO = 3.0


@dataclass(frozen=True)
class Framework:
    key: str  # for --one and --frameworks
    label: str  # the report's row
    short: str  # in the targets and notes
    full_n: dict[str, int] = field(default_factory=lambda: FULL_N)
    quick_n: dict[str, int] = field(default_factory=lambda: QUICK_N)
    max_runs: int | None = None  # timed runs per cell at most, whatever --repeats says


REFLOW = "reflow"
FLOOR = "threadpool"
PREFECT = "prefect"
TASKFLOW = "taskflow"
FRAMEWORKS = [
    Framework(REFLOW, "reflow @flow (thread executor)", "reflow"),
    Framework(
        "reflow-sqlite", "reflow @flow, kept in SQLite (the default store)", "reflow + SQLite"
    ),
    Framework(
        "reflow-postgres", "reflow @flow, kept in PostgreSQL (store=)", "reflow + PostgreSQL"
    ),
    Framework(FLOOR, "ThreadPoolExecutor floor", "thread-pool floor"),
    Framework("dask", "Dask delayed, threaded scheduler", "Dask delayed"),
    Framework(
        "distributed",
        "Dask distributed, LocalCluster(processes=False)",
        "Dask distributed",
        {"sequential": 500, "map": 2_000, "map-retry": 2_000, "tiny-flows": 100},
        {"sequential": 100, "map": 500, "map-retry": 300, "tiny-flows": 20},
    ),
    Framework(
        TASKFLOW,
        "TaskFlow, parallel engine",
        "TaskFlow",
        {"sequential": 200, "map": 1_000, "map-retry": 200, "tiny-flows": 100},
        {"sequential": 50, "map": 100, "map-retry": 50, "tiny-flows": 20},
    ),
    Framework(
        PREFECT,
        "Prefect 3, ThreadPoolTaskRunner",
        "Prefect",
        {"sequential": 200, "map": 500, "map-retry": 200, "tiny-flows": 50},
        {"sequential": 30, "map": 50, "map-retry": 30, "tiny-flows": 10},
        # Its runs after the first in a process were 5-30 times slower here (its server falls
        # behind on the events of the earlier ones): more runs cost minutes and never win.
        max_runs=1,
    ),
]
BY_KEY = {f.key: f for f in FRAMEWORKS}


# --- the targets, shared by every framework --------------------------------------------------
# Module-level functions of the module `flow_overhead` (never `__main__`, see the end), so that
# Dask pickles them by reference and they see this module's state.


def inc(x: int) -> int:
    return x + 1


_flaky_lock = threading.Lock()
_flaky_seen: set[int] = set()
_flaky_failures = 0


class FirstAttemptFailed(Exception):
    pass


def flaky(x: int) -> int:
    """x + 1, but the first attempt for each x (since `reset_flaky`) raises."""
    global _flaky_failures
    with _flaky_lock:
        first = x not in _flaky_seen
        if first:
            _flaky_seen.add(x)
            _flaky_failures += 1
    if first:
        raise FirstAttemptFailed(x)
    return x + 1


def reset_flaky() -> None:
    global _flaky_failures
    with _flaky_lock:
        _flaky_seen.clear()
        _flaky_failures = 0


def flaky_retried_by_hand(x: int) -> int:
    """The floor's map-retry: `flaky` with one retry, written out."""
    try:
        return flaky(x)
    except FirstAttemptFailed:
        return flaky(x)


def check_result(workload: str, n: int, result: Any) -> None:
    chained = workload in ("sequential", "tiny-flows")
    want: Any = n if chained else list(range(1, n + 1))
    got = result if chained else list(result)
    if got != want:
        shown = repr(result) if chained else f"{type(result).__name__} {result!r}"
        raise AssertionError(f"wrong result for n={n}: {shown[:200]}")
    if workload == "map-retry" and _flaky_failures != n:
        raise AssertionError(f"{_flaky_failures} first attempts failed, not {n}")


# --- the frameworks: each runs the three workloads -------------------------------------------


class Impl(_timing.Impl):
    def sequential(self, n: int) -> Any:
        raise NotImplementedError

    def map(self, n: int) -> Any:
        raise NotImplementedError

    def map_retry(self, n: int) -> Any:
        raise NotImplementedError

    def tiny_flows(self, n: int) -> Any:
        raise _timing.NotApplicable("it has no flows to call one by one")


def flows_of(flow: Callable[[Any], Any], inc_task: Any, flaky_task: Any) -> tuple[Any, ...]:
    """The four workloads as flows (the last: a function calling a flow n times), for the
    frameworks with Prefect's API (reflow, Prefect)."""

    @flow
    def sequential(n: int) -> int:
        x = 0
        for _ in range(n):
            x = inc_task(x)
        return x

    @flow
    def mapped(n: int) -> list[int]:
        return inc_task.map(range(n)).result()

    @flow
    def mapped_retry(n: int) -> list[int]:
        return flaky_task.map(range(n)).result()

    @flow
    def one(x: int) -> int:
        return inc_task(x)  # type: ignore[no-any-return]

    def tiny_flows(n: int) -> int:
        x = 0
        for _ in range(n):
            x = one(x)
        return x

    return sequential, mapped, mapped_retry, tiny_flows


class ReflowImpl(Impl):
    def __init__(self) -> None:
        import functools

        from reflow import flow, task
        from reflow.executors import ThreadExecutor

        self.note = f"persist=False; its default executor, a {ThreadExecutor()!r} per flow run"
        self.sequential, self.map, self.map_retry, self.tiny_flows = flows_of(  # type: ignore[method-assign]
            functools.partial(flow, persist=False),
            task(inc),
            task(retries=1, retry_delay_seconds=0)(flaky),
        )


class ReflowStoredImpl(Impl):
    """reflow with every run kept in a store: the default one (`@flow` with no options, so
    SQLite in `$REFLOW_HOME`, a fresh temporary folder), or with `store=` the PostgreSQL
    database of REFLOW_BENCH_POSTGRES_URL."""

    backend = "sqlite"

    def __init__(self) -> None:
        import functools

        from reflow import flow, task

        os.environ["REFLOW_HOME"] = tempfile.mkdtemp(prefix="reflow-bench-")
        os.environ.pop("REFLOW_STORE", None)
        keep: Any = flow
        if self.backend == "sqlite":
            self.note = "no options: the default store, $REFLOW_HOME/reflow.db; all kept"
        else:
            store = os.environ.get(
                "REFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
            )
            keep = functools.partial(flow, store=store)
            self.note = f"store={store.split('@')[-1]!r}: every state, result and run kept"
        self.sequential, self.map, self.map_retry, self.tiny_flows = flows_of(  # type: ignore[method-assign]
            keep,
            task(inc),
            task(retries=1, retry_delay_seconds=0)(flaky),
        )


class ReflowPostgresImpl(ReflowStoredImpl):
    backend = "postgres"


class ThreadPoolImpl(Impl):
    note = "a fresh ThreadPoolExecutor() per map run (max_workers = min(32, CPUs + 4))"

    def sequential(self, n: int) -> int:
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    def map(self, n: int) -> list[int]:
        with ThreadPoolExecutor() as pool:
            return list(pool.map(inc, range(n)))

    def map_retry(self, n: int) -> list[int]:
        with ThreadPoolExecutor() as pool:
            return list(pool.map(flaky_retried_by_hand, range(n)))

    def tiny_flows(self, n: int) -> int:
        return self.sequential(n)  # a flow of one call is a call


class DaskDelayedImpl(Impl):
    def __init__(self) -> None:
        import dask

        self.dask = dask
        self.inc = dask.delayed(inc)

    def sequential(self, n: int) -> int:
        x: Any = 0
        for _ in range(n):
            x = self.inc(x)
        return x.compute(scheduler="threads")

    def map(self, n: int) -> list[int]:
        return list(self.dask.compute(*[self.inc(i) for i in range(n)], scheduler="threads"))

    def map_retry(self, n: int) -> list[int]:
        raise _timing.NotApplicable(
            "Dask's local schedulers have no task retries (distributed has)"
        )


class DaskDistributedImpl(Impl):
    def __init__(self) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(processes=False, dashboard_address=None)
        self.client = Client(self.cluster)
        workers = self.client.scheduler_info()["workers"].values()
        threads = sum(w["nthreads"] for w in workers)
        self.note = f"{len(workers)} worker(s), {threads} thread(s)"

    def sequential(self, n: int) -> int:
        x: Any = 0
        for _ in range(n):
            x = self.client.submit(inc, x, pure=False)
        return x.result()

    def map(self, n: int) -> list[int]:
        return self.client.gather(self.client.map(inc, range(n), pure=False))

    def map_retry(self, n: int) -> list[int]:
        return self.client.gather(self.client.map(flaky, range(n), retries=1, pure=False))

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class TaskFlowImpl(Impl):
    def __init__(self) -> None:
        import taskflow.engines
        from taskflow import retry, task
        from taskflow.patterns import linear_flow, unordered_flow

        class Inc(task.Task):  # type: ignore[misc]
            def execute(self, x: int) -> int:
                return inc(x)

        class Flaky(task.Task):  # type: ignore[misc]
            def execute(self, x: int) -> int:
                return flaky(x)

        self.note = "its default executor, a futurist thread pool (5 threads per CPU) per run"
        self.engines = taskflow.engines
        self.retry, self.linear_flow, self.unordered_flow = retry, linear_flow, unordered_flow
        self.Inc, self.Flaky = Inc, Flaky

    def run(self, flow: Any, store: dict[str, Any] | None = None) -> Any:
        engine = self.engines.load(flow, store=store, engine="parallel")
        engine.run()
        return engine.storage

    def sequential(self, n: int) -> int:
        flow = self.linear_flow.Flow("sequential")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", rebind={"x": f"x{i}"}, provides=f"x{i + 1}"))
        return self.run(flow, store={"x0": 0}).fetch(f"x{n}")

    def map(self, n: int) -> list[int]:
        flow = self.unordered_flow.Flow("map")
        for i in range(n):
            flow.add(self.Inc(name=f"inc-{i}", inject={"x": i}, provides=f"y{i}"))
        storage = self.run(flow)
        return [storage.fetch(f"y{i}") for i in range(n)]

    def map_retry(self, n: int) -> list[int]:
        flow = self.unordered_flow.Flow("map-retry")
        for i in range(n):
            element = self.linear_flow.Flow(f"element-{i}", retry=self.retry.Times(2, f"r-{i}"))
            element.add(self.Flaky(name=f"flaky-{i}", inject={"x": i}, provides=f"y{i}"))
            flow.add(element)
        storage = self.run(flow)
        return [storage.fetch(f"y{i}") for i in range(n)]


class PrefectImpl(Impl):
    def __init__(self) -> None:
        if not os.environ.get("PREFECT_API_URL"):
            raise RuntimeError("no Prefect server: run it through this script, not with --one")
        import prefect
        from prefect.cache_policies import NO_CACHE

        self.note = (
            "the default ThreadPoolTaskRunner (no max_workers set: unbounded); persist_result="
            "False and cache_policy=NO_CACHE on its tasks; logging level WARNING"
        )

        def prefect_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
            return prefect.task(cache_policy=NO_CACHE, persist_result=False, **options)

        self.sequential, self.map, self.map_retry, self.tiny_flows = flows_of(  # type: ignore[method-assign]
            prefect.flow(persist_result=False),
            prefect_task()(inc),
            prefect_task(retries=1, retry_delay_seconds=0)(flaky),
        )


IMPLS: dict[str, Callable[[], Impl]] = {
    REFLOW: ReflowImpl,
    FLOOR: ThreadPoolImpl,
    "reflow-sqlite": ReflowStoredImpl,
    "reflow-postgres": ReflowPostgresImpl,
    "dask": DaskDelayedImpl,
    "distributed": DaskDistributedImpl,
    TASKFLOW: TaskFlowImpl,
    PREFECT: PrefectImpl,
}


# --- one cell, in its own subprocess ---------------------------------------------------------


def run_one(key: str, workload: str, n: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Set up `key`, warm up, time up to `repeats` runs of `workload`; what the parent reports."""
    return _timing.run_one(
        IMPLS[key],
        lambda impl: getattr(impl, workload.replace("-", "_")),  # map-retry: impl.map_retry
        lambda n, result: check_result(workload, n, result),
        n,
        repeats,
        seconds,
        WARM_UP_N,
        reset=reset_flaky,
    )


def prefect_server_main() -> int:
    """Start Prefect 3's temporary API server, print its URL, keep it until stdin closes."""
    try:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start()
    except Exception as error:
        print(f"ERROR {_timing.first_line(error)}", flush=True)
        return 1
    # Its URL, and the pid of the server process itself, whose CPU time the parent watches.
    process = server.server_process
    print(server.api_url, process.pid if process else 0, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


# --- the parent: every cell, then the report -------------------------------------------------


Result = _timing.CellResult


class PrefectServer:
    """Prefect 3's temporary API server, in a subprocess of its own, for the Prefect cells."""

    def __init__(self, env: dict[str, str], logs: str) -> None:
        self.url: str | None = None
        self.error: str | None = None
        self.start_s = 0.0
        self.pid = 0  # the server process's (Linux: its CPU time is watched; 0: not watched)
        self.idle_waits: list[float] = []  # seconds waited for it to go idle before each cell
        self.log = os.path.join(logs, "prefect-server.log")
        self.started = time.perf_counter()
        with open(self.log, "w", encoding="utf-8") as err:
            self.process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--prefect-server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )

    def wait_ready(self) -> None:
        """Wait for the server's URL (or its failure); only once."""
        if self.url or self.error:
            return
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        self.start_s = time.perf_counter() - self.started
        if line.startswith("http"):
            self.url, pid = line.split()
            self.pid = int(pid)
        else:
            tail = _timing.log_tail(self.log, 5).strip().replace("\n", " / ")
            self.error = f"its server did not start: {line or 'no output'} {tail[-300:]}"

    def cpu_seconds(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def wait_idle(self, cap: float = IDLE_WAIT_CAP) -> None:
        """Wait (untimed, at most `cap` s) until the server stops working off earlier cells.

        Each cell then starts against an idle server, wherever it comes in the order. Idle:
        under 10% of a CPU over half a second. Only where /proc shows its CPU time.
        """
        started = time.perf_counter()
        before = self.cpu_seconds()
        while before is not None and time.perf_counter() - started < cap:
            time.sleep(0.5)
            after = self.cpu_seconds()
            if after is None or after - before < 0.05:
                break
            before = after
        self.idle_waits.append(time.perf_counter() - started)

    def stop(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # the server's host process then stops it and exits
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def report(
    results: dict[tuple[str, str], Result],
    frameworks: list[Framework],
    workloads: list[str],
    settings: _timing.Settings,
    server: PrefectServer | None,
    quick: bool,
    whole_run: str,
) -> tuple[str, bool]:
    stat = settings.stat
    capped = "".join(
        f"; {f.short}: {f.max_runs}"
        for f in frameworks
        if f.max_runs and f.max_runs < settings.repeats
    )
    lines = [
        _timing.environment(("reflow", "prefect", "taskflow", "dask", "distributed")),
        _timing.describe_cells(settings, f"{WARM_UP_N} elements", capped)
        + "; us/task = run time / n; ratio = us/task / "
        "reflow's; peak RSS = the subprocess's ru_maxrss, setup = after imports and setup",
    ]
    for workload in workloads:
        rows = [
            _timing.result_row(
                r,
                framework.label,
                stat,
                _timing.ratio_of(results, framework.key, REFLOW, workload, stat),
            )
            for framework in frameworks
            if (r := results.get((framework.key, workload))) is not None
        ]
        lines += _timing.result_table(
            WORKLOAD_TITLES[workload], "us/task", [], "import + setup", rows
        )

    targets = [
        _timing.Target(peer, REFLOW, workload, TARGET_PEER_RATIO, at_least=True)
        for peer in (PREFECT, TASKFLOW)
        for workload in ("sequential", "map")
    ]
    targets.append(_timing.Target(REFLOW, FLOOR, "map", TARGET_FLOOR_RATIO, at_least=False))
    table, all_pass = _timing.targets_table(
        "us/task",
        [
            (f"{BY_KEY[t.top].short} / {BY_KEY[t.bottom].short} {t.describe()}", t)
            for t in targets
            if t.workload in workloads
        ],
        results,
        stat,
        name=lambda key: BY_KEY[key].short,
    )
    lines += table

    notes = []
    default_n = QUICK_N if quick else FULL_N
    small = [f for f in frameworks if (f.quick_n if quick else f.full_n) != default_n]
    if small:
        sizes = "; ".join(
            f"{f.short} "
            + ", ".join(f"{w} {results[f.key, w].n:,}" for w in workloads if (f.key, w) in results)
            for f in small
        )
        notes.append(
            f"Smaller n for the slow peers ({sizes}); the others ran "
            + ", ".join(f"{w} {default_n[w]:,}" for w in workloads)
            + ": compare us/task."
        )
    if any(f.key == TASKFLOW for f in small):
        notes.append(
            "TaskFlow's time per task grows with n (its scheduler scans every atom of the flow "
            "at each step, and each engine run ends by joining its thread pool, about 1 s "
            "here): at the others' n it would be slower still per task."
        )
    notes += _timing.framework_notes([(f.key, f.short) for f in frameworks], results)
    if server is not None:
        if server.url:
            concurrently = (
                ", started at the beginning of this quick run, alongside the other cells"
                if quick
                else ""
            )
            waits = ", ".join(f"{w:.1f}" for w in server.idle_waits)
            notes.append(
                f"Prefect's temporary API server took {server.start_s:.1f} s to start (untimed"
                f"{concurrently}; its three subprocesses share it; its memory is not in their "
                f"RSS). Before each Prefect cell the bench waited for it to go idle (s: {waits}; "
                f"at most {IDLE_WAIT_CAP:g} s)."
            )
        else:
            notes.append(f"Prefect did not run: {server.error}")
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", whole_run]
    return "\n".join(lines) + "\n", all_pass


def parent_main(args: Any, settings: _timing.Settings) -> int:
    keys, workloads = _timing.selected(args, list(BY_KEY), WORKLOADS)
    if args.no_prefect and PREFECT in keys:
        keys.remove(PREFECT)
    frameworks = [f for f in FRAMEWORKS if f.key in keys]
    whole_run = _timing.WholeRun()
    results: dict[tuple[str, str], Result] = {}
    server: PrefectServer | None = None
    with tempfile.TemporaryDirectory(
        prefix="reflow-bench-flow-", ignore_cleanup_errors=True
    ) as logs:
        env = dict(os.environ)
        home = os.path.join(logs, "prefect-home")
        os.mkdir(home)
        _timing.configure_prefect_env(home, env)  # every cell's: no Prefect settings leak in

        def run_framework(framework: Framework) -> None:
            for workload in workloads:
                n = framework.quick_n[workload] if args.quick else framework.full_n[workload]
                result = Result(framework, workload, n)
                results[framework.key, workload] = result
                cell_env = env
                if framework.key == PREFECT:
                    assert server is not None
                    if server.url is None:
                        result.error = f"unavailable: {server.error}"
                        continue
                    cell_env = {**env, "PREFECT_API_URL": server.url}
                    server.wait_idle()
                repeats = min(settings.repeats, framework.max_runs or settings.repeats)
                _timing.run_cell_process(
                    __file__, result, repeats, settings.seconds, logs, CHILD_TIMEOUT, cell_env
                )
                _timing.print_progress("flow", result)

        try:
            # A quick run starts the server at once, while the other frameworks run (their
            # figures are then noisier); a full run starts it only when the others are done.
            if args.quick and PREFECT in keys:
                server = PrefectServer(env, logs)
            for framework in frameworks:
                if framework.key == PREFECT:
                    server = server or PrefectServer(env, logs)
                    server.wait_ready()
                    print(
                        f"bench/flow: Prefect's temporary API server: {server.start_s:.1f} s",
                        file=sys.stderr,
                    )
                run_framework(framework)
        finally:
            if server is not None:
                server.stop()
    text, all_pass = report(
        results, frameworks, workloads, settings, server, args.quick, whole_run.summary()
    )
    return _timing.finish(text, settings, all_pass, _timing.MISSED_TARGETS)


def main(argv: list[str] | None = None) -> int:
    parser = _timing.cell_option_parser(
        __doc__.splitlines()[0],
        "smoke run: smaller n, fewer runs",
        BY_KEY,
        WORKLOADS,
        FULL_SECONDS,
        QUICK_SECONDS,
    )
    parser.add_argument("--no-prefect", action="store_true", help="leave Prefect out")
    # Hidden: the Prefect server's host process, which the parent starts.
    parser.add_argument("--prefect-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prefect_server:
        return prefect_server_main()
    if args.one:
        return _timing.child_main(args, run_one, FULL_N, FULL_SECONDS)
    return parent_main(args, _timing.cell_settings(args, FULL_SECONDS, QUICK_SECONDS))


if __name__ == "__main__":
    # Run as the module `flow_overhead`, not `__main__`: Dask then pickles `inc` and `flaky` by
    # reference, and they share this module's state (bench/ is first on sys.path).
    sys.exit(importlib.import_module("flow_overhead").main())
