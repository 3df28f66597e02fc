"""Overhead per task of reflow on Dask distributed next to plain Dask and Prefect's DaskTaskRunner.

Run it through `bench/run`, which makes the venv with Dask, Prefect and prefect-dask installed:

    bench/run dask                   # full run, about 10 minutes on a shared 2-core box
    bench/run dask --quick           # smoke run, about 2 minutes
    bench/run dask --markdown FILE   # also write the report (markdown) to FILE

Every cell runs on a cluster of its own, started untimed in its subprocess, the same for all:
`LocalCluster(n_workers=2, threads_per_worker=1, processes=True)` (worker processes, so every
task and result is serialised and crosses a socket), its scheduler in the cell's process, with
`distributed.scheduler.allowed-failures` 0 (as in the cluster a DaskExecutor starts). Two
workloads of the trivial task `inc` (x + 1, a module-level function of this module), and one
passing large data:

- sequential: n tasks in a chain, each taking the one before as its argument, the last
  result collected;
- map: inc mapped over range(n), every result collected;
- large: `make` makes LARGE_BYTES (20 MB) of bytes, then n tasks in a chain each take the one
  before's bytes and return new ones as large (`rotate`: the first byte moved to the end),
  the last collected. Besides the time, reflow's cells count the bytes the flow's process
  sent to the cluster and fetched from it per run (`DaskExecutor.bytes_sent`/`_received`).

The frameworks (labels as in the report):

- reflow on Dask: `@flow(executor=DaskExecutor(address))`, the executor started untimed (its
  client connected); sequential `x = inc.submit(x)`, map `inc.map(range(n)).result()`, large
  `x = rotate.submit(x)` (large results go to the next task by reference, worker to worker);
- reflow on Dask, by value: the same with `DaskExecutor(address, reference_bytes=None)`, large
  only: every result comes to the flow's process and goes back out as the next argument
  (what reflow did before results were passed by reference);
- reflow on Dask, direct: the same with `client_kwargs={"direct_to_workers": True}`, large
  only: results fetched from the workers, not relayed by the scheduler;
- plain Dask, `Client.map`: `client.gather(client.map(inc, range(n), pure=False))`, and
  sequential `x = client.submit(inc, x, pure=False)` (the futures chained on the cluster,
  never waited for in between), then `x.result()`; large the same with `rotate`;
- plain Dask, waited: sequential and large, `x = client.submit(inc, x, pure=False).result()`,
  a round trip per task (what an orchestrator that needs each task's state pays; for large,
  each value through the client and back);
- Prefect 3, DaskTaskRunner: `@flow(task_runner=DaskTaskRunner(address=...))` (prefect-dask)
  on the same kind of cluster, its tasks `cache_policy=NO_CACHE, persist_result=False`;
  sequential `x = inc.submit(x)`, map `inc.map(range(n)).result()`, large as reflow's. Its
  cells share one
  temporary API server (Prefect 3's ephemeral mode, started by flow_overhead.py's machinery)
  and run smaller n (per-task figures keep it comparable).

Each cell: import and cluster start (untimed, reported), an untimed run of 10 elements, then up
to `--repeats` timed runs of the whole workload, each result checked, stopping once the runs
took `--seconds`. The figure is the best (or `--stat median`) run divided by n.

The target: reflow's map within 2 times plain Dask's `Client.map` (us per task, same run).
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _timing

WORKLOADS = ("sequential", "map", "large")
LARGE_BYTES = 20_000_000
WORKLOAD_TITLES = {
    "sequential": "sequential: n chained tasks (each takes the one before), the last collected",
    "map": "map: inc (x + 1) mapped over range(n), every result collected",
    "large": f"large: n chained tasks passing {LARGE_BYTES / 1e6:g} MB of bytes each, the last "
    "collected",
}
FULL_N = {"sequential": 1_000, "map": 10_000, "large": 20}
QUICK_N = {"sequential": 100, "map": 1_000, "large": 5}
WARM_UP_N = 10
FULL_SECONDS = 60.0  # a cell's timed runs stop once they took this long (--seconds)
QUICK_SECONDS = 1.0
CHILD_TIMEOUT = 900.0
TARGET_RATIO = 2.0
CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}


@dataclass(frozen=True)
class Framework:
    key: str
    label: str
    full_n: dict[str, int] = field(default_factory=lambda: FULL_N)
    quick_n: dict[str, int] = field(default_factory=lambda: QUICK_N)
    max_runs: int | None = None


REFLOW = "reflow"
BY_VALUE = "reflow-by-value"
DIRECT = "reflow-direct"
PLAIN = "distributed"
PREFECT = "prefect-dask"
FRAMEWORKS = [
    Framework(REFLOW, "reflow on Dask, DaskExecutor(address)"),
    Framework(BY_VALUE, "reflow on Dask, by value (reference_bytes=None)"),
    Framework(DIRECT, "reflow on Dask, client_kwargs={'direct_to_workers': True}"),
    Framework(PLAIN, "plain Dask, Client.map / chained Client.submit"),
    Framework("distributed-waited", "plain Dask, Client.submit(...).result() per task"),
    Framework(
        PREFECT,
        "Prefect 3, DaskTaskRunner (prefect-dask)",
        {"sequential": 100, "map": 500, "large": 5},
        {"sequential": 20, "map": 50, "large": 3},
        max_runs=1,  # later runs in a process only got slower in flow_overhead.py
    ),
]
BY_KEY = {f.key: f for f in FRAMEWORKS}


def inc(x: int) -> int:
    return x + 1


def make(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


def rotate(data: bytes) -> bytes:
    return data[1:] + data[:1]


def check_result(workload: str, n: int, result: Any) -> None:
    if workload == "large":
        if len(result) != LARGE_BYTES or result[0] != n % 256:
            raise AssertionError(f"wrong result for n={n}: {len(result)} bytes from {result[0]}")
        return
    want: Any = n if workload == "sequential" else list(range(1, n + 1))
    got = result if workload == "sequential" else list(result)
    if got != want:
        raise AssertionError(f"wrong result for n={n}: {repr(result)[:200]}")


# --- the frameworks, each on a cluster of its own ----------------------------------------------


class Impl(_timing.Impl):
    """Starts the cell's cluster; a subclass runs the workloads on it."""

    def __init__(self) -> None:
        import dask
        from distributed import LocalCluster

        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            self.cluster = LocalCluster(**CLUSTER)
        self.address = self.cluster.scheduler_address

    def sequential(self, n: int) -> Any:
        raise NotImplementedError

    def map(self, n: int) -> Any:
        raise NotImplementedError

    def large(self, n: int) -> Any:
        raise NotImplementedError

    def traffic(self) -> dict[str, int]:
        """Bytes through the flow's process in the last run, for the frameworks that count."""
        return {}

    def close(self) -> None:
        self.cluster.close()


class ReflowImpl(Impl):
    reference_bytes: int | None = 64 * 1024
    direct_to_workers = False

    def __init__(self) -> None:
        super().__init__()
        from reflow import flow, task
        from reflow.executors import DaskExecutor

        self.executor = DaskExecutor(
            self.address,
            reference_bytes=self.reference_bytes,
            client_kwargs={"direct_to_workers": self.direct_to_workers},
        )
        self.executor.start()  # held for the cell: its flow runs share the client
        self.counted = (0, 0)
        self.last = (0, 0)
        inc_task, make_task, rotate_task = task(inc), task(make), task(rotate)

        @flow(executor=self.executor, persist=False)
        def sequential(n: int) -> int:
            x: Any = 0
            for _ in range(n):
                x = inc_task.submit(x)
            return int(x.result())

        @flow(executor=self.executor, persist=False)
        def mapped(n: int) -> list[int]:
            return list(inc_task.map(range(n)).result())

        @flow(executor=self.executor, persist=False)
        def large(n: int) -> bytes:
            x = make_task.submit(LARGE_BYTES)
            for _ in range(n):
                x = rotate_task.submit(x)
            return bytes(x.result())

        self.sequential, self.map = sequential, mapped  # type: ignore[method-assign]
        self._large = large
        self.note = f"max_workers {self.executor.max_workers} (the cluster's threads)"

    def large(self, n: int) -> bytes:
        result = self._large(n)
        now = (self.executor.bytes_sent, self.executor.bytes_received)
        self.last = (now[0] - self.counted[0], now[1] - self.counted[1])
        self.counted = now
        return result

    def traffic(self) -> dict[str, int]:
        return {"sent": self.last[0], "received": self.last[1]}

    def close(self) -> None:
        self.executor.shutdown()
        super().close()


class ByValueImpl(ReflowImpl):
    reference_bytes = None

    def __init__(self) -> None:
        super().__init__()
        self.sequential = self.map = self.same  # type: ignore[method-assign]

    def same(self, n: int) -> Any:
        raise _timing.NotApplicable("the same as reflow's: small results never stay on the cluster")


class DirectImpl(ReflowImpl):
    direct_to_workers = True

    def __init__(self) -> None:
        super().__init__()
        self.sequential = self.map = self.large_only  # type: ignore[method-assign]

    def large_only(self, n: int) -> Any:
        raise _timing.NotApplicable("measured for large results only")


class PlainImpl(Impl):
    def __init__(self) -> None:
        super().__init__()
        from distributed import Client

        self.client = Client(self.address)

    def sequential(self, n: int) -> int:
        x: Any = 0
        for _ in range(n):
            x = self.client.submit(inc, x, pure=False)
        return int(x.result())

    def map(self, n: int) -> list[int]:
        return list(self.client.gather(self.client.map(inc, range(n), pure=False)))

    def large(self, n: int) -> bytes:
        x = self.client.submit(make, LARGE_BYTES, pure=False)
        for _ in range(n):
            x = self.client.submit(rotate, x, pure=False)
        return bytes(x.result())

    def close(self) -> None:
        self.client.close()
        super().close()


class WaitedImpl(PlainImpl):
    def sequential(self, n: int) -> int:
        x = 0
        for _ in range(n):
            x = self.client.submit(inc, x, pure=False).result()
        return x

    def large(self, n: int) -> bytes:
        x = self.client.submit(make, LARGE_BYTES, pure=False).result()
        for _ in range(n):
            x = self.client.submit(rotate, x, pure=False).result()
        return bytes(x)

    def map(self, n: int) -> list[int]:
        raise _timing.NotApplicable("the same as Client.map: one batch, gathered once")


class PrefectImpl(Impl):
    def __init__(self) -> None:
        if not os.environ.get("PREFECT_API_URL"):
            raise RuntimeError("no Prefect server: run it through this script, not with --one")
        super().__init__()
        import prefect
        from prefect.cache_policies import NO_CACHE
        from prefect_dask import DaskTaskRunner

        inc_task = prefect.task(cache_policy=NO_CACHE, persist_result=False)(inc)
        runner = DaskTaskRunner(address=self.address)

        @prefect.flow(task_runner=runner, persist_result=False)
        def sequential(n: int) -> int:
            x: Any = 0
            for _ in range(n):
                x = inc_task.submit(x)
            return int(x.result())

        @prefect.flow(task_runner=runner, persist_result=False)
        def mapped(n: int) -> list[int]:
            return list(inc_task.map(range(n)).result())

        make_task = prefect.task(cache_policy=NO_CACHE, persist_result=False)(make)
        rotate_task = prefect.task(cache_policy=NO_CACHE, persist_result=False)(rotate)

        @prefect.flow(task_runner=runner, persist_result=False)
        def large(n: int) -> bytes:
            x = make_task.submit(LARGE_BYTES)
            for _ in range(n):
                x = rotate_task.submit(x)
            return bytes(x.result())

        self.sequential, self.map, self.large = sequential, mapped, large  # type: ignore[method-assign]
        self.note = "persist_result=False and cache_policy=NO_CACHE on its task"


IMPLS: dict[str, Callable[[], Impl]] = {
    REFLOW: ReflowImpl,
    BY_VALUE: ByValueImpl,
    DIRECT: DirectImpl,
    PLAIN: PlainImpl,
    "distributed-waited": WaitedImpl,
    PREFECT: PrefectImpl,
}


def run_one(key: str, workload: str, n: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Set up `key`, warm up, time up to `repeats` runs of `workload`; what the parent reports."""
    return _timing.run_one(
        IMPLS[key],
        lambda impl: getattr(impl, workload),
        lambda n, result: check_result(workload, n, result),
        n,
        repeats,
        seconds,
        WARM_UP_N,
        record=lambda impl: impl.traffic(),
        tracebacks=True,
    )


@dataclass
class Result(_timing.CellResult):
    sent: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)

    def traffic(self) -> list[str]:
        """The MB the flow's process sent and fetched per run ("-" where not counted)."""
        if not self.sent or self.error:
            return ["-", "-"]
        return [f"{statistics.median(c) / 1e6:,.1f} MB" for c in (self.sent, self.received)]


# --- the parent: every cell, then the report -------------------------------------------------


def report(
    results: dict[tuple[str, str], Result],
    frameworks: list[Framework],
    workloads: list[str],
    settings: _timing.Settings,
    whole_run: str,
) -> tuple[str, bool]:
    stat = settings.stat
    lines = [
        _timing.environment(("reflow", "dask", "distributed", "prefect", "prefect-dask")),
        _timing.describe_cells(settings, f"{WARM_UP_N} elements")
        + "; every cell on a LocalCluster(n_workers=2, threads_per_worker=1, processes=True) of "
        "its own, started untimed; us/task = run time / n; vs reflow = us/task / reflow's",
    ]
    for workload in workloads:
        rows = []
        middle = ["sent / run", "fetched / run"] if workload == "large" else []
        for framework in frameworks:
            r = results.get((framework.key, workload))
            if r is not None:
                ratio = _timing.ratio_of(results, framework.key, REFLOW, workload, stat)
                traffic = r.traffic() if middle else []
                rows.append(_timing.result_row(r, framework.label, stat, ratio, traffic))
        lines += _timing.result_table(WORKLOAD_TITLES[workload], "us/task", middle, "setup", rows)
    targets = []
    if "map" in workloads:
        target = _timing.Target(REFLOW, PLAIN, "map", TARGET_RATIO, at_least=False)
        targets.append((f"reflow / plain Dask Client.map {target.describe()}", target))
    table, all_pass = _timing.targets_table("us/task", targets, results, stat)
    lines += table
    informative = [
        (f"{BY_KEY[top].label} / {BY_KEY[bottom].label}", top, bottom, workload)
        for top, bottom, workload in (
            (REFLOW, PLAIN, "sequential"),
            (REFLOW, "distributed-waited", "sequential"),
            (BY_VALUE, REFLOW, "large"),
            (REFLOW, DIRECT, "large"),
            (REFLOW, PLAIN, "large"),
            (PREFECT, REFLOW, "map"),
            (PREFECT, REFLOW, "sequential"),
        )
        if workload in workloads
    ]
    ratios = []
    for label, top, bottom, workload in informative:
        ratio = _timing.ratio_of(results, top, bottom, workload, stat)
        if ratio is not None:
            ratios.append(f"{label}, {workload}: {_timing.fmt_ratio(ratio)}")
    notes = [f"Other ratios (no target): {'; '.join(ratios)}."] if ratios else []
    notes += _timing.framework_notes([(f.key, f.label) for f in frameworks], results)
    lines += ["", *[f"- {note}" for note in notes], "", whole_run]
    return "\n".join(lines) + "\n", all_pass


def parent_main(args: Any, settings: _timing.Settings) -> int:
    from flow_overhead import PrefectServer  # its temporary API server, shared machinery

    keys, workloads = _timing.selected(args, list(BY_KEY), WORKLOADS)
    frameworks = [f for f in FRAMEWORKS if f.key in keys]
    whole_run = _timing.WholeRun()
    results: dict[tuple[str, str], Result] = {}
    server: Any = None
    with tempfile.TemporaryDirectory(
        prefix="reflow-bench-dask-", ignore_cleanup_errors=True
    ) as logs:
        env = dict(os.environ)
        home = os.path.join(logs, "prefect-home")
        os.mkdir(home)
        _timing.configure_prefect_env(home, env)
        try:
            for framework in frameworks:
                cell_env = env
                if framework.key == PREFECT:
                    server = PrefectServer(env, logs)
                    server.wait_ready()
                for workload in workloads:
                    n = framework.quick_n[workload] if args.quick else framework.full_n[workload]
                    result = Result(framework, workload, n)
                    results[framework.key, workload] = result
                    if framework.key == PREFECT:
                        if server.url is None:
                            result.error = f"unavailable: {server.error}"
                            continue
                        cell_env = {**env, "PREFECT_API_URL": server.url}
                        server.wait_idle()
                    repeats = min(settings.repeats, framework.max_runs or settings.repeats)
                    _timing.run_cell_process(
                        __file__, result, repeats, settings.seconds, logs, CHILD_TIMEOUT, cell_env
                    )
                    _timing.print_progress("dask", result, show_error=True)
        finally:
            if server is not None:
                server.stop()
    text, all_pass = report(results, frameworks, workloads, settings, whole_run.summary())
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
    args = parser.parse_args(argv)
    if args.one:
        return _timing.child_main(args, run_one, FULL_N, FULL_SECONDS)
    return parent_main(args, _timing.cell_settings(args, FULL_SECONDS, QUICK_SECONDS))


if __name__ == "__main__":
    # Run as the module `dask_overhead`, not `__main__`: the workers then import `inc` by
    # reference (bench/ is on their sys.path, inherited from this process).
    sys.exit(importlib.import_module("dask_overhead").main())
