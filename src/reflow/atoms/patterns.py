"""Flow patterns: how atoms (and nested patterns) are ordered.

`LinearFlow` runs its items one after the other, `UnorderedFlow` in any order (at once, given
an executor with workers), `GraphFlow` by the data between them (who provides what another
requires) and explicit `link(a, b)`. In every pattern an atom that requires what another
provides runs after it. A pattern with `retry=` heads a scope: its controller decides what a
failure inside it leads to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reflow.atoms.atom import Atom, as_atom
from reflow.atoms.retry import Retry

Item = "Atom | Pattern"


class Pattern:
    """The base of the flow patterns: a name, an optional retry controller, items in order."""

    def __init__(self, name: str, retry: Retry | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a flow pattern's name is a non-empty str, got {name!r}")
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(
                f"flow {name}: retry= takes a retry controller (Times, ForEach, ...), got {retry!r}"
            )
        self.name = name
        self.retry = retry
        self.items: list[Atom | Pattern] = []
        self._added: dict[int, Atom | Pattern] = {}  # what was added -> what it became

    def add(self, *items: Any) -> Pattern:
        """Add atoms, `@reflow.task` tasks or patterns; returns the pattern, for chaining."""
        for item in items:
            made = item if isinstance(item, Pattern) else as_atom(item)
            self.items.append(made)
            self._added[id(item)] = made
            self._added[id(made)] = made
        return self

    def __iter__(self) -> Iterator[Atom | Pattern]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def iter_atoms(self) -> Iterator[Atom]:
        """Every atom inside, nested patterns included (controllers not included)."""
        for item in self.items:
            if isinstance(item, Pattern):
                yield from item.iter_atoms()
            else:
                yield item

    def __repr__(self) -> str:
        retry = f" retry={self.retry.name}" if self.retry is not None else ""
        return f"<{type(self).__name__} {self.name}{retry}: {len(self.items)} item(s)>"


class LinearFlow(Pattern):
    """Items run one after the other, in the order added."""


class UnorderedFlow(Pattern):
    """Items run in any order, concurrently when the executor has workers."""


class GraphFlow(Pattern):
    """Items run in the order their data and explicit links impose."""

    def __init__(self, name: str, retry: Retry | None = None) -> None:
        super().__init__(name, retry)
        self.links: list[tuple[Atom | Pattern, Atom | Pattern]] = []

    def link(self, before: Any, after: Any) -> GraphFlow:
        """Make `after` run once `before` has (both already added to this flow)."""
        pair = []
        for item in (before, after):
            made = self._added.get(id(item))
            if made is None:
                raise ValueError(
                    f"flow {self.name}: link() takes items added to it; "
                    f"{getattr(item, 'name', item)!r} is not one of them"
                )
            pair.append(made)
        self.links.append((pair[0], pair[1]))
        return self
