"""Serving a flow on a schedule: `serve(flow, Cron(...) or Interval(...), store=...)`.

The schedule is kept in the store (`reflow_schedules`: flow, cron or interval, time zone, next
fire time, last run, who serves it). A scheduler thread queues a run (`submit_run`) at each fire
time; the serving process's own worker loop (`run_worker`) runs queued runs one at a time: the
scheduled ones, and any run queued in the store meanwhile (`reflow run --submit`, or
`reflow.submit_run()` from a program), which is how ad-hoc runs reach a serving process.

A fire time fires once, whichever process serves the schedule: the next fire time moves on by a
compare-and-set in the store before the run is queued. No storms: a fire time that passes while
the previous scheduled run is still waiting in the queue queues nothing, and fire times missed
while nothing served the schedule are not replayed, unless `catchup=True` (then each is queued,
the newest `catchup_limit` of them).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from reflow.schedule import Cron, Interval, Schedule, missed
from reflow.secrets import redact
from reflow.store.operations import ScheduleRecord
from reflow.store.persistence import WORKER, StorePersistence, flow_path, persistence
from reflow.store.sql import StoreError
from reflow.store.worker import run_worker, submit_run

logger = logging.getLogger("reflow.serve")

SERVER_BEAT = 5.0
"""Seconds between a server's heartbeats on its schedule (`reflow schedules ls` shows a
schedule as served while its last beat is under three of them old)."""


def schedule_of(record: ScheduleRecord) -> Schedule:
    """The schedule a stored record describes."""
    if record.kind == "cron":
        return Cron(record.expression, record.timezone)
    anchor = datetime.fromtimestamp(record.created, UTC)
    return Interval(float(record.expression), anchor)


class Scheduler:
    """Queues runs of one flow at its schedule's fire times (one per store and name)."""

    def __init__(
        self,
        flow: Any,
        schedule: Schedule,
        *,
        store: Any = None,
        name: str | None = None,
        parameters: dict[str, Any] | None = None,
        catchup: bool = False,
        catchup_limit: int = 100,
    ) -> None:
        self.flow = flow
        self.schedule = schedule
        self.store_key = store if store is not None else getattr(flow, "store", None)
        kept = persistence(True, self.store_key)
        if kept is None:
            raise StoreError("a schedule needs a store: REFLOW_STORE is 'memory'")
        self.kept: StorePersistence = kept
        self.name = name or flow.name
        self.parameters = dict(parameters or {})
        self.catchup = catchup
        self.catchup_limit = catchup_limit
        self.record: ScheduleRecord | None = None
        self.queued: list[str] = []
        """Ids of the runs this scheduler queued, in order."""

    # -- starting -----------------------------------------------------------------------------

    def start(self, now: float | None = None) -> ScheduleRecord:
        """Keep the schedule in the store with its next fire time; queue the missed fire times
        when asked to catch up."""
        now = time.time() if now is None else now
        store = self.kept.store
        kind, expression, timezone = _definition(self.schedule)
        path = flow_path(self.flow)
        earlier = store.schedule(self.name)
        same = earlier is not None and (
            earlier.kind,
            earlier.expression,
            earlier.timezone,
            earlier.flow_path,
        ) == (kind, expression, timezone, path)
        created = earlier.created if same and earlier is not None else now
        if isinstance(self.schedule, Interval) and self.schedule.anchor is None:
            self.schedule = Interval(self.schedule.seconds, datetime.fromtimestamp(created, UTC))
        record = ScheduleRecord(
            name=self.name, flow_name=self.flow.name, flow_path=path, kind=kind,
            expression=expression, timezone=timezone, created=created, updated=now,
            parameters=redact(self.parameters, self.flow._parameters.signature),
            catchup=self.catchup, server=WORKER, heartbeat=now,
            last_run=earlier.last_run if same and earlier else None,
            last_run_id=earlier.last_run_id if same and earlier else None,
        )  # fmt: skip
        moment = datetime.fromtimestamp(now, UTC)
        due = earlier.next_run if same and earlier is not None else None
        if due is not None and due <= now:
            since = datetime.fromtimestamp(due, UTC)
            times, count = missed(self.schedule, since, moment, self.catchup_limit)
            times.insert(0, since)  # the stored next run was missed too
            count += 1
            if self.catchup:
                record.next_run = self.schedule.next_after(moment).timestamp()
                store.save_schedule(record)
                kept = times[-self.catchup_limit :]
                if count > len(kept):
                    logger.warning(
                        "reflow: schedule %s missed %d runs; catching up the last %d",
                        self.name, count, len(kept),
                    )  # fmt: skip
                for fire in kept:
                    self._queue(fire.timestamp(), catching_up=True)
            else:
                logger.info(
                    "reflow: schedule %s missed %d run(s) while not served; not replayed "
                    "(serve with --catchup to run them)", self.name, count,
                )  # fmt: skip
                record.next_run = self.schedule.next_after(moment).timestamp()
                store.save_schedule(record)
        else:
            record.next_run = (
                due if due is not None else self.schedule.next_after(moment).timestamp()
            )
            store.save_schedule(record)
        self.record = store.schedule(self.name)
        return self.record or record

    # -- firing -------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> str | None:
        """Queue a run if the next fire time has come (and move the schedule on); returns
        the queued run's id, or None."""
        now = time.time() if now is None else now
        store = self.kept.store
        current = store.schedule(self.name)
        if current is None or current.next_run is None or current.next_run > now:
            self.record = current
            return None
        fire = current.next_run
        following = self.schedule.next_after(datetime.fromtimestamp(now, UTC)).timestamp()
        if not store.advance_schedule(self.name, fire, following, fire, now):
            return None  # another server took this fire time
        if current.last_run_id is not None:
            last = store.flow_run(current.last_run_id)
            if last is not None and last.state_type == "SCHEDULED":
                logger.warning(
                    "reflow: schedule %s: the run it queued last (%s) has not started yet; "
                    "nothing more is queued for %s", self.name, last.id, _iso(fire),
                )  # fmt: skip
                return None
        return self._queue(fire)

    def _queue(self, fire: float, catching_up: bool = False) -> str:
        run_id = submit_run(self.flow, store=self.store_key, **self.parameters)
        store = self.kept.store
        current = store.schedule(self.name)
        if current is not None:
            current.last_run, current.last_run_id, current.updated = fire, run_id, time.time()
            store.save_schedule(current)
            self.record = current
        self.queued.append(run_id)
        logger.info(
            "reflow: schedule %s queued run %s for %s%s", self.name, run_id, _iso(fire),
            " (catching up)" if catching_up else "",
        )  # fmt: skip
        return run_id

    def loop(self, stop: threading.Event) -> None:
        """Fire on time until `stop` is set; then say nobody serves the schedule any more."""
        store = self.kept.store
        next_beat = 0.0
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    if time.monotonic() >= next_beat:
                        store.schedule_heartbeat(self.name, WORKER, time.time())
                        next_beat = time.monotonic() + SERVER_BEAT
                except Exception:  # logged; the schedule goes on at the next tick
                    logger.exception("reflow: schedule %s could not fire", self.name)
                due = self.record.next_run if self.record and self.record.next_run else 0.0
                stop.wait(max(0.01, min(1.0, due - time.time())))
        finally:
            try:
                store.schedule_heartbeat(self.name, None, time.time())
            except Exception:
                logger.exception(
                    "reflow: schedule %s: could not record its server's end", self.name
                )


def serve(
    flow: Any,
    schedule: Schedule,
    *,
    store: Any = None,
    name: str | None = None,
    parameters: dict[str, Any] | None = None,
    catchup: bool = False,
    stop: threading.Event | None = None,
    poll: float = 0.2,
) -> int:
    """Serve `flow` on `schedule` until `stop` is set: queue its runs at their fire times and
    run the store's queued runs here. Returns how many runs this process ran."""
    stop = stop if stop is not None else threading.Event()
    scheduler = Scheduler(
        flow, schedule, store=store, name=name, parameters=parameters, catchup=catchup
    )
    scheduler.start()
    store = scheduler.store_key
    thread = threading.Thread(target=scheduler.loop, args=(stop,), name="reflow-scheduler")
    thread.start()
    try:
        return run_worker(store, poll=poll, stop=stop)
    finally:
        stop.set()
        thread.join()


def _definition(schedule: Schedule) -> tuple[str, str, str]:
    if isinstance(schedule, Cron):
        return "cron", schedule.expression, schedule.timezone
    if isinstance(schedule, Interval):
        return "interval", repr(float(schedule.seconds)), "UTC"
    raise TypeError(f"serve() takes a Cron or an Interval schedule, got {schedule!r}")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


__all__ = ["Scheduler", "schedule_of", "serve"]
