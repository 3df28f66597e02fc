"""Flows the dashboard tests keep in a store, run as `tests/ui/flows.py:NAME` (so a resume
started from the dashboard finds them again by their file)."""

from __future__ import annotations

from pathlib import Path

from reflow import Secret, flow, get_run_logger, task, unmapped


@task(retries=2, retry_delay_seconds=0.02)
def fetch(page: int, gate: str) -> int:
    """Fails (each of its 3 attempts) while the gate file names its page."""
    closed = Path(gate).read_text().split()
    if str(page) in closed:
        raise ConnectionError(f"page {page}: postgresql://app:s3cr3t-pw@db/app refused it")
    get_run_logger().info("fetched page %s with token=tok-0123456789", page)
    return page


@task
def total(pages: list[int]) -> int:
    return sum(pages)


@flow
def crawl(
    pages: int, gate: str, password: str = "hunter2-plain", api_key: Secret[str] | None = None
) -> int:
    """A map of `pages` fetches and their total: Failed while a page's fetch fails."""
    return total(fetch.map(range(pages), unmapped(gate)))


@task
def one(i: int) -> int:
    return i


@flow
def many(n: int = 30) -> int:
    """Enough task runs for the graph to group them (one node per map)."""
    return sum(one.map(range(n)).result())
