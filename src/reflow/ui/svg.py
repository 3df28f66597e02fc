"""What the dashboard's SVG drawings share: escaping, short labels, and the order and names
of the state types their colours stand for (the colours themselves are in app.css, as
`fill-TYPE` classes, so the page's legend and drawings agree)."""

from __future__ import annotations

from html import escape

TYPE_ORDER = (
    "COMPLETED",
    "RUNNING",
    "SCHEDULED",
    "PENDING",
    "PAUSED",
    "CANCELLED",
    "FAILED",
    "CRASHED",
)
"""State types in the order a stacked bar shows them."""

WORST_FIRST = (
    "CRASHED",
    "FAILED",
    "RUNNING",
    "PAUSED",
    "CANCELLED",
    "SCHEDULED",
    "PENDING",
    "COMPLETED",
)
"""Which state type a group of task runs is shown as: the first of these it has."""

KNOWN_TYPES = frozenset(TYPE_ORDER)


def attr(value: object) -> str:
    """A value escaped for an XML attribute or text."""
    return escape(str(value), quote=True)


def short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def type_class(state_type: str) -> str:
    """The CSS class suffix of a state type (unknown types look like PENDING)."""
    return state_type if state_type in KNOWN_TYPES else "PENDING"


def number(value: float) -> str:
    """A coordinate as SVG wants it: short, no exponent."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


__all__ = ["KNOWN_TYPES", "TYPE_ORDER", "WORST_FIRST", "attr", "number", "short", "type_class"]
