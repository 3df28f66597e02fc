"""Shipping an attempt to another process: pickled with cloudpickle, run there, and its value
or exception pickled back.

Shared by the executors whose attempts run elsewhere (`ProcessExecutor`, `DaskExecutor`). An
attempt travels as bytes the executor pickled itself, so a function, argument or result that
cannot travel is a `SerializationError` naming the function, whatever the transport.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

from reflow.executors.base import SerializationError
from reflow.task.signals import is_crash


class RemoteError(Exception):
    """A task's exception from a worker process that could not be sent back as itself
    (unpicklable, or its `__init__` cannot rebuild it): its type, message and traceback as text.
    """


def name_of(fn: object) -> str:
    """How messages name a shipped function."""
    return str(getattr(fn, "__qualname__", fn))


def dumps(value: object, what: str) -> bytes:
    """cloudpickle `value`, or a SerializationError naming `what` could not be sent."""
    import cloudpickle

    try:
        return cloudpickle.dumps(value)  # type: ignore[no-any-return]
    except Exception as exc:
        raise SerializationError(
            f"{what} cannot be pickled to pass between processes: {type(exc).__name__}: "
            f"{exc}. Functions, arguments and results must be picklable (no open files, "
            "locks, sockets or generators); use ThreadExecutor for tasks that need them"
        ) from exc


def call_payload(fn: object, args: tuple[object, ...], kwargs: dict[str, object]) -> bytes:
    """The bytes that ship the call `fn(*args, **kwargs)`."""
    return dumps((fn, args, kwargs), f"the call of {name_of(fn)}")


def run_payload(payload: bytes, deps: Sequence[bytes] = ()) -> bytes:
    """In the worker: run the call and pickle its value or its exception (with its traceback).

    `deps` are the results that the call's arguments refer to (`reflow.executors.references`),
    fetched by the cluster from the workers that made them.
    """
    import cloudpickle

    if deps:
        from reflow.executors.references import loading_deps

        try:
            with loading_deps(deps):
                fn, args, kwargs = cloudpickle.loads(payload)
        except Exception as lost:
            if not is_crash(lost):
                raise
            return cloudpickle.dumps((False, lost))  # type: ignore[no-any-return]
    else:
        fn, args, kwargs = cloudpickle.loads(payload)
    try:
        return dumps((True, fn(*args, **kwargs)), f"the result of {name_of(fn)}")
    except Exception as exc:
        where = "reflow: raised in a worker process:\n" + traceback.format_exc().rstrip()
        exc.add_note(where)
        try:
            sent: bytes = cloudpickle.dumps((False, exc))
            cloudpickle.loads(sent)  # an exception whose __init__ cannot rebuild it fails here
            return sent
        except Exception as problem:
            stand_in = RemoteError(
                f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} (it cannot travel "
                f"between processes: {type(problem).__name__}: {problem}; sent as text)"
            )
            stand_in.add_note(where)
            return cloudpickle.dumps((False, stand_in))  # type: ignore[no-any-return]


def outcome(sent: bytes) -> tuple[bool, Any]:
    """What `run_payload` sent back: (True, value) or (False, exception)."""
    import cloudpickle

    ok, value = cloudpickle.loads(sent)
    return bool(ok), value
