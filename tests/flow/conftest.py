"""Fixtures of the flow tests: one real Dask cluster that the Dask tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A `LocalCluster` of two single-threaded worker processes, started once for the run
    (a start takes seconds). Its scheduler gives a task up at the first worker lost while
    running it, as the cluster a `DaskExecutor` starts does, so reflow's retries decide."""
    import dask
    from distributed import LocalCluster

    settings = {"distributed.scheduler.allowed-failures": 0}
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        )
    try:
        yield cluster
    finally:
        cluster.close()
