"""Deleting old runs, and collecting the result files no row names any more: `Pruning`, mixed
into `SQLStore` so both backends have it.

`delete_runs` deletes the runs that match (old enough, in the states asked for) with all that is
kept of them: their subflow runs, task runs, states, logs, cancel requests, atoms rows and
retry histories. A running run is never deleted: the states it may be in (Pending, Running)
are refused, and each run's state is checked again by the statement that deletes it, so a run
resumed meanwhile stays.

`collect_result_files` removes the files of the results folder that no row names (a deleted
run's, an evicted cache entry's). A writer writes a result's file before it commits the row that
names it, so a file is only collected once it is older than a grace period, and a file a writer
is reusing is put back (see `collect_result_files`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from reflow.store.files import PREFIX, ResultFiles

ENDED = ("COMPLETED", "FAILED", "CANCELLED")
"""The state types deleted when no `states` are given: runs that ended."""
RUNNING = ("RUNNING", "PENDING")
"""State types never deleted: a process may be running the run."""
CHUNK = 500
"""Ids a statement carries (under SQLite's limit on variables)."""

REFERENCES = (  # (table, encoding column, blob column): every place a result file is named
    ("reflow_flow_runs", "result_encoding", "result"),
    ("reflow_flow_runs", "call_encoding", "call"),
    ("reflow_task_runs", "result_encoding", "result"),
    ("reflow_cache", "result_encoding", "result"),
    ("reflow_atom_runs", "store_encoding", "store"),
    ("reflow_atoms", "result_encoding", "result"),
    ("reflow_retry_histories", "value_encoding", "value"),
)
DEPENDENTS = (  # (table, column naming the run): what is kept of a run besides its row
    ("reflow_task_runs", "flow_run_id"),
    ("reflow_states", "run_id"),
    ("reflow_logs", "flow_run_id"),
    ("reflow_cancel_requests", "run_id"),
    ("reflow_atom_runs", "run_id"),
    ("reflow_atoms", "run_id"),
    ("reflow_retry_histories", "run_id"),
)


@dataclass(frozen=True, slots=True)
class CollectedFiles:
    """What `collect_result_files` removed (or, in a dry run, would remove)."""

    paths: list[Path] = field(default_factory=list)
    bytes: int = 0


class Pruning:
    """Deleting runs and collecting result files, over the SQL store's connection."""

    placeholder: str
    files: ResultFiles | None

    def _transaction(self) -> AbstractContextManager[Any]:  # pragma: no cover - SQLStore's
        raise NotImplementedError

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def delete_runs(
        self,
        *,
        older_than: float | timedelta | None = None,
        states: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Delete runs and everything kept of them; return the ids of the runs deleted (the
        runs chosen, then their subflow runs).

        `older_than`: seconds (or a `timedelta`) since the run last changed. `states`: state
        names ("Completed", "Crashed") or types ("FAILED"); default: runs that ended
        (Completed, Failed and Cancelled types). `run_ids`: only these runs. Subflow runs are
        deleted with their parent, not chosen alone. `dry_run`: delete nothing, return what
        would be deleted.
        """
        p = self.placeholder
        where: list[str] = ["parent_id IS NULL"]
        args: list[Any] = []
        chosen = list(states) if states is not None else list(ENDED)
        refused = [s for s in chosen if s.upper() in RUNNING]
        if refused or not chosen:
            raise ValueError(
                f"delete_runs(states={chosen!r}): runs that are Pending or Running are never "
                "deleted (a process may be running them); a run whose process died is Crashed "
                "once reflow.store.mark_crashed() has looked"
                if refused
                else "delete_runs(states=[]) chooses nothing: give some states, or None"
            )
        marks = ", ".join([p] * len(chosen))
        where.append(f"(state IN ({marks}) OR state_type IN ({marks}))")
        args += [*chosen, *chosen]
        if older_than is not None:
            seconds = (
                older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
            )
            if seconds < 0:
                raise ValueError(f"older_than is 0 or more seconds, got {older_than!r}")
            where.append(f"updated < {p}")
            args.append(time.time() - seconds)
        ids = None if run_ids is None else set(run_ids)
        candidates = self._query(
            f"SELECT id FROM reflow_flow_runs WHERE {' AND '.join(where)} ORDER BY created, id",
            tuple(args),
        )
        roots = [row[0] for row in candidates if ids is None or row[0] in ids]
        if dry_run:
            return roots + self._descendants(roots)
        deleted: list[str] = []
        for start in range(0, len(roots), CHUNK):
            deleted += self._delete_chunk(roots[start : start + CHUNK])
        return deleted

    def _delete_chunk(self, roots: list[str]) -> list[str]:
        """One transaction: the roots still not running, then their subflows, then what is
        kept of them all. The first statement writes, so SQLite takes its write lock at once."""
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"DELETE FROM reflow_flow_runs WHERE id IN ({', '.join([p] * len(roots))}) "
                "AND state_type NOT IN ('RUNNING', 'PENDING') RETURNING id",
                tuple(roots),
            )
            gone = [row[0] for row in cur.fetchall()]
            everything, level = list(gone), gone
            while level:  # subflows, level by level
                found: list[str] = []
                for chunk in _chunks(level):
                    cur.execute(
                        f"DELETE FROM reflow_flow_runs WHERE parent_id IN "
                        f"({', '.join([p] * len(chunk))}) RETURNING id",
                        tuple(chunk),
                    )
                    found += [row[0] for row in cur.fetchall()]
                everything += found
                level = found
            for table, column in DEPENDENTS:
                for chunk in _chunks(everything):
                    cur.execute(
                        f"DELETE FROM {table} WHERE {column} IN ({', '.join([p] * len(chunk))})",
                        tuple(chunk),
                    )
            return everything

    def _descendants(self, roots: list[str]) -> list[str]:
        found: list[str] = []
        level = roots
        while level:
            children: list[str] = []
            for chunk in _chunks(level):
                rows = self._query(
                    "SELECT id FROM reflow_flow_runs WHERE parent_id IN "
                    f"({', '.join([self.placeholder] * len(chunk))}) ORDER BY created, id",
                    tuple(chunk),
                )
                children += [row[0] for row in rows]
            found += children
            level = children
        return found

    def cache_expire(self, now: float | None = None, *, dry_run: bool = False) -> int:
        """Delete the task cache's entries that expired (before `now`); how many (`dry_run`:
        how many would be deleted)."""
        where = f"FROM reflow_cache WHERE expires IS NOT NULL AND expires < {self.placeholder}"
        at = (time.time() if now is None else now,)
        if dry_run:
            return int(self._query(f"SELECT COUNT(*) {where}", at)[0][0])
        with self._transaction() as cur:
            cur.execute(f"DELETE {where}", at)
            return int(cur.rowcount)

    def referenced_files(self) -> set[str]:
        """The result files the rows name (paths relative to the results folder)."""
        names: set[str] = set()
        for table, encoding, blob in REFERENCES:
            rows = self._query(
                f"SELECT {blob} FROM {table} WHERE {encoding} LIKE {self.placeholder}",
                (PREFIX + "%",),
            )
            names.update(str(json.loads(bytes(row[0]))["file"]) for row in rows)
        return names

    def collect_result_files(
        self, grace: float | timedelta = 3600.0, *, dry_run: bool = False
    ) -> CollectedFiles:
        """Remove the result files no row names, once older than `grace` seconds (a writer
        writes a file before committing its row: a younger file may be about to be named).

        The candidates are listed before the rows are read, so a row committed meanwhile
        keeps its file. A writer reusing a file that exists touches it first; a candidate is
        renamed aside, and put back if it was touched since it was listed (a writer that
        finds it gone writes it again). A store with no results folder has nothing to collect.
        """
        files = self.files
        if files is None or not files.folder.is_dir():
            return CollectedFiles()
        cutoff = time.time() - _seconds(grace)
        candidates = [(path, size) for path, size, mtime in _walk(files.folder) if mtime < cutoff]
        named = self.referenced_files()
        unnamed = [
            (path, size)
            for path, size in candidates
            if path.name.startswith(".") or path.relative_to(files.folder).as_posix() not in named
        ]
        if dry_run:
            return CollectedFiles([p for p, _ in unnamed], sum(s for _, s in unnamed))
        removed: list[Path] = []
        freed = 0
        for path, size in unnamed:
            if _remove_unless_touched(path, cutoff):
                removed.append(path)
                freed += size
        for folder in sorted((d for d in files.folder.iterdir() if d.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        return CollectedFiles(removed, freed)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _walk(folder: Path) -> Iterator[tuple[Path, int, float]]:
    """(path, size, mtime) of each file in the results folder: `xx/<sha256>`, and the
    `.partial` files of writes that never finished."""
    for sub in folder.iterdir():
        if not sub.is_dir():
            continue
        for entry in os.scandir(sub):
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                yield Path(entry.path), info.st_size, info.st_mtime


def _remove_unless_touched(path: Path, cutoff: float) -> bool:
    """Remove `path` unless a writer touched it since `cutoff` (then it is put back)."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.collecting")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False  # gone already (another collector)
    if os.stat(aside).st_mtime >= cutoff:  # a writer reused it meanwhile: it stays
        if path.exists():  # and wrote it again, since it was aside: the same bytes
            os.unlink(aside)
        else:
            os.rename(aside, path)
        return False
    os.unlink(aside)
    return True


__all__ = ["CollectedFiles", "Pruning"]
