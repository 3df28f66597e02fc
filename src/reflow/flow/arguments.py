"""Futures inside a task call's arguments: finding them (upstream edges) and putting their
results in their place; and splitting the arguments of `task.map()` into one call per element.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reflow.task.futures import Future, FutureList, allow_failure, unmapped

_CONTAINERS = (list, tuple, set, frozenset, dict)
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), complex})


def upstreams(
    args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Iterable[Any] = ()
) -> tuple[list[Future[Any]], set[int]]:
    """The futures a call depends on (no duplicates, in order of appearance), and the ids of
    those wrapped in `allow_failure` (which do not count against the trigger)."""
    found: dict[int, Future[Any]] = {}
    allowed: set[int] = set()
    for value in args:
        if type(value) not in _PLAIN:
            _walk(value, found, allowed, False)
    for value in kwargs.values():
        if type(value) not in _PLAIN:
            _walk(value, found, allowed, False)
    for value in wait_for:
        _walk(value, found, allowed, False)
    return list(found.values()), allowed


def _walk(value: Any, found: dict[int, Future[Any]], allowed: set[int], allow: bool) -> None:
    kind = type(value)
    if kind is Future or isinstance(value, Future):
        found.setdefault(id(value), value)
        if allow:
            allowed.add(id(value))
    elif kind is allow_failure:
        _walk(value.value, found, allowed, True)
    elif kind is unmapped:
        _walk(value.value, found, allowed, allow)
    elif kind is dict:
        for item in value.values():
            if type(item) not in _PLAIN:
                _walk(item, found, allowed, allow)
    elif kind in _CONTAINERS or kind is FutureList:
        for item in value:
            if type(item) not in _PLAIN:
                _walk(item, found, allowed, allow)


def resolve(value: Any, allow: bool = False, kept: Mapping[str, Any] | None = None) -> Any:
    """`value` with futures replaced by their results (states, for failed ones).

    With `kept` (task run id -> the executor's reference to that run's result, left where it
    was made), a future of such a run is replaced by the reference instead, so the value is
    sent to the executor by reference.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is Future or isinstance(value, Future):
        state = value.run.state
        if not state.is_completed():
            return state
        if kept:
            ref = kept.get(value.run.id)
            if ref is not None:
                return ref
        return state.data
    if kind is allow_failure:
        return resolve(value.value, True, kept)
    if kind is unmapped:
        return resolve(value.value, allow, kept)
    if kind is dict:
        return {k: resolve(v, allow, kept) for k, v in value.items()}
    if kind in _CONTAINERS:
        return kind(resolve(v, allow, kept) for v in value)
    if kind is FutureList:
        return [resolve(v, allow, kept) for v in value]
    return value


def resolve_call(
    args: tuple[Any, ...], kwargs: dict[str, Any], kept: Mapping[str, Any] | None = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with futures resolved (see `resolve`)."""
    return (
        tuple(resolve(a, False, kept) for a in args),
        {k: resolve(v, False, kept) for k, v in kwargs.items()},
    )


def _is_mapped(value: Any) -> bool:
    if isinstance(value, unmapped | str | bytes | bytearray | Mapping):
        return False
    return isinstance(value, Iterable)


def split_map(
    task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """One (args, kwargs) per element of the mapped (iterable) arguments, zipped.

    Raises ValueError when the mapped arguments have different lengths, or when nothing is
    mapped, naming the arguments.
    """
    columns: dict[str | int, list[Any]] = {}
    for i, value in enumerate(args):
        if _is_mapped(value):
            columns[i] = list(value)
    for name, value in kwargs.items():
        if _is_mapped(value):
            columns[name] = list(value)
    if not columns:
        raise ValueError(
            f"{task_name}.map() needs at least one iterable argument to map over; every "
            "argument given is whole (unmapped, a str, bytes or a mapping)"
        )
    lengths = {key: len(col) for key, col in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(
            f"{'argument ' + str(k + 1) if isinstance(k, int) else k}: {n}"
            for k, n in lengths.items()
        )
        raise ValueError(
            f"{task_name}.map() got iterables of different lengths ({shown}); map zips "
            "them, so they must match (wrap a value passed whole in unmapped())"
        )
    count = next(iter(lengths.values()))
    static_args = [None if i in columns else _unwrap(v) for i, v in enumerate(args)]
    static_kwargs = {k: _unwrap(v) for k, v in kwargs.items() if k not in columns}
    calls = []
    for n in range(count):
        element_args = tuple(
            columns[i][n] if i in columns else static_args[i] for i in range(len(args))
        )
        element_kwargs = dict(static_kwargs)
        for key, col in columns.items():
            if isinstance(key, str):
                element_kwargs[key] = col[n]
        calls.append((element_args, element_kwargs))
    return calls


def _unwrap(value: Any) -> Any:
    return value.value if type(value) is unmapped else value
