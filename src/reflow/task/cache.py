"""Task caching: policies that compute a key from a call, and stores that keep results by key.

A policy answers "which calls are the same call?". `INPUTS` keys on the arguments,
`TASK_SOURCE` on the function's code, `NO_CACHE` never caches; `INPUTS + TASK_SOURCE` keys on
both and `INPUTS - "session"` ignores one argument. A call whose key cannot be computed
(an argument that cannot be pickled, such as a lambda or a lock) runs uncached, with a
warning: reflow never guesses a key. Stores implement `CacheStore`; the in-memory one is the
default until the durability layer brings a persistent one through the same protocol.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from reflow.task.run import TaskRun


class CacheKeyWarning(UserWarning):
    """A cache key could not be computed for a call, which therefore ran without the cache."""


class UncacheableInput(Exception):
    """An input that cannot be turned into a stable key."""


def stable_hash(value: object) -> str:
    """A hex digest of `value`'s pickle: equal values of the same types give the same digest.

    Pickle rather than JSON because JSON makes `(1, 2)` and `[1, 2]` the same key, a false hit.
    Values whose pickle differs though they are equal (a set in another order) only cause a miss.
    """
    import hashlib
    import pickle

    try:
        payload = pickle.dumps(value, protocol=5)
    except Exception as exc:
        raise UncacheableInput(f"{type(exc).__name__}: {exc}") from exc
    return hashlib.sha256(payload).hexdigest()


class CachePolicy:
    """Base class of cache policies; `key()` returns None for "do not cache this call"."""

    def key(self, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return CompoundPolicy(self, other)

    def __sub__(self, name: str) -> CachePolicy:
        raise TypeError(f"only INPUTS can leave out an argument; {self!r} - {name!r} means nothing")


class Inputs(CachePolicy):
    """Key on the call's arguments, bound to parameter names, minus those in `exclude`."""

    def __init__(self, exclude: tuple[str, ...] = ()) -> None:
        self.exclude = exclude

    def key(self, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
        kept = {name: value for name, value in inputs.items() if name not in self.exclude}
        return stable_hash(kept)

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError(f"INPUTS - ... takes an argument name, got {name!r}")
        return Inputs((*self.exclude, name))

    def __repr__(self) -> str:
        return "INPUTS" + "".join(f" - {name!r}" for name in self.exclude)


class TaskSource(CachePolicy):
    """Key on the task function's source code, so editing the function invalidates its cache."""

    def key(self, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
        return run.task.source_hash

    def __repr__(self) -> str:
        return "TASK_SOURCE"


class NoCache(CachePolicy):
    """Never cache."""

    def key(self, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NO_CACHE"


class CompoundPolicy(CachePolicy):
    """Key on every part; no key when a part gives none (`NO_CACHE` anywhere disables caching)."""

    def __init__(self, *parts: CachePolicy) -> None:
        flat: list[CachePolicy] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, CompoundPolicy) else (part,))
        self.parts: tuple[CachePolicy, ...] = tuple(flat)

    def key(self, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
        keys = [part.key(run, inputs) for part in self.parts]
        if any(k is None for k in keys):
            return None
        import hashlib

        return hashlib.sha256("|".join(keys).encode()).hexdigest()  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.parts))


class KeyFunction(CachePolicy):
    """A user's `cache_key_fn(context, args) -> str | None`; `context` is the TaskRun."""

    def __init__(self, fn: Callable[[Any, dict[str, Any]], str | None]) -> None:
        self.fn = fn

    def key(self, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
        value = self.fn(run, dict(inputs))
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"cache_key_fn {getattr(self.fn, '__qualname__', self.fn)} must return a str or "
                f"None, got {type(value).__name__}"
            )
        return value

    def __repr__(self) -> str:
        return f"cache_key_fn({getattr(self.fn, '__qualname__', self.fn)})"


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
NO_CACHE = NoCache()


def source_hash(fn: Callable[..., Any]) -> str:
    """A digest of `fn`'s source, or of its bytecode when the source is not available."""
    import hashlib

    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = code.co_code + repr(code.co_consts).encode() if code else repr(fn).encode()
    return hashlib.sha256(text).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached result and when it stops being valid (`expires_at` is epoch seconds or None)."""

    value: Any
    created_at: float
    expires_at: float | None = None
    task_name: str = ""
    """The task that made it (a store can forget one task's entries)."""

    def is_fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@runtime_checkable
class CacheStore(Protocol):
    """Where task results are cached by key; the durability layer provides a persistent one."""

    def get(self, key: str) -> CacheEntry | None:
        """The entry for `key`, or None (an expired entry may be returned; callers check)."""
        ...

    def put(self, key: str, entry: CacheEntry) -> None:
        """Store `entry` under `key`, replacing any previous one."""
        ...


class MemoryCacheStore:
    """A thread-safe in-process cache store; what tasks use unless given another store."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.is_fresh(time.time()):
                del self._entries[key]
                return None
            return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[key] = entry

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class DefaultCacheStore:
    """What tasks without `cache_store=` use: the task cache of the default run store (it
    survives the process) once the durability layer is there and `REFLOW_STORE` is not
    `memory`; else an in-process `MemoryCacheStore`."""

    def __init__(self) -> None:
        self.memory = MemoryCacheStore()
        self.persistent: Callable[[], CacheStore | None] | None = None
        """Set by `reflow/__init__`: the durable cache to use now, or None (memory)."""

    def target(self) -> CacheStore:
        """The cache the next call uses (the environment may have changed)."""
        found = self.persistent() if self.persistent is not None else None
        return self.memory if found is None else found

    def get(self, key: str) -> CacheEntry | None:
        return self.target().get(key)

    def put(self, key: str, entry: CacheEntry) -> None:
        self.target().put(key, entry)

    def __len__(self) -> int:
        target = self.target()
        return len(target) if isinstance(target, Sized) else 0

    def clear(self) -> None:
        """Forget every entry: in memory, and in the durable cache in use."""
        self.memory.clear()
        target = self.target()
        if target is not self.memory:
            clear = getattr(target, "clear", None)
            if clear is not None:
                clear()


DEFAULT_CACHE_STORE = DefaultCacheStore()
"""The process-wide store of tasks created without `cache_store=`."""


def compute_key(policy: CachePolicy, run: TaskRun, inputs: Mapping[str, Any]) -> str | None:
    """The cache key of a call, or None with a `CacheKeyWarning` when it cannot be computed.

    Keys are namespaced by the task's function (module and qualified name), so two tasks
    called with equal inputs never share an entry; a `cache_key_fn` alone keys exactly as it
    says, which is how tasks share a cache on purpose.
    """
    try:
        key = policy.key(run, inputs)
    except Exception as exc:
        if not isinstance(exc, UncacheableInput):
            logging.getLogger("reflow.task").error(
                "reflow: computing the cache key of task %s raised", run.task_name, exc_info=exc
            )
            exc = UncacheableInput(f"{policy!r} raised {type(exc).__name__}: {exc}")
        warnings.warn(
            f"reflow: task {run.task_name!r} runs without its cache ({policy!r}): its key "
            f"cannot be computed ({exc}); for an input that cannot be pickled, pass a "
            f'cache_key_fn or leave the argument out with INPUTS - "name"',
            CacheKeyWarning,
            stacklevel=4,
        )
        return None
    if key is None or isinstance(policy, KeyFunction):
        return key
    import hashlib

    fn = run.task.fn
    namespace = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', run.task_name)}"
    return hashlib.sha256(f"{namespace}\0{key}".encode()).hexdigest()
