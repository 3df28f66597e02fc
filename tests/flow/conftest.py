"""Fixtures of the flow tests: one real Dask cluster that the Dask tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A `LocalCluster` of two single-threaded worker processes, started once for the run
    (a start takes seconds). Its scheduler gives a task up at the first worker lost while
    running it, as the cluster a `DaskExecutor` starts does, so reflow's retries decide.

    Its scheduler sends tasks to the workers as they come (`worker-saturation: inf`) instead
    of queueing them until a worker thread frees: with Dask's default, each of a map's tiny
    tasks waits for a round trip through the scheduler, which made the 10,000-element map
    test 3 times slower (plain `Client.map` as much as reflow). Not for clusters whose
    workers get killed with many tasks on them: a lost worker fails all the tasks it held.
    """
    import dask
    from distributed import LocalCluster

    settings = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": float("inf"),
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        )
    try:
        yield cluster
    finally:
        cluster.close()
