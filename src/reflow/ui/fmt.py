"""How the pages show times, durations and counts (the server's local time, as the CLI)."""

from __future__ import annotations

import time

FINAL_TYPES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
"""State types of a run that ended (a Crashed one may still be resumed)."""


def when(timestamp: float | None) -> str:
    """`2026-11-23 09:00:01`, local time; `-` for none."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def iso(timestamp: float | None) -> str:
    """ISO 8601 with the offset, for `<time datetime=...>`."""
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))


def seconds(value: float | None) -> str:
    """`4 ms`, `0.42 s`, `12.3 s`, `4m05s`, `2h10m`; `-` for none."""
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def relative(timestamp: float | None, now: float | None = None) -> str:
    """`in 4m05s`, `12.3 s ago`."""
    if timestamp is None:
        return ""
    now = time.time() if now is None else now
    delta = timestamp - now
    return f"in {seconds(delta)}" if delta >= 0 else f"{seconds(-delta)} ago"


def duration(created: float, updated: float, state_type: str, now: float | None = None) -> float:
    """How long a run took, or has been going while it is not over."""
    if state_type in FINAL_TYPES:
        return max(0.0, updated - created)
    return max(0.0, (time.time() if now is None else now) - created)


__all__ = ["FINAL_TYPES", "duration", "iso", "relative", "seconds", "when"]
