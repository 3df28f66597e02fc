"""A layered drawing of a directed graph (Sugiyama's method), left to right.

1. Cycles are broken by turning round the edges a depth-first search finds going back.
2. Layers by longest path: a node sits one layer right of its furthest predecessor.
3. An edge spanning several layers gets a dummy node in each layer it crosses, so it bends
   around nodes instead of through them.
4. Each layer is ordered to reduce crossings: sweeps down and up placing each node at the
   mean position (barycenter) of its neighbours in the layer before, keeping the ordering
   with the fewest crossings seen.
5. Vertical positions: each node is pulled towards its neighbours' mean height, nodes of a
   layer kept a pitch apart (the mean of a top-down and a bottom-up placement, which keeps
   chains straight and the layer centred).

Pure Python and cheap for the graphs the dashboard draws (at most a few hundred nodes: mapped
task runs are drawn as one node).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Generic, TypeVar

N = TypeVar("N", bound=Hashable)

SWEEPS = 8
"""Ordering sweeps (down then up counts as two)."""


@dataclass(frozen=True, slots=True)
class Dummy:
    """A point where an edge crosses a layer."""

    number: int


@dataclass(slots=True)
class Drawing(Generic[N]):
    """Where everything goes: node centres, and for each edge the points it passes through
    (its source's centre, the dummy points, its target's centre)."""

    x: dict[N, float] = field(default_factory=dict)
    y: dict[N, float] = field(default_factory=dict)
    layer: dict[N, int] = field(default_factory=dict)
    routes: list[tuple[N, N, list[tuple[float, float]]]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    crossings: int = 0


def acyclic(nodes: Sequence[N], edges: Sequence[tuple[N, N]]) -> set[tuple[N, N]]:
    """The edges to turn round so the graph has no cycle (those a depth-first search from
    each node in turn finds pointing back into its own path)."""
    succ: dict[N, list[N]] = {n: [] for n in nodes}
    for u, v in edges:
        succ[u].append(v)
    state: dict[N, int] = {}  # 1: on the current path, 2: done
    back: set[tuple[N, N]] = set()
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[N, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            if i < len(succ[node]):
                stack[-1] = (node, i + 1)
                child = succ[node][i]
                seen = state.get(child)
                if seen == 1:
                    back.add((node, child))
                elif seen is None:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def layers(nodes: Sequence[N], edges: Sequence[tuple[N, N]]) -> dict[N, int]:
    """Longest-path layering of an acyclic graph: sources in layer 0."""
    indegree = dict.fromkeys(nodes, 0)
    succ: dict[N, list[N]] = {n: [] for n in nodes}
    for u, v in edges:
        succ[u].append(v)
        indegree[v] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for child in succ[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return layer


def crossings(upper: list[object], lower: list[object], links: list[tuple[object, object]]) -> int:
    """How many edges between two adjacent layers cross."""
    top = {n: i for i, n in enumerate(upper)}
    bottom = {n: i for i, n in enumerate(lower)}
    pairs = sorted((top[u], bottom[v]) for u, v in links)
    count = 0
    seen: list[int] = []  # bottom positions so far, sorted
    for _, b in pairs:
        # an edge seen before (from higher up) that ends further down crosses this one
        lo, hi = 0, len(seen)
        while lo < hi:
            mid = (lo + hi) // 2
            if seen[mid] <= b:
                lo = mid + 1
            else:
                hi = mid
        count += len(seen) - lo
        seen.insert(lo, b)
    return count


def draw(
    nodes: Sequence[N],
    edges: Sequence[tuple[N, N]],
    *,
    node_width: float = 200,
    node_height: float = 46,
    gap_x: float = 64,
    gap_y: float = 18,
    margin: float = 12,
) -> Drawing[N]:
    """Lay out the graph: node centres, edge routes, and the size of the whole."""
    drawing: Drawing[N] = Drawing()
    if not nodes:
        return drawing
    known = set(nodes)
    unique: list[tuple[N, N]] = []
    seen_edges: set[tuple[N, N]] = set()
    for u, v in edges:
        if u != v and u in known and v in known and (u, v) not in seen_edges:
            seen_edges.add((u, v))
            unique.append((u, v))
    back = acyclic(nodes, unique)
    forward = [(v, u) if (u, v) in back else (u, v) for u, v in unique]
    layer = layers(nodes, forward)

    # dummies: every edge then joins adjacent layers
    rank: dict[object, int] = {n: layer[n] for n in nodes}
    chains: list[tuple[N, N, list[object]]] = []
    links: list[tuple[object, object]] = []
    number = 0
    for (u, v), (a, b) in zip(unique, forward, strict=True):
        chain: list[object] = [a]
        for step in range(layer[a] + 1, layer[b]):
            dummy = Dummy(number)
            number += 1
            rank[dummy] = step
            chain.append(dummy)
        chain.append(b)
        links.extend(pairwise(chain))
        chains.append((u, v, chain if (u, v) == (a, b) else chain[::-1]))

    depth = max(rank.values()) + 1
    rows: list[list[object]] = [[] for _ in range(depth)]
    for item in [*nodes, *(k for k in rank if isinstance(k, Dummy))]:
        rows[rank[item]].append(item)
    preds: dict[object, list[object]] = {k: [] for k in rank}
    succs: dict[object, list[object]] = {k: [] for k in rank}
    by_gap: list[list[tuple[object, object]]] = [[] for _ in range(depth)]
    for top, bottom in links:
        preds[bottom].append(top)
        succs[top].append(bottom)
        by_gap[rank[top]].append((top, bottom))

    def total(order: list[list[object]]) -> int:
        return sum(crossings(order[i], order[i + 1], by_gap[i]) for i in range(depth - 1))

    best, fewest = [list(r) for r in rows], total(rows)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        span = range(1, depth) if down else range(depth - 2, -1, -1)
        for i in span:
            fixed = rows[i - 1] if down else rows[i + 1]
            where = {n: p for p, n in enumerate(fixed)}
            near = preds if down else succs

            rows[i] = _by_barycenter(rows[i], near, where)
        now = total(rows)
        if now < fewest:
            best, fewest = [list(r) for r in rows], now
        if fewest == 0:
            break
    rows = best
    drawing.crossings = fewest

    # heights: pulled towards the neighbours, a pitch apart within a layer
    pitch = node_height + gap_y
    tallest = max(len(r) for r in rows)
    y: dict[object, float] = {}
    for row in rows:
        offset = (tallest - len(row)) * pitch / 2
        for i, item in enumerate(row):
            y[item] = offset + i * pitch
    for sweep in range(4):
        down = sweep % 2 == 0
        order = rows if down else rows[::-1]
        near = preds if down else succs
        for row in order:
            wanted = [
                sum(y[n] for n in near[item]) / len(near[item]) if near[item] else y[item]
                for item in row
            ]
            y.update(zip(row, _spread(wanted, pitch), strict=True))
    top = min(y.values())
    for item in y:
        y[item] = y[item] - top + margin + node_height / 2

    step_x = node_width + gap_x
    x = {item: margin + rank[item] * step_x + node_width / 2 for item in rank}
    for n in nodes:
        drawing.x[n], drawing.y[n], drawing.layer[n] = x[n], y[n], layer[n]
    for u, v, chain in chains:
        drawing.routes.append((u, v, [(x[p], y[p]) for p in chain]))
    drawing.width = margin * 2 + depth * step_x - gap_x
    drawing.height = max(y.values()) + node_height / 2 + margin
    return drawing


def _by_barycenter(
    row: list[object], near: dict[object, list[object]], where: dict[object, int]
) -> list[object]:
    """`row` ordered by the mean position of each item's neighbours in the fixed layer
    (`where`); an item without neighbours there keeps its place."""

    def centre(at: int, item: object) -> float:
        around = [where[n] for n in near[item] if n in where]
        return sum(around) / len(around) if around else float(at)

    keyed = sorted((centre(at, item), at) for at, item in enumerate(row))
    return [row[at] for _, at in keyed]


def _spread(wanted: list[float], pitch: float) -> list[float]:
    """Positions as near `wanted` as the order allows, `pitch` apart: the mean of pushing
    down from the top and pushing up from the bottom (both keep the pitch, so their mean
    does)."""
    down: list[float] = []
    for w in wanted:
        down.append(w if not down else max(w, down[-1] + pitch))
    up: list[float] = []
    for w in reversed(wanted):
        up.append(w if not up else min(w, up[-1] - pitch))
    up.reverse()
    return [(a + b) / 2 for a, b in zip(down, up, strict=True)]


__all__ = ["Drawing", "Dummy", "acyclic", "crossings", "draw", "layers"]
