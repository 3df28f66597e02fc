"""The task graph of a run, drawn as SVG on the server.

Task runs are grouped before they are drawn, so a 10,000-element map is one node: the graph
shows each task run when there are few (`fetch-0`, `fetch-0[3]`), else each map as one node
(`fetch-0[*]`, with how many of its runs are in each state), else each task's calls as one
node (`fetch-*`). An edge joins two groups when a task run of one fed a task run of the
other (its `upstream`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from reflow.store.views import TaskRunSummary
from reflow.ui.layout import draw
from reflow.ui.svg import TYPE_ORDER, WORST_FIRST, attr, number, short, type_class

MAX_EACH = 12
"""Up to this many task runs, each is a node."""
MAX_NODES = 150
"""Past this many groups, the rest are left out of the drawing (and said to be)."""

LEVELS = ("task run", "map", "task")
"""What a node stands for at each level of grouping."""

_MAP_INDEX = re.compile(r"\[\d+\]")
_CALL_NUMBER = re.compile(r"-\d+(?=\[|/|$)")

NODE_WIDTH, NODE_HEIGHT = 210.0, 50.0


def group_of(key: str, level: int) -> str:
    """The group a call key belongs to: itself (level 0), its map (`fetch-0[*]`, level 1),
    or its task's calls (`fetch-*[*]`, level 2)."""
    if level >= 1:
        key = _MAP_INDEX.sub("[*]", key)
    if level >= 2:
        key = _CALL_NUMBER.sub("-*", key)
    return key


@dataclass(slots=True)
class Group:
    """The task runs one node stands for."""

    key: str
    task_name: str
    count: int = 0
    states: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    run_id: str | None = None
    """The task run, when the node is one."""

    @property
    def state_type(self) -> str:
        """The state type the node is shown as: its worst (failures first)."""
        return next((t for t in WORST_FIRST if self.types[t]), "PENDING")

    def describe(self) -> str:
        """`3 Completed, 1 Failed`, most frequent first."""
        return ", ".join(f"{n:,} {s}" for s, n in self.states.most_common())


@dataclass(slots=True)
class TaskGraph:
    level: int
    groups: list[Group]
    edges: list[tuple[str, str, int]]
    """(from group, to group, how many task-run edges)."""
    left_out: int = 0
    """Groups past `MAX_NODES`, not drawn."""

    @property
    def unit(self) -> str:
        return LEVELS[self.level]


def task_graph(runs: Sequence[TaskRunSummary]) -> TaskGraph:
    """Group a run's task runs (the coarsest grouping needed to stay under the limits) and
    the edges between the groups."""
    level = next(
        (
            each
            for each in range(len(LEVELS) - 1)
            if len({group_of(r.key, each) for r in runs}) <= (MAX_EACH if each == 0 else MAX_NODES)
        ),
        len(LEVELS) - 1,
    )
    groups: dict[str, Group] = {}
    of_run: dict[str, str] = {}
    for r in runs:
        key = group_of(r.key, level)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key, r.task_name, run_id=r.id)
        else:
            group.run_id = None
        group.count += 1
        group.states[r.state] += 1
        group.types[r.state_type] += 1
        of_run[r.id] = key
    kept = list(groups.values())[:MAX_NODES]
    shown = {g.key for g in kept}
    edges: Counter[tuple[str, str]] = Counter()
    for r in runs:
        target = of_run[r.id]
        if target not in shown:
            continue
        for up in r.upstream:
            source = of_run.get(up)
            if source is not None and source != target and source in shown:
                edges[(source, target)] += 1
    return TaskGraph(
        level, kept, [(a, b, n) for (a, b), n in edges.items()], len(groups) - len(kept)
    )


def render(graph: TaskGraph, href: Callable[[Group], str]) -> str:
    """The graph as an `<svg>` element: a node per group (its name, how many task runs and
    in which states, a bar of its states), an arrow per edge. `href` gives each node's link."""
    if not graph.groups:
        return ""
    drawing = draw(
        [g.key for g in graph.groups],
        [(a, b) for a, b, _ in graph.edges],
        node_width=NODE_WIDTH,
        node_height=NODE_HEIGHT,
    )
    half_w, half_h = NODE_WIDTH / 2, NODE_HEIGHT / 2
    parts = [
        f'<svg class="task-graph" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="task graph" width="{number(drawing.width)}" '
        f'height="{number(drawing.height)}" viewBox="0 0 {number(drawing.width)} '
        f'{number(drawing.height)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrow-head"/></marker></defs>',
    ]
    for _, _, points in drawing.routes:
        parts.append(f'<path class="edge" d="{_route(points, half_w)}" marker-end="url(#arrow)"/>')
    for group in graph.groups:
        cx, cy = drawing.x[group.key], drawing.y[group.key]
        x, y = cx - half_w, cy - half_h
        kind = type_class(group.state_type)
        if group.count == 1:
            sub = next(iter(group.states))
        else:
            sub = f"{group.count:,} runs \u00b7 {group.describe()}"
        title = f"{group.key}: {group.describe()}"
        parts.append(
            f'<a href="{attr(href(group))}" class="node-link">'
            f'<g class="node st-{kind}"><title>{attr(title)}</title>'
            f'<rect class="node-box" x="{number(x)}" y="{number(y)}" '
            f'width="{number(NODE_WIDTH)}" height="{number(NODE_HEIGHT)}" rx="6"/>'
            f'<rect class="node-mark fill-{kind}" x="{number(x)}" y="{number(y)}" width="5" '
            f'height="{number(NODE_HEIGHT)}" rx="2"/>'
            f'<text class="node-label" x="{number(x + 12)}" y="{number(y + 18)}">'
            f"{attr(short(group.key, 27))}</text>"
            f'<text class="node-sub" x="{number(x + 12)}" y="{number(y + 33)}">'
            f"{attr(short(sub, 34))}</text>"
        )
        parts.extend(_state_bar(group, x + 12, y + NODE_HEIGHT - 10, NODE_WIDTH - 24))
        parts.append("</g></a>")
    parts.append("</svg>")
    return "".join(parts)


def _state_bar(group: Group, x: float, y: float, width: float) -> list[str]:
    """A thin bar of the group's task runs by state type, in `TYPE_ORDER`."""
    out = []
    at = x
    for kind in TYPE_ORDER:
        n = group.types.get(kind, 0)
        if not n:
            continue
        w = width * n / group.count
        out.append(
            f'<rect class="fill-{kind}" x="{number(at)}" y="{number(y)}" '
            f'width="{number(max(w, 1.0))}" height="4"/>'
        )
        at += w
    return out


def _route(points: list[tuple[float, float]], half_w: float) -> str:
    """An edge's path: from the side of its source to the side of its target through its
    dummy points, each stretch a horizontal-tangent curve."""
    (x0, y0), (xn, yn) = points[0], points[-1]
    forward = points[1][0] >= x0
    start = (x0 + half_w if forward else x0 - half_w, y0)
    end = (xn - half_w if forward else xn + half_w, yn)
    pts = [start, *points[1:-1], end]
    d = [f"M{number(pts[0][0])},{number(pts[0][1])}"]
    for (ax, ay), (bx, by) in pairwise(pts):
        mid = (ax + bx) / 2
        d.append(
            f"C{number(mid)},{number(ay)} {number(mid)},{number(by)} {number(bx)},{number(by)}"
        )
    return " ".join(d)


__all__ = ["LEVELS", "Group", "TaskGraph", "group_of", "render", "task_graph"]
