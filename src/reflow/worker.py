"""`reflow.worker.run(store)`: a worker that runs queued flow runs (see `reflow.submit_run`).

The durability layer does the work (`reflow.store.run_worker`); this module names it where the
docs and the `reflow worker` command look for it, and loads the store only when called.
"""

from __future__ import annotations

from typing import Any


def run(
    store: Any = None,
    *,
    max_runs: int | None = None,
    idle_exit: float | None = None,
    poll: float = 0.2,
    stale_after: float | None = None,
) -> int:
    """Run queued (and crashed) flow runs from `store` until `max_runs` ran or nothing came
    for `idle_exit` seconds (None: forever); returns how many it ran."""
    from reflow.store.worker import run_worker

    return run_worker(
        store, max_runs=max_runs, idle_exit=idle_exit, poll=poll, stale_after=stale_after
    )
