"""The schedules as the dashboard shows them: each with its next fire times from now and
whether a server serves it (parameters masked)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from reflow.store.base import SQLStore
from reflow.ui import models
from reflow.ui.masking import mask_value


def schedules_out(store: SQLStore, upcoming: int = 5) -> list[models.ScheduleOut]:
    """Every schedule with its next `upcoming` fire times from now."""
    from reflow.store.scheduler import SERVER_BEAT, schedule_of

    now = time.time()
    out = []
    for record in store.schedules():
        fires: list[float] = []
        try:
            schedule = schedule_of(record)
            moment = datetime.fromtimestamp(now, UTC)
            for _ in range(upcoming):
                moment = schedule.next_after(moment)
                fires.append(moment.timestamp())
        except Exception as exc:  # a schedule this reflow cannot read: shown, not fatal
            logging.getLogger("reflow.ui").warning(
                "reflow ui: schedule %s: cannot compute its fire times: %s", record.name, exc
            )
        served = (
            record.server is not None
            and record.heartbeat is not None
            and record.heartbeat >= now - 3 * SERVER_BEAT
        )
        out.append(
            models.ScheduleOut(
                name=record.name,
                flow_name=record.flow_name,
                flow_path=record.flow_path,
                kind=record.kind,
                expression=record.expression,
                timezone=record.timezone,
                parameters=mask_value(record.parameters),
                catchup=record.catchup,
                next_run=record.next_run,
                next_runs=fires,
                last_run=record.last_run,
                last_run_id=record.last_run_id,
                server=record.server,
                served=served,
            )
        )
    return out


__all__ = ["schedules_out"]
