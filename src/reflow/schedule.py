"""Schedules: when a flow runs by itself. `Cron("0 9 * * 1-5", "Europe/Paris")`, `Interval(1800)`.

A schedule answers one question, `next_after(moment)`: the first fire time strictly after it, as
an aware UTC `datetime`. `reflow serve` asks it after each run it fires.

Cron expressions are read by croniter against the **wall clock of the schedule's time zone**,
so "9:00 on weekdays" stays 9:00 local time across daylight-saving changes. Two wall times need
a rule, and follow Python's (PEP 495):

- a time the clock skips (spring forward, 02:30 when clocks jump from 02:00 to 03:00) fires as
  much later as the clock jumped: at 03:30;
- a time the clock shows twice (fall back) fires once, the first time.

An interval fires every `seconds` of elapsed time from its anchor (when it was first served),
whatever the clocks say. croniter is imported when a cron schedule is made, not before.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Schedule(Protocol):
    """When a flow runs: the fire times after any moment."""

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment` (aware), as an aware UTC datetime."""
        ...

    def describe(self) -> str:
        """How the schedule is written: `cron 0 9 * * 1-5 (Europe/Paris)`, `every 30m`."""
        ...


def zone(name: str) -> ZoneInfo:
    """The time zone `name` (an IANA name such as Europe/Paris), or a ValueError that says so."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Paris, "
            "America/New_York or UTC"
        ) from None


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression (5 fields, or 6 with seconds) read in the wall clock of `timezone`."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        from croniter import croniter

        zone(self.timezone)
        if not isinstance(self.expression, str) or not croniter.is_valid(self.expression):
            raise ValueError(
                f"invalid cron expression {self.expression!r}: use five fields, minute hour "
                "day-of-month month day-of-week, e.g. '0 9 * * 1-5' (9:00 on weekdays)"
            )

    def next_after(self, moment: datetime) -> datetime:
        from croniter import croniter

        tz = zone(self.timezone)
        after = _aware(moment)
        wall = after.astimezone(tz).replace(tzinfo=None)  # naive wall-clock time
        times = croniter(self.expression, wall)
        while True:
            candidate: datetime = times.get_next(datetime)
            fire = candidate.replace(tzinfo=tz)  # fold=0: a skipped time moves later
            if fire.astimezone(UTC) > after:  # a repeated hour's second pass: already fired
                return fire.astimezone(UTC)

    def describe(self) -> str:
        return f"cron {self.expression} ({self.timezone})"


@dataclass(frozen=True, slots=True)
class Interval:
    """Every `seconds` seconds of elapsed time, counted from `anchor` (aware; default: the
    epoch)."""

    seconds: float
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not self.seconds > 0:
            raise ValueError(f"an interval is a duration above 0, got {self.seconds!r}")

    def next_after(self, moment: datetime) -> datetime:
        after = _aware(moment)
        anchor = (
            _aware(self.anchor) if self.anchor is not None else datetime(1970, 1, 1, tzinfo=UTC)
        )
        elapsed = (after - anchor).total_seconds()
        if elapsed < 0:
            return anchor.astimezone(UTC)
        ticks = int(elapsed // self.seconds) + 1
        fire = anchor + timedelta(seconds=ticks * self.seconds)
        if fire <= after:  # rounding at the edge
            fire += timedelta(seconds=self.seconds)
        return fire.astimezone(UTC)

    def describe(self) -> str:
        return f"every {format_duration(self.seconds)}"


def missed(
    schedule: Schedule, since: datetime, until: datetime, limit: int
) -> tuple[list[datetime], int]:
    """The fire times in `(since, until]`: the newest `limit` of them, oldest first, and how
    many there were (counted up to a million)."""
    kept: deque[datetime] = deque(maxlen=max(limit, 0))
    count, moment = 0, since
    while count < 1_000_000:
        moment = schedule.next_after(moment)
        if moment > until:
            break
        kept.append(moment)
        count += 1
    return list(kept), count


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `30m`, `1h30m`, `1s`, `500ms`, `2d` or `90` (seconds)."""
    raw = text.strip().lower()
    try:
        return _positive(float(raw), text)
    except ValueError:
        pass
    position, total = 0, 0.0
    for match in _PART.finditer(raw):
        if raw[position : match.start()].strip():
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0 or raw[position:].strip():
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit, such as 30s, 30m, 1h30m, "
            "2d (or a number of seconds)"
        )
    return _positive(total, text)


def _positive(seconds: float, text: str) -> float:
    if not seconds > 0:
        raise ValueError(f"a duration must be above 0, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """`1800` -> `30m`, `5400` -> `1h30m`, `1.5` -> `1.5s`."""
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = round(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(
            f"{moment!r} has no time zone: give an aware datetime (e.g. datetime.now(UTC))"
        )
    return moment


__all__ = [
    "Cron",
    "Interval",
    "Schedule",
    "format_duration",
    "missed",
    "parse_duration",
    "zone",
]
