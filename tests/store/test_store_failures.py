"""A store that cannot take a write says so: a full database, a full disk, a read-only disk.

A run whose records could not all be written ends with `StoreError` from the flow call (after
its hooks), never as a silent loss. The disk tests mount small tmpfs file systems, which needs
root (these machines and CI run as root); elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow import flow, task
from reflow.store import SQLiteStore, StoreError


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"mount {' '.join(args)} failed")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system of the test's own."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where))
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@task
def blob(i: int) -> bytes:
    return bytes([i % 256]) * 20_000


def test_a_full_database_fails_the_flow_call_with_a_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db", inline_limit=1 << 30)
    store._query("PRAGMA max_page_count = 60")  # what a full disk looks like to SQLite
    ended: list[str] = []

    @flow(store=store, on_completion=[lambda f, r, s: ended.append(s.name)])
    def pipeline(n: int) -> int:
        return len(blob.map(range(n)).result())

    with pytest.raises(StoreError, match="database or disk is full") as raised:
        pipeline(50)

    assert "ended Completed" in str(raised.value)
    assert "cannot be resumed" in str(raised.value)
    assert ended == ["Completed"]  # the hooks still ran
    store.close()


def test_a_full_disk_fails_the_flow_call_with_a_store_error(small_disk: Path) -> None:
    @flow(store=str(small_disk / "runs.db"))
    def pipeline(n: int) -> int:
        return len(blob.map(range(n)).result())

    with pytest.raises(StoreError, match=r"disk is full|No space left"):
        pipeline(100)  # 2 MB of results on a 1 MiB disk


def test_large_results_on_a_full_disk_fail_the_flow_call(small_disk: Path, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db", inline_limit=1000, results_dir=small_disk)

    @flow(store=store)
    def pipeline(n: int) -> int:
        return len(blob.map(range(n)).result())

    with pytest.raises(StoreError, match="No space left on device"):
        pipeline(100)
    store.close()


def test_a_store_on_a_read_only_disk_is_refused_when_opened(
    small_disk: Path, tmp_path: Path
) -> None:
    SQLiteStore(small_disk / "runs.db").close()
    view = tmp_path / "read-only"
    view.mkdir()
    _mount("--bind", str(small_disk), str(view))
    try:
        _mount("-o", "remount,bind,ro", str(view))

        with pytest.raises(StoreError, match="is read-only"):
            SQLiteStore(view / "runs.db")

        @flow(store=str(view / "other.db"))
        def pipeline() -> int:
            return 1

        with pytest.raises(StoreError, match="is read-only"):
            pipeline()
    finally:
        subprocess.run(["umount", str(view)], check=False)
