"""How long the dashboard (`reflow ui`) takes to answer for a large run.

It writes a SQLite store holding a 10,000-task run (a map of `fetch` calls, 1 % of them
retried, a few failed, a `total` task whose upstream is every fetch, a log line per fetch), a
run of 10,000 sequential calls (a chain, `step-0` ... `step-9999`) and 300 small runs, serves
the dashboard over it with uvicorn on 127.0.0.1 (in this process, as `reflow ui` does, on a
free port), and times real HTTP requests to its pages and API: the first request to each
(nothing warm), then the median and the slowest of `--repeats` more.

The target (issue 9): the page of a 10,000-task run renders in under 2 s.

    bench/run ui                  # or: python bench/ui_pages.py [--tasks N] [--repeats R]
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _timing import environment, table_head, table_row, verdict

TARGET_SECONDS = 2.0


def write_store(path: Path, tasks: int) -> tuple[str, str, str]:
    """The store: (the map run's id, a retried task run's id, the chain run's id)."""
    from reflow.store import FlowRunRecord, LogRecord, SQLiteStore, StateRecord, TaskRunRecord

    rng = random.Random(9)
    now = time.time() - 3600
    store = SQLiteStore(path)
    small = [
        FlowRunRecord(f"small{i:04d}", f"flow{i % 7}", "Completed", "COMPLETED", now - i, now - i)
        for i in range(300)
    ]
    big = FlowRunRecord(
        "bigmap", "crawl", "Failed", "FAILED", now, now + 120, parameters={"pages": tasks}
    )
    chain = FlowRunRecord("bigchain", "steps", "Completed", "COMPLETED", now, now + 60)
    store.write(flow_runs=[*small, big, chain])

    runs, logs, retried = [], [], ""
    for i in range(tasks):
        tid = f"fetch{i:06d}"
        start = now + i * 0.01
        states = [
            StateRecord(tid, "task", "Pending", "PENDING", start),
            StateRecord(tid, "task", "Running", "RUNNING", start + 0.001, "", 1),
        ]
        attempts, state, kind = 1, "Completed", "COMPLETED"
        if rng.random() < 0.01:  # retried: two failed attempts, then the third
            retried = tid
            for a in (1, 2):
                t = start + a * 0.2
                states += [
                    StateRecord(
                        tid,
                        "task",
                        "AwaitingRetry",
                        "SCHEDULED",
                        t,
                        "retrying",
                        a,
                        "ConnectionError: reset",
                        "Traceback ...",
                    ),
                    StateRecord(tid, "task", "Retrying", "RUNNING", t + 0.1, "", a + 1),
                ]
            attempts = 3
            if rng.random() < 0.2:
                state, kind = "Failed", "FAILED"
        states.append(StateRecord(tid, "task", state, kind, start + attempts * 0.3, "", attempts))
        runs.append(
            TaskRunRecord(
                tid,
                "bigmap",
                f"fetch-0[{i}]",
                "fetch",
                state,
                kind,
                start,
                start + attempts * 0.3,
                attempts=attempts,
                states=states,
            )
        )
        logs.append(LogRecord(0, "bigmap", tid, start, 20, "reflow.runs", f"fetched page {i}"))
    ids = [r.id for r in runs]
    runs.append(
        TaskRunRecord(
            "total0",
            "bigmap",
            "total-0",
            "total",
            "TriggerFailed",
            "FAILED",
            now + 110,
            now + 110,
            upstream=ids,
        )
    )
    store.write(task_runs=runs, logs=logs)
    steps = []
    for i in range(tasks):
        tid = f"step{i:06d}"
        t = now + i * 0.005
        steps.append(
            TaskRunRecord(
                tid,
                "bigchain",
                f"step-{i}",
                "step",
                "Completed",
                "COMPLETED",
                t,
                t + 0.004,
                upstream=[f"step{i - 1:06d}"] if i else [],
                attempts=1,
                states=[
                    StateRecord(tid, "task", "Running", "RUNNING", t, "", 1),
                    StateRecord(tid, "task", "Completed", "COMPLETED", t + 0.004, "", 1),
                ],
            )
        )
    store.write(task_runs=steps)
    store.close()
    return big.id, retried, chain.id


def serve(path: Path) -> tuple[object, threading.Thread, int]:
    """The dashboard over the store on a free loopback port, in a thread."""
    import uvicorn

    from reflow.ui import create_app
    from reflow.ui.server import bind

    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(create_app(str(path)), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, sock.getsockname()[1]


def timed(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    """One GET: (seconds until the whole body arrived, its size)."""
    started = time.perf_counter()
    conn.request("GET", path, headers={"Host": "127.0.0.1"})
    answer = conn.getresponse()
    body = answer.read()
    took = time.perf_counter() - started
    if answer.status != 200:
        raise RuntimeError(f"GET {path}: {answer.status} {body[:200]!r}")
    return took, len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="task runs of the big runs")
    parser.add_argument("--repeats", type=int, help="timed requests per page (default 9)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 repeats")
    parser.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 9)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.db"
        began = time.perf_counter()
        big, retried, chain = write_store(path, args.tasks)
        wrote = time.perf_counter() - began
        server, thread, port = serve(path)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = f"{args.tasks:,}"
        pages = [
            ("runs list (302 runs, page 1)", "/"),
            (f"run page: a {n}-task map", f"/runs/{big}"),
            ("  its last timeline page", f"/runs/{big}?page={-(-(args.tasks + 1) // 50)}"),
            ("  retried task runs only", f"/runs/{big}?retried=1"),
            ("  the live refresh (fragment)", f"/fragments/runs/{big}"),
            (f"run page: {n} sequential calls", f"/runs/{chain}"),
            ("task run page (a retried one)", f"/runs/{big}/tasks/{retried}"),
            ("API: the run", f"/api/runs/{big}"),
            ("API: a page of 50 task runs", f"/api/runs/{big}/tasks?limit=50"),
            ("API: the graph", f"/api/runs/{big}/graph"),
            ("API: status (what pages poll)", f"/api/runs/{big}/status"),
        ]
        rows, worst_run_page = [], 0.0
        for label, target in pages:
            first, size = timed(conn, target)
            times = [timed(conn, target)[0] for _ in range(repeats)]
            median, slowest = statistics.median(times), max(times)
            if target.startswith("/runs/") and "/tasks/" not in target:
                worst_run_page = max(worst_run_page, first, slowest)
            rows.append(
                table_row(
                    [
                        label,
                        f"{first * 1000:.0f}",
                        f"{median * 1000:.0f}",
                        f"{slowest * 1000:.0f}",
                        f"{size / 1024:.1f}",
                    ]
                )
            )
        conn.close()
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=30)

    ok = worst_run_page < TARGET_SECONDS
    lines = [
        environment(["reflow", "fastapi", "starlette", "uvicorn", "jinja2"]),
        f"store written in {wrote:.1f} s; each page: its first request, then {repeats} more "
        "over one keep-alive connection",
        "",
        *table_head(["page", "first (ms)", "median (ms)", "slowest (ms)", "KiB"]),
        *rows,
        "",
        f"target: a run page of a {n}-task run under {TARGET_SECONDS:g} s (first request "
        f"or slowest): {worst_run_page * 1000:.0f} ms, {verdict(ok)}",
        "",
    ]
    text = "\n".join(lines)
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
