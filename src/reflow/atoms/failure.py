"""`Failure`: an exception captured as data (type names, message, traceback text), so that it
can be kept in a history, sent between processes and stored, and still be checked and raised."""

from __future__ import annotations

import traceback
from typing import Any, NoReturn


def _type_names(cls: type[BaseException]) -> tuple[str, ...]:
    return tuple(
        f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__ if issubclass(c, BaseException)
    )


class Failure:
    """An exception and what is needed to recognise it without the exception object.

    `check(*types)` says which of the given exception types it is (by name, so it works after
    the exception crossed a process), `reraise()` raises it again (the original exception when
    this process has it, else a `RemoteFailure` carrying its text).
    """

    __slots__ = ("exception", "exception_str", "traceback_str", "type_names")

    def __init__(self, exception: BaseException) -> None:
        if not isinstance(exception, BaseException):
            raise TypeError(f"Failure() takes an exception, got {exception!r}")
        self.exception: BaseException | None = exception
        self.type_names = _type_names(type(exception))
        self.exception_str = str(exception)
        self.traceback_str = "".join(traceback.format_exception(exception)).rstrip()

    @property
    def exception_type_name(self) -> str:
        """The exception's class, as `module.QualName`."""
        return self.type_names[0]

    def check(self, *types: type[BaseException] | str) -> type[BaseException] | str | None:
        """The first of `types` that the exception is an instance of: classes, dotted names
        (`"mymodule.QuotaError"`), or bare names of built-in exceptions (`"ValueError"`)."""
        for kind in types:
            name = kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"
            if name in self.type_names or f"builtins.{name}" in self.type_names:
                return kind
        return None

    def matches(self, other: Failure) -> bool:
        """Whether `other` captures the same kind of error with the same message."""
        return self.type_names == other.type_names and self.exception_str == other.exception_str

    def reraise(self) -> NoReturn:
        """Raise the captured exception (or, when it did not survive pickling, a stand-in)."""
        if self.exception is not None:
            raise self.exception
        raise RemoteFailure(self)

    def to_dict(self) -> dict[str, Any]:
        """The failure as JSON-able data (what a store keeps): its type names and its texts."""
        return {
            "type_names": list(self.type_names),
            "exception_str": self.exception_str,
            "traceback_str": self.traceback_str,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        """A failure read back from `to_dict()` data, in another process: it checks by its
        type names, and its `exception` is a `RemoteFailure` carrying its texts."""
        failure = cls.__new__(cls)
        failure.type_names = tuple(data["type_names"])
        failure.exception_str = str(data["exception_str"])
        failure.traceback_str = str(data["traceback_str"])
        failure.exception = RemoteFailure(failure)
        return failure

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}
        try:
            import pickle

            pickle.loads(pickle.dumps(self.exception))
        except Exception:
            state["exception"] = None  # its text and type names travel; the object cannot
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"Failure({self.exception_type_name}: {self.exception_str})"


class RemoteFailure(Exception):
    """Raised by `Failure.reraise()` when the original exception is not in this process."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.exception_type_name}: {failure.exception_str}")
        self.failure = failure
        self.add_note(failure.traceback_str)
