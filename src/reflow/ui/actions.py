"""The dashboard's resume and cancel buttons, through the same functions as the CLI.

Cancel is `reflow.store.control.cancel`, as `reflow runs cancel` calls it. Resume checks the
run with `reflow.store.control.check_resumable` (the CLI's own check), then runs
`reflow runs resume RUN` itself in a process of its own: the flow's code runs there, not in
the web server, and the run goes on if the dashboard stops. Its standard error (the run's log
lines, or the command's one-line error) goes to the dashboard's log, and its last lines and
exit code are shown on the run's page.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from reflow.store.base import SQLStore
from reflow.store.control import Cancelled, Refused, cancel, check_resumable
from reflow.store.records import FlowRunRecord

logger = logging.getLogger("reflow.ui")


@dataclass(slots=True)
class Resumption:
    """A `reflow runs resume` process this dashboard started."""

    run_id: str
    pid: int
    started: float
    returncode: int | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    """Its last lines of standard error."""
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return not self.ended.is_set()


class Actions:
    """Resumes and cancels runs of one store (`location`: what `--store` names it as)."""

    def __init__(self, store: SQLStore, location: str | None) -> None:
        self.store = store
        self.location = location
        self._lock = threading.Lock()
        self._resumptions: dict[str, Resumption] = {}

    def cancel(self, record: FlowRunRecord) -> Cancelled:
        from reflow.store.persistence import WORKER

        return cancel(self.store, record, f"reflow ui ({WORKER})")

    def resumption(self, run_id: str) -> Resumption | None:
        """The latest resume of the run started here, if any."""
        with self._lock:
            return self._resumptions.get(run_id)

    def resume(self, record: FlowRunRecord) -> Resumption:
        """Start `reflow runs resume` for the run; `Refused` when it cannot be resumed (or a
        resume started here still runs)."""
        check_resumable(record, atoms=bool(self.store.atoms_run_ids([record.id])))
        with self._lock:
            earlier = self._resumptions.get(record.id)
            if earlier is not None and earlier.running:
                raise Refused(
                    f"flow run {record.id} is being resumed already (process {earlier.pid}, "
                    "started from this dashboard)"
                )
            command = [sys.executable, "-m", "reflow.cli", "runs", "resume", record.id]
            if self.location is not None:
                command += ["--store", self.location]
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                env=dict(os.environ),
            )
            started = self._resumptions[record.id] = Resumption(record.id, process.pid, time.time())
        logger.info("reflow ui: resuming flow run %s (process %d)", record.id, process.pid)
        threading.Thread(
            target=self._follow,
            args=(process, started),
            name=f"reflow-ui-resume-{process.pid}",
            daemon=True,
        ).start()
        return started

    def _follow(self, process: subprocess.Popen[str], started: Resumption) -> None:
        """Pass the process's standard error on to the log, keep its tail, reap it."""
        assert process.stderr is not None
        with process.stderr:
            for line in process.stderr:
                text = line.rstrip()
                started.tail.append(text)
                logger.info("reflow ui: resume %s: %s", started.run_id[:12], text)
        started.returncode = process.wait()
        started.ended.set()
        log = logger.info if started.returncode == 0 else logger.warning
        log(
            "reflow ui: resume of flow run %s ended (exit code %d)",
            started.run_id,
            started.returncode,
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the resumes started here to end; False when `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            started = list(self._resumptions.values())
        for each in started:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not each.ended.wait(left):
                return False
        return True


__all__ = ["Actions", "Resumption"]
