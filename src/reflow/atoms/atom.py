"""Atoms: units of work that take their arguments by name from a store and can be undone.

An atom declares what it `requires` (store names; by default the parameters of its `execute`)
and what it `provides` (names its result is stored under). `rebind` maps its parameters to
other store names, `inject` gives some of them fixed values. `Task` is the atom with
`execute` and `revert`; `FunctorTask` makes one from plain functions.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reflow.atoms.failure import Failure

_SKIP = frozenset({"self", "cls"})


def _signature_names(fn: Callable[..., Any]) -> tuple[list[str], list[str], bool]:
    """(required parameter names, optional ones, whether it takes **kwargs)."""
    target = getattr(fn, "__func__", fn)  # a bound method: its function, shared by instances
    try:
        return _SIGNATURES[target]
    except (KeyError, TypeError):
        pass
    found = _read_signature(fn)
    with contextlib.suppress(TypeError):  # an unhashable callable is not cached
        _SIGNATURES[target] = found
    return found


_SIGNATURES: dict[Any, tuple[list[str], list[str], bool]] = {}
"""Signatures read so far: 1,000 atoms of one class read theirs once."""


def _read_signature(fn: Callable[..., Any]) -> tuple[list[str], list[str], bool]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return [], [], True
    required, optional, var_kw = [], [], False
    for p in parameters:
        if p.name in _SKIP or p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.default is p.empty:
            required.append(p.name)
        else:
            optional.append(p.name)
    return required, optional, var_kw


def _names(value: str | Iterable[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} takes store names (str), got {item!r}")
    return items


def _provides(value: str | Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """{name: index} where index None means the whole result."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, Mapping):
        return dict(value)
    return {name: i for i, name in enumerate(_names(value, "provides"))}


class Atom:
    """The unit the atoms engine runs: a name, its data by name, and the hooks around it.

    Subclasses define `execute(**requirements)`; see `Task` for one that can also revert.
    """

    default_provides: str | Iterable[str] | Mapping[str, Any] | None = None
    priority: int = 0
    """Among atoms ready at the same time, higher priorities start first."""
    _given: frozenset[str] = frozenset()  # parameters the engine passes, not the store

    def __init__(
        self,
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        requires: str | Iterable[str] | None = None,
        auto_extract: bool = True,
        rebind: Iterable[str] | Mapping[str, str] | None = None,
        inject: Mapping[str, Any] | None = None,
        version: str | tuple[int, ...] = "1.0",
        priority: int | None = None,
    ) -> None:
        self.named = name is not None
        """Whether the name was given (a controller's default name is its flow's)."""
        self.name: str = name if name is not None else self._default_name()
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"an atom's name is a non-empty str, got {self.name!r}")
        self.version = version
        if priority is not None:
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise TypeError(f"atom {self.name}: priority is an int, got {priority!r}")
            self.priority = priority
        self.provides: dict[str, Any] = _provides(
            provides if provides is not None else self.default_provides
        )
        self.inject: dict[str, Any] = dict(inject or {})
        self.rebind: dict[str, str] = {}
        """execute's parameter -> the store name it is fetched from."""
        self.optional: set[str] = set()
        """Parameters fetched only when the store has them (they have defaults)."""
        self._build_arguments(_names(requires, "requires"), auto_extract, rebind)
        self.run_id: str | None = None  # set by the engine while the atom runs
        self._progress: Callable[[Atom, float, Mapping[str, Any] | None], None] | None = None

    def _default_name(self) -> str:
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    def _execute_function(self) -> Callable[..., Any]:
        return self.execute

    def _build_arguments(self, requires: list[str], auto_extract: bool, rebind: Any) -> None:
        required, optional, var_kw = _signature_names(self._execute_function())
        required = [p for p in required if p not in self._given]
        optional = [p for p in optional if p not in self._given]
        params = (required + optional) if auto_extract else []
        mapping = {p: p for p in params}
        self.optional = set(optional) if auto_extract else set()
        for name in requires:
            mapping.setdefault(name, name)
            self.optional.discard(name)
        if rebind is not None:
            if isinstance(rebind, Mapping):
                pairs = list(rebind.items())
            else:
                names = _names(rebind, "rebind")
                order = required + optional + [r for r in requires if r not in params]
                if len(names) > len(order) and not var_kw:
                    raise ValueError(
                        f"atom {self.name}: rebind lists {len(names)} names but execute takes "
                        f"{len(order)} ({', '.join(order) or 'none'})"
                    )
                pairs = list(zip(order, names, strict=False))
                pairs += [(n, n) for n in names[len(order) :]]
            for param, store_name in pairs:
                mapping[param] = store_name
                self.optional.discard(param)
        for param in self.inject:
            mapping.pop(param, None)
            self.optional.discard(param)
        self.rebind = mapping

    @property
    def requires(self) -> frozenset[str]:
        """The store names this atom needs (optional ones and injected ones left out)."""
        return frozenset(
            store for param, store in self.rebind.items() if param not in self.optional
        )

    @property
    def optional_requires(self) -> frozenset[str]:
        return frozenset(self.rebind[p] for p in self.optional if p in self.rebind)

    def arguments(self, store: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of one execution, fetched from `store`."""
        kwargs = {}
        for param, name in self.rebind.items():
            if name in store:
                kwargs[param] = store[name]
            elif param not in self.optional:
                raise KeyError(f"atom {self.name} requires {name!r}, which is not in the store")
        kwargs.update(self.inject)
        return kwargs

    def provided(self, result: Any) -> dict[str, Any]:
        """The store entries a result makes, by `provides`."""
        if not self.provides:
            return {}
        out = {}
        for name, index in self.provides.items():
            try:
                out[name] = result if index is None else result[index]
            except (IndexError, KeyError, TypeError) as exc:
                raise TypeError(
                    f"atom {self.name} provides {name!r} as item {index!r} of its result, "
                    f"which {type(exc).__name__}: {exc} (result: {result!r:.80})"
                ) from exc
        return out

    # -- what subclasses define ---------------------------------------------------------------

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"atom {self.name} defines no execute()")

    def revert(self, *args: Any, **kwargs: Any) -> Any:
        """Undo `execute`: gets its arguments, `result` and `flow_failures`. Default: nothing."""
        return None

    def pre_execute(self) -> None:
        """Called just before `execute`."""

    def post_execute(self) -> None:
        """Called just after `execute` returned."""

    def pre_revert(self) -> None:
        """Called just before `revert`."""

    def post_revert(self) -> None:
        """Called just after `revert` returned."""

    def update_progress(self, progress: float, details: Mapping[str, Any] | None = None) -> None:
        """Report how far `execute` has got (0.0 to 1.0); subscribers of reflow.events get it."""
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"atom {self.name}: progress is between 0.0 and 1.0, got {progress}")
        if self._progress is not None:
            self._progress(self, progress, details)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the engine's progress callback (it stays in the flow's process)."""
        state = dict(self.__dict__)
        state["_progress"] = None
        return state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Task(Atom):
    """An atom that does something (`execute`) and can undo it (`revert`)."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"task {self.name} defines no execute()")


class FunctorTask(Task):
    """A task from plain functions: `FunctorTask(create, revert=delete, provides="id")`."""

    def __init__(
        self,
        execute: Callable[..., Any],
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        requires: str | Iterable[str] | None = None,
        auto_extract: bool = True,
        rebind: Iterable[str] | Mapping[str, str] | None = None,
        revert: Callable[..., Any] | None = None,
        version: str | tuple[int, ...] = "1.0",
        inject: Mapping[str, Any] | None = None,
        priority: int | None = None,
    ) -> None:
        if not callable(execute):
            raise TypeError(f"FunctorTask takes a function to execute, got {execute!r}")
        if revert is not None and not callable(revert):
            raise TypeError(f"FunctorTask(revert=...) takes a function, got {revert!r}")
        self._execute = execute
        self._revert = revert
        if name is None:
            name = f"{getattr(execute, '__module__', '')}.{getattr(execute, '__qualname__', '')}"
        super().__init__(name, provides, requires, auto_extract, rebind, inject, version, priority)

    def _execute_function(self) -> Callable[..., Any]:
        return self._execute

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self._execute(*args, **kwargs)

    def revert(self, *args: Any, **kwargs: Any) -> Any:
        if self._revert is None:
            return None
        return _call_accepting(self._revert, kwargs)


def _call_accepting(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call `fn` with the keyword arguments it accepts (a revert need not take them all)."""
    required, optional, var_kw = _signature_names(fn)
    if var_kw:
        return fn(**kwargs)
    wanted = set(required) | set(optional)
    return fn(**{k: v for k, v in kwargs.items() if k in wanted})


class _OverRequirements(Task):
    """A task applying one function over its requirements' values, in the order listed."""

    verb = ""
    least = 1
    """How many requirements it needs at least."""
    needs = ""
    """What its error says it needs."""

    def __init__(
        self,
        functor: Callable[..., Any],
        requires: str | Iterable[str],
        name: str | None = None,
        provides: str | Iterable[str] | Mapping[str, Any] | None = None,
        inject: Mapping[str, Any] | None = None,
    ) -> None:
        kind = type(self).__name__
        if not callable(functor):
            raise TypeError(f"{kind} takes a function, got {functor!r}")
        self.functor = functor
        self.order = _names(requires, "requires")
        if len(self.order) < self.least:
            raise ValueError(f"{kind} needs at least {self.needs}")
        if name is None:
            name = f"{self.verb}({getattr(functor, '__qualname__', functor)})"
        super().__init__(name, provides, self.order, False, None, inject)

    def _values(self, kwargs: dict[str, Any]) -> list[Any]:
        return [kwargs[name] for name in self.order]


class MapFunctorTask(_OverRequirements):
    """Applies `functor` to each of its requirements: the result is the list, in order."""

    verb = "map"
    needs = "one requirement to map over"

    def execute(self, **kwargs: Any) -> list[Any]:
        return [self.functor(value) for value in self._values(kwargs)]


class ReduceFunctorTask(_OverRequirements):
    """Reduces its requirements, in order, with `functor(a, b)` (like functools.reduce)."""

    verb = "reduce"
    least = 2
    needs = "two requirements to reduce"

    def execute(self, **kwargs: Any) -> Any:
        return functools.reduce(self.functor, self._values(kwargs))


def as_atom(item: Any) -> Atom:
    """`item` if it is an atom; a `@reflow.task` becomes a FunctorTask (its revert included)."""
    if isinstance(item, Atom):
        return item
    from reflow.task.decorator import Task as FlowTask

    if isinstance(item, FlowTask):
        flow_task = item
        revert = flow_task.revert_fn

        signature = inspect.signature(flow_task.fn)

        def undo(**kwargs: Any) -> Any:
            result = kwargs.pop("result", None)
            kwargs.pop("flow_failures", None)
            if revert is None or isinstance(result, Failure):
                return None  # the task failed: it has nothing to undo
            bound = signature.bind(**kwargs)  # as the task's revert expects: positionally
            return revert(result, *bound.args, **bound.kwargs)

        # the task object's signature is its function's (it sets __wrapped__)
        return FunctorTask(flow_task, name=flow_task.name, revert=undo, provides=flow_task.name)
    raise TypeError(
        f"atoms flows take atoms (reflow.atoms.Task, FunctorTask, ...), @reflow.task tasks and "
        f"flows (LinearFlow, UnorderedFlow, GraphFlow), got {item!r}"
    )


def check_kept(atoms: Iterable[Atom]) -> None:
    """Refuse, for a run kept in a store, an atom made from a task with `persist_result=False`:
    a kept atoms run keeps what each atom returned (the atoms after it require it, its revert
    receives it, a resume starts from it), so it cannot leave that result out."""
    from reflow.task.decorator import Task as FlowTask

    for atom in atoms:
        made_from = getattr(atom, "_execute", None)
        if isinstance(made_from, FlowTask) and made_from.persist_result is False:
            raise ValueError(
                f"atom {atom.name} is a task with persist_result=False, and this atoms run is "
                "kept in a store (runs=): a kept atoms run keeps what each atom returned (the "
                "atoms after it require it, its revert receives it, a resume starts from it). "
                "Add the task as task.with_options(persist_result=None), or run the atoms "
                "flow in memory (no runs=)"
            )
