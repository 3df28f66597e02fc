"""Times and durations as the CLI and the dashboard show them (the local time zone)."""

from __future__ import annotations

import time

from reflow.states import FINAL_TYPE_NAMES


def when(timestamp: float | None) -> str:
    """`2026-11-23 09:00:01`, local time; `-` for none."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


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


def run_duration(
    created: float, updated: float, state_type: str, now: float | None = None
) -> float:
    """How long a stored run took, or has been going while it has not ended."""
    if state_type in FINAL_TYPE_NAMES:
        return max(0.0, updated - created)
    return max(0.0, (time.time() if now is None else now) - created)
