"""From a flow pattern to a checked graph: nodes (atoms and retry controllers), the edges
between them, and which controllers each node is inside. Everything wrong with a flow is
found here, before anything runs, and named."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reflow.atoms.atom import Atom
from reflow.atoms.patterns import GraphFlow, LinearFlow, Pattern
from reflow.atoms.retry import Retry


class FlowError(ValueError):
    """The flow cannot run as built: a missing requirement, an ambiguous provider, a cycle,
    a duplicate name. Raised before anything runs."""


@dataclass(eq=False)
class Node:
    """One atom or retry controller of a compiled flow."""

    atom: Atom
    index: int
    scopes: tuple[Node, ...]
    """The controllers around this node, outermost first."""
    before: set[Node] = field(default_factory=set)
    """Nodes that must succeed before this one runs."""
    after: set[Node] = field(default_factory=set)
    members: list[Node] = field(default_factory=list)
    """For a controller: every node of its scope (nested ones included)."""

    @property
    def name(self) -> str:
        return self.atom.name

    @property
    def is_retry(self) -> bool:
        return isinstance(self.atom, Retry)

    @property
    def controller(self) -> Node | None:
        """The nearest controller around this node."""
        return self.scopes[-1] if self.scopes else None

    def __repr__(self) -> str:
        return f"<Node {self.name}>"


def compile_flow(flow: Pattern | Atom, store: Mapping[str, Any]) -> list[Node]:
    """Check `flow` against the initial `store` and compile it to its nodes."""
    nodes: list[Node] = []
    seen: dict[str, Node] = {}

    def new(atom: Atom, scopes: tuple[Node, ...]) -> Node:
        if atom.name in seen:
            raise FlowError(
                f"two atoms are named {atom.name!r}: names identify atoms in results, "
                "histories and failures, so each must be unique in a flow"
            )
        node = Node(atom, len(nodes), scopes)
        seen[atom.name] = node
        nodes.append(node)
        for scope in scopes:
            scope.members.append(node)
        return node

    def build(item: Pattern | Atom, scopes: tuple[Node, ...]) -> tuple[list[Node], list[Node]]:
        """Add `item`; return its (sources, sinks): the nodes first and last in it."""
        if isinstance(item, Atom):
            node = new(item, scopes)
            return [node], [node]
        if item.retry is not None:
            if not item.retry.named:
                item.retry.name = f"{item.name}_retry"  # TaskFlow's name for it
            head = new(item.retry, scopes)
            scopes = (*scopes, head)
        parts = [build(child, scopes) for child in item.items]
        if isinstance(item, LinearFlow):
            for (_, sinks), (sources, _) in itertools.pairwise(parts):
                _connect(sinks, sources)
        if isinstance(item, GraphFlow):
            where = {id(child): part for child, part in zip(item.items, parts, strict=True)}
            for before, after in item.links:
                _connect(where[id(before)][1], where[id(after)][0])
        sources = [n for part in parts for n in part[0]]
        sinks = [n for part in parts for n in part[1]]
        if isinstance(item, LinearFlow) and parts:
            sources, sinks = parts[0][0], parts[-1][1]
        if item.retry is not None:
            _connect([head], sources or [])
            sources = [head]
            sinks = sinks or [head]
        return sources, sinks

    if isinstance(flow, Pattern):
        build(flow, ())
    elif isinstance(flow, Atom):
        new(flow, ())
    else:
        raise TypeError(
            f"run() takes a flow pattern (LinearFlow, UnorderedFlow, GraphFlow) or an atom, "
            f"got {flow!r}"
        )
    providers = _providers(nodes)
    _data_edges(nodes, providers, store)
    _check_acyclic(nodes)
    return nodes


def _connect(before: Iterable[Node], after: Iterable[Node]) -> None:
    after = list(after)
    for b in before:
        for a in after:
            if a is not b:
                b.after.add(a)
                a.before.add(b)


def _providers(nodes: list[Node]) -> dict[str, list[Node]]:
    """Every name's providers; several for one name must run one after the other."""
    by_name: dict[str, list[Node]] = {}
    for node in nodes:
        for name in node.atom.provides:
            by_name.setdefault(name, []).append(node)
    for name, found in by_name.items():
        if len(found) > 1 and not _ordered(found):
            raise FlowError(
                f"{name!r} is provided by {', '.join(n.name for n in found)}, which may run in "
                "any order: which one a consumer gets would be a race. Rename one of them "
                "(provides=...), or order them"
            )
    return by_name


def _ordered(nodes: list[Node]) -> bool:
    """Whether each node runs after the previous one (pattern edges, transitively)."""
    return all(_reaches(a, b) for a, b in itertools.pairwise(nodes))


def _reaches(start: Node, goal: Node) -> bool:
    todo, seen = [start], set()
    while todo:
        node = todo.pop()
        if node is goal:
            return True
        for nxt in node.after:
            if id(nxt) not in seen:
                seen.add(id(nxt))
                todo.append(nxt)
    return False


def _data_edges(
    nodes: list[Node], providers: dict[str, list[Node]], store: Mapping[str, Any]
) -> None:
    """An atom runs after the provider of each of its requirements, and gets the value of the
    nearest one before it (TaskFlow's rule when a name is provided more than once); with none
    before it, the initial store's. A requirement nobody provides must be in the store."""
    missing: list[str] = []
    for node in nodes:
        for name in sorted(node.atom.requires):  # optional ones: taken if there, no edge
            found = [p for p in providers.get(name, ()) if p is not node]
            if not found:
                if name not in store:
                    missing.append(f"{node.name} requires {name!r}")
                continue
            if len(found) == 1 and name not in store:
                _connect(found, [node])  # the common case: no search
                continue
            if any(_reaches(p, node) for p in found) or name in store:
                continue  # ordered already: it reads the latest value provided before it
            raise FlowError(
                f"{node.name} requires {name!r}, which only "
                f"{', '.join(p.name for p in found)} provide, and they may run after it: order "
                "them before it, or give the name in the store"
            )
    if missing:
        raise FlowError(
            "requirements nobody provides and the store does not hold: "
            + "; ".join(missing)
            + ". Give them in run(..., store={...}) or add an atom that provides them"
        )


def _check_acyclic(nodes: list[Node]) -> None:
    """Kahn's algorithm; what is left over is on or behind a cycle."""
    waiting = {id(n): len(n.before) for n in nodes}
    ready = [n for n in nodes if not n.before]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for nxt in node.after:
            waiting[id(nxt)] -= 1
            if waiting[id(nxt)] == 0:
                ready.append(nxt)
    if done < len(nodes):
        stuck = [n.name for n in nodes if waiting[id(n)] > 0]
        raise FlowError(
            f"the flow has a cycle among {', '.join(stuck)}: each waits (by order, link or "
            "data) for another of them"
        )
