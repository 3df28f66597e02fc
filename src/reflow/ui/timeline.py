"""The attempt timeline of a run (a Gantt chart), drawn as SVG on the server.

One row per task run (or atom), read from its state history: the time it waited to start
(thin grey), each attempt a bar coloured by how it ended (green Completed, red failed, blue
still running, ...), the wait before each retry hatched between them, a diamond for a run that
ended without an attempt (Skipped, Cached, TriggerFailed), and reverts of atoms as bars too.
A legend names the colours; hovering over a bar shows its attempt, state, duration and error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from reflow.store.records import StateRecord
from reflow.ui.masking import mask_text
from reflow.ui.svg import attr, number, short, type_class

LABEL_WIDTH, CHART_WIDTH = 230.0, 820.0
ROW_HEIGHT, BAR_HEIGHT = 22.0, 12.0
LEGEND_HEIGHT, AXIS_HEIGHT = 40.0, 26.0

LEGEND = (
    ("bar fill-COMPLETED", "attempt completed"),
    ("bar fill-FAILED", "attempt failed"),
    ("bar fill-RUNNING", "running"),
    ("wait", "wait before a retry"),
    ("queued", "waiting to start"),
    ("bar fill-CANCELLED", "cancelled, reverted"),
    ("bar fill-CRASHED", "crashed"),
    ("bar fill-PAUSED", "paused"),
    ("mark", "ended without running"),
)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a run's time: `kind` is "queued", "attempt", "revert", "wait" or "mark"
    (an end without an attempt); `state_type` picks its colour."""

    kind: str
    start: float
    end: float
    state: str
    state_type: str
    attempt: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the chart."""

    label: str
    segments: list[Segment]
    href: str | None = None


def segments(states: Sequence[StateRecord], until: float) -> list[Segment]:
    """A run's stretches of time from its state changes; what is still going on ends at
    `until` (now, or when the run was last updated)."""
    out: list[Segment] = []
    queued: float | None = None
    attempt: StateRecord | None = None
    wait: StateRecord | None = None

    def close_queued(at: float) -> None:
        nonlocal queued
        if queued is not None:
            out.append(Segment("queued", queued, at, "Pending", "PENDING", note="waiting to start"))
            queued = None

    def close_wait(at: float) -> None:
        nonlocal wait
        if wait is not None:
            note = f"wait before attempt {wait.attempt + 1}: {_took(at - wait.timestamp)}"
            out.append(
                Segment(
                    "wait", wait.timestamp, at, "AwaitingRetry", "SCHEDULED", wait.attempt, note
                )
            )
            wait = None

    def close_attempt(at: float, state: str, state_type: str, error: str | None) -> None:
        nonlocal attempt
        if attempt is None:
            return
        kind = "revert" if attempt.name == "Reverting" else "attempt"
        what = "revert" if kind == "revert" else f"attempt {attempt.attempt}"
        note = f"{what}: {state} after {_took(at - attempt.timestamp)}"
        if error:
            note += f"\n{error}"
        out.append(Segment(kind, attempt.timestamp, at, state, state_type, attempt.attempt, note))
        attempt = None

    for s in states:
        if s.type == "PENDING" or (s.type == "SCHEDULED" and s.name != "AwaitingRetry"):
            if queued is None and attempt is None:
                queued = s.timestamp
        elif s.type == "RUNNING":
            close_queued(s.timestamp)
            close_wait(s.timestamp)
            close_attempt(s.timestamp, "interrupted", "PENDING", None)
            attempt = s
        elif s.name == "AwaitingRetry":
            close_attempt(s.timestamp, "failed, retried", "FAILED", s.error or s.message)
            wait = s
        else:
            close_queued(s.timestamp)
            close_wait(s.timestamp)
            if attempt is not None:
                close_attempt(s.timestamp, s.name, s.type, s.error or s.message or None)
            else:
                note = f"{s.name}: {s.message}" if s.message else s.name
                out.append(
                    Segment("mark", s.timestamp, s.timestamp, s.name, s.type, s.attempt, note)
                )
    close_queued(until)
    close_wait(until)
    if attempt is not None:
        close_attempt(until, "Running", "RUNNING", None)
    return out


def render(rows: Sequence[Row]) -> str:
    """The rows as an `<svg>` Gantt chart with a legend and a time axis (seconds from the
    earliest start shown)."""
    spans = [s for row in rows for s in row.segments]
    if not spans:
        return ""
    t0 = min(s.start for s in spans)
    t1 = max(s.end for s in spans)
    span = max(t1 - t0, 1e-3)
    scale = CHART_WIDTH / span
    top = LEGEND_HEIGHT + AXIS_HEIGHT
    width = LABEL_WIDTH + CHART_WIDTH + 24
    height = top + ROW_HEIGHT * len(rows) + 6

    def at(t: float) -> float:
        return LABEL_WIDTH + (t - t0) * scale

    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="attempt timeline" width="{number(width)}" height="{number(height)}" '
        f'viewBox="0 0 {number(width)} {number(height)}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>',
    ]
    parts.extend(_legend())
    step = _tick(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = at(t0 + tick)
        parts.append(
            f'<line class="grid" x1="{number(x)}" y1="{number(top - 4)}" x2="{number(x)}" '
            f'y2="{number(height - 4)}"/><text class="axis" x="{number(x)}" '
            f'y="{number(top - 8)}">{attr(_tick_label(tick, step))}</text>'
        )
        tick += step
    for i, row in enumerate(rows):
        y = top + i * ROW_HEIGHT
        middle = y + ROW_HEIGHT / 2
        if i % 2:
            parts.append(
                f'<rect class="stripe" x="0" y="{number(y)}" width="{number(width)}" '
                f'height="{number(ROW_HEIGHT)}"/>'
            )
        label = (
            f'<text class="row-label" x="6" y="{number(middle + 4)}">'
            f"<title>{attr(row.label)}</title>{attr(short(row.label, 34))}</text>"
        )
        if row.href:
            label = f'<a href="{attr(row.href)}">{label}</a>'
        parts.append(label)
        for s in row.segments:
            parts.append(_segment(s, at, middle))
    parts.append("</svg>")
    return "".join(parts)


def _segment(s: Segment, at: object, middle: float) -> str:
    assert callable(at)
    x0, x1 = at(s.start), at(s.end)
    title = f"<title>{attr(mask_text(s.note or s.state))}</title>"
    kind = type_class(s.state_type)
    if s.kind == "mark":
        r = 5.0
        return (
            f'<path class="mark fill-{kind}" d="M{number(x0)},{number(middle - r)} '
            f"l{number(r)},{number(r)} l{number(-r)},{number(r)} l{number(-r)},{number(-r)} "
            f'z">{title}</path>'
        )
    if s.kind == "queued":
        return (
            f'<rect class="queued" x="{number(x0)}" y="{number(middle - 1)}" '
            f'width="{number(max(x1 - x0, 1.0))}" height="2">{title}</rect>'
        )
    if s.kind == "wait":
        return (
            f'<rect class="wait" x="{number(x0)}" y="{number(middle - 4)}" '
            f'width="{number(max(x1 - x0, 2.0))}" height="8">{title}</rect>'
        )
    w = max(x1 - x0, 3.0)
    bar = (
        f'<rect class="bar {s.kind} fill-{kind}" x="{number(x0)}" '
        f'y="{number(middle - BAR_HEIGHT / 2)}" width="{number(w)}" '
        f'height="{number(BAR_HEIGHT)}" rx="2">{title}</rect>'
    )
    if s.kind == "attempt" and s.attempt and w >= 14:
        bar += (
            f'<text class="bar-text" x="{number(x0 + w / 2)}" y="{number(middle + 3.5)}">'
            f"{s.attempt}</text>"
        )
    return bar


def _legend() -> list[str]:
    """The colours' names, in two lines when one is not wide enough."""
    out, x, y = [], 6.0, 10.0
    for css, text in LEGEND:
        room = 16 + 6.4 * len(text) + 14
        if x + room > LABEL_WIDTH + CHART_WIDTH:
            x, y = 6.0, y + 18
        if css == "mark":
            shape = (
                f'<path class="mark fill-COMPLETED" d="M{number(x + 6)},{number(y - 6)} '
                'l6,6 -6,6 -6,-6 z"/>'
            )
        elif css == "queued":
            shape = (
                f'<rect class="queued" x="{number(x)}" y="{number(y - 1)}" width="12" height="2"/>'
            )
        elif css == "wait":
            shape = (
                f'<rect class="wait" x="{number(x)}" y="{number(y - 4)}" width="12" height="8"/>'
            )
        else:
            shape = (
                f'<rect class="{css}" x="{number(x)}" y="{number(y - 6)}" width="12" '
                'height="12" rx="2"/>'
            )
        out.append(shape)
        out.append(
            f'<text class="legend" x="{number(x + 16)}" y="{number(y + 4)}">{attr(text)}</text>'
        )
        x += room
    return out


def _tick(span: float) -> float:
    """A round step giving about 8 ticks over `span` seconds."""
    raw = span / 8
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _tick_label(t: float, step: float) -> str:
    if t == 0:
        return "0"
    if step < 1:
        return f"+{t * 1000:.0f} ms" if step < 0.1 else f"+{t:.1f} s"
    if t < 120:
        return f"+{t:.0f} s"
    if t < 7200:
        return f"+{t / 60:.0f} min" if step >= 60 else f"+{int(t // 60)}m{int(t % 60):02d}s"
    return f"+{t / 3600:.1f} h"


def _took(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


__all__ = ["LEGEND", "Row", "Segment", "render", "segments"]
