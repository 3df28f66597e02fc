"""The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright) against a real `reflow ui` process. It opens the runs list, clicks into a run that
failed after retrying, sees the retried attempts on the timeline, clicks Resume and watches
the run complete; each page is screenshotted.

Screenshots go to a temporary folder; `REFLOW_UPDATE_SCREENSHOTS=1` writes them to docs/img/
instead (the ones docs/ui.md shows).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import failed_crawl, run_flow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("REFLOW_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path / "shots"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A store with a few runs (one failed after retries) and `reflow ui` serving it:
    (its URL, the failed run's id, the gate file that makes its pages fail)."""
    store = str(tmp_path / "runs.db")
    run_flow(store, "many", "n=200")
    run_id, gate = failed_crawl(store, tmp_path, pages=6)
    process = subprocess.Popen(
        [sys.executable, "-m", "reflow.cli", "ui", "--store", store, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+)/", first)
    assert found is not None, first
    try:
        yield found[1], run_id, gate
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()


def test_a_failed_run_is_found_its_retries_seen_and_it_is_resumed(
    browser: Any, dashboard: tuple[str, str, Path], shots: Path
) -> None:
    url, run_id, gate = dashboard
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))

    page.goto(url + "/")
    rows = page.locator("table.runs tbody tr")
    assert rows.count() == 2
    page.screenshot(path=str(shots / "runs.png"), full_page=True)

    page.locator("table.runs tbody tr", has_text="Failed").locator("a").first.click()
    page.wait_for_url(f"{url}/runs/{run_id}")
    assert page.locator("[data-run-state]").inner_text() == "Failed"
    timeline = page.locator("svg.timeline")
    failed_attempts = timeline.locator("rect.bar.attempt.fill-FAILED")
    assert failed_attempts.count() == 1 + 3  # the flow run's, and fetch-0[1]'s three attempts
    assert timeline.locator("rect.wait").count() == 2 + 1  # two waits before retries, legend
    assert page.locator("svg.task-graph g.node").count() == 6 + 1  # the fetches, total-0
    page.screenshot(path=str(shots / "run-failed.png"), full_page=True)

    page.locator("svg.timeline a", has_text="fetch-0[1]").click()
    page.wait_for_url(re.compile(r".*/tasks/.*"))
    assert page.locator("details summary").count() == 3  # each failed attempt's traceback
    page.screenshot(path=str(shots / "task.png"), full_page=True)
    page.go_back()

    gate.write_text("")  # the service is back: the resumed run completes
    page.locator("button[data-resume]").click()
    page.locator("[data-message]").wait_for(state="visible")
    assert "resuming flow run" in page.locator("[data-message]").inner_text()
    page.locator('[data-run-state]:text-is("Completed")').wait_for(timeout=60_000)
    assert page.locator("button[data-resume]").is_disabled()
    page.screenshot(path=str(shots / "run-resumed.png"), full_page=True)

    page.goto(url + "/")
    page.locator("table.runs", has_text="Completed").wait_for()
    assert "Failed" not in page.locator("table.runs").inner_text()
    assert problems == []
