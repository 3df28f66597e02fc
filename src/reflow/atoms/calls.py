"""How the atoms engine calls `execute` and `revert`: between their hooks, on the spot or
through an executor (these functions are what a process pool's workers receive)."""

from __future__ import annotations

from typing import Any

from reflow.atoms.atom import Atom
from reflow.atoms.compile import Node


class Outcome:
    """A call made on the spot, read like a done future."""

    __slots__ = ("_error", "_value")

    def __init__(self, call: tuple[Any, ...]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        try:
            self._value = call[0](*call[1:])
        except Exception as exc:
            self._error = exc

    def exception(self) -> BaseException | None:
        return self._error

    def result(self) -> Any:
        return self._value


def ancestors(node: Node) -> set[int]:
    """The ids of the nodes `node` runs after, transitively: its branch."""
    todo, seen = list(node.before), set()
    while todo:
        n = todo.pop()
        if id(n) not in seen:
            seen.add(id(n))
            todo.extend(n.before)
    return seen


def execute(atom: Atom, lead: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`execute` between its hooks; `lead` is a controller's history (empty for an atom)."""
    atom.pre_execute()
    try:
        return atom.execute(*lead, **kwargs)
    finally:
        atom.post_execute()  # as TaskFlow: after execute, whatever its outcome


def revert(atom: Atom, lead: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`revert` between its hooks (an atom's kwargs carry `result` and `flow_failures`)."""
    atom.pre_revert()
    try:
        return atom.revert(*lead, **kwargs)
    finally:
        atom.post_revert()
