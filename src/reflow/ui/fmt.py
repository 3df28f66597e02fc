"""How the pages show times, durations and counts (the server's local time, as the CLI)."""

from __future__ import annotations

import time

from reflow.humanize import run_duration as duration
from reflow.humanize import seconds, when
from reflow.states import FINAL_TYPE_NAMES as FINAL_TYPES


def iso(timestamp: float | None) -> str:
    """ISO 8601 with the offset, for `<time datetime=...>`."""
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))


def relative(timestamp: float | None, now: float | None = None) -> str:
    """`in 4m05s`, `12.3 s ago`."""
    if timestamp is None:
        return ""
    now = time.time() if now is None else now
    delta = timestamp - now
    return f"in {seconds(delta)}" if delta >= 0 else f"{seconds(-delta)} ago"


__all__ = ["FINAL_TYPES", "duration", "iso", "relative", "seconds", "when"]
