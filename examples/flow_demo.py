"""reflow's flow layer on a small site crawl: map, retries, Skip, a failure, a report.

Run it with `make demo`. It fetches six pages from a simulated, flaky web server (retried at once,
retry_delay_seconds=0), parses them concurrently, skips the empty one, and writes a report whatever
happened (trigger=all_finished). The flow's reference tasks are fetch and parse, so the page that
could not be fetched fails the flow run although the report itself completed. A table sums up
every task run at the end. The run is kept, as every flow's is unless it says persist=False, in
the embedded SQLite store ($REFLOW_HOME/reflow.db, .reflow/ here by default), and read back from
it.
"""

from __future__ import annotations

import random
import time
from typing import Any

from reflow import FlowRun, Skip, flow, get_run_context, task
from reflow.states import State
from reflow.store import SQLiteStore
from reflow.task import TaskRun
from reflow.triggers import all_finished

START = time.monotonic()
PAGES = ["/", "/about", "/blog", "/careers", "/pricing", "/docs"]


class FlakySite:
    """A simulated web server: each page fails its first few requests, one page is always down.

    How often each page fails is drawn once from a seeded random generator, so the demo gives the
    same story every time whatever order the threads run in.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.failures = {page: rng.choice([0, 0, 1, 2]) for page in PAGES}
        self.failures["/pricing"] = 99  # down for good: more failures than retries
        self.latency = {page: rng.uniform(0.005, 0.03) for page in PAGES}
        self.bodies = {page: f"<title>{page.strip('/') or 'home'}</title>" for page in PAGES}
        self.bodies["/careers"] = ""  # nobody wrote it yet

    def get(self, page: str, attempt: int) -> str:
        time.sleep(self.latency[page])
        if attempt <= self.failures[page]:
            raise ConnectionError(f"GET {page}: 503 Service Unavailable")
        return self.bodies[page]


SITE = FlakySite(seed=7)


@task(retries=3, retry_delay_seconds=0)
def fetch(page: str) -> str:
    """Download one page; the server fails now and then, so retry at once."""
    run = get_run_context().task_run
    assert run is not None
    return SITE.get(page, attempt=len(run.attempts))  # 1 for the first attempt


@task
def parse(html: str) -> str:
    """The page's title; an empty page has none, and there is nothing to do for it."""
    if not html:
        raise Skip("empty page")
    return html.removeprefix("<title>").removesuffix("</title>")


@task(trigger=all_finished, skip_on_upstream_skip=False)
def report(titles: list[Any]) -> str:
    """Runs whatever happened upstream: a title, None (skipped) or a failed State per page."""
    parsed = [t for t in titles if isinstance(t, str)]
    failed = [t for t in titles if isinstance(t, State)]
    skipped = len(titles) - len(parsed) - len(failed)
    return f"{len(parsed)} parsed ({', '.join(parsed)}), {skipped} skipped, {len(failed)} failed"


@flow(reference_tasks=[fetch, parse])
def crawl(pages: list[str]) -> str:
    html = fetch.map(pages)  # one run per page, concurrently
    titles = parse.map(html)  # parse-0[i] starts as soon as fetch-0[i] is done
    return report.submit(titles).result()  # after every parse run, whatever happened


def duration_ms(run: TaskRun) -> str:
    """Time spent in attempts, from the first one's start to the last one's end."""
    if not run.attempts or run.attempts[-1].ended is None:
        return "-"  # never ran: skipped or not triggered
    return f"{(run.attempts[-1].ended - run.attempts[0].started) * 1000:.1f}"


def page_of(key: str) -> str:
    """The page a mapped run worked on: `fetch-0[4]` is the run for PAGES[4]."""
    index = key.partition("[")[2].rstrip("]")
    return PAGES[int(index)] if index else ""


def summary(flow_run: FlowRun) -> None:
    keys = {run.id: run.key or run.task_name for run in flow_run.task_runs}
    header = ("task run", "page", "state", "attempts", "duration ms", "waited for")
    rows = [
        (
            keys[run.id],
            page_of(keys[run.id]),
            run.state.name,
            str(len(run.attempts)),
            duration_ms(run),
            ", ".join(keys[up] for up in run.upstream) if len(run.upstream) < 3 else "every parse",
        )
        for run in flow_run.task_runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {3, 4}  # right-aligned columns

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header))
    print(line(tuple("-" * width for width in widths)))
    for row in rows:
        print(line(row))


def main() -> None:
    print(f"Crawling {len(PAGES)} pages (fetch: retries=3; /pricing is down, /careers is empty)\n")
    flow_run = crawl.run(PAGES)

    summary(flow_run)

    reported = next(run for run in flow_run.task_runs if run.task_name == "report")
    print(f"\nreport: {reported.state.result()}")
    state = flow_run.state
    print(f"final state: {state.name} ({state.message})")
    print(f"the error: {type(state.exception).__name__}: {state.exception}")

    with SQLiteStore() as store:  # the same default store, opened again to read the run back
        record = store.flow_run(flow_run.id)
        assert record is not None
        kept = store.task_runs(flow_run.id)
        print(
            f"stored in {store.path}: run {record.id[:8]} {record.state}, "
            f"{len(kept)} task runs, {len(store.states(record.id))} flow states"
        )

    # Without reference_tasks the only terminal run, the report, decides: it completed.
    lenient = crawl.with_options(reference_tasks=None, persist=False).run(PAGES)
    print(f"the same flow without reference_tasks would end: {lenient.state.name}")
    print(f"\ndone in {time.monotonic() - START:.2f} s")


if __name__ == "__main__":
    main()
