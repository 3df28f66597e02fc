"""Retry controllers' histories as a store keeps them, and back: shared by atoms runs' controllers
(`reflow.store.atoms`) and a decorated flow's `retry=` controller (`reflow.store.persistence`).

A history is a list of tries: the value the controller provided for the try (encoded as results
are: JSON, or signed cloudpickle) and the failures of the try by name, as text
(`Failure.to_dict()`, secrets masked). Read back, the failures are `Failure`s that check by
type name, so a controller decides from them as it did from the originals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from reflow.secrets import redact_text
from reflow.store.atom_records import RetryHistoryRecord, RetryTryRecord
from reflow.store.results import Encoded, ResultCodec

logger = logging.getLogger("reflow.store")

Try = tuple[Any, dict[str, Any]]
"""One try as a controller's `History` holds it: (value, {name: Failure})."""


def history_record(
    codec: ResultCodec, run_id: str, controller: str, tries: Iterable[Try]
) -> RetryHistoryRecord:
    """The record of a controller's tries (a `History` iterates as them)."""
    kept = [
        RetryTryRecord(
            encode(codec, value, f"a value of retry controller {controller}"),
            {name: failure_dict(failure) for name, failure in failures.items()},
        )
        for value, failures in tries
    ]
    return RetryHistoryRecord(run_id, controller, kept)


def failure_dict(failure: Any) -> dict[str, Any]:
    """`Failure.to_dict()` with secrets masked in its texts."""
    data: dict[str, Any] = failure.to_dict()
    data["exception_str"] = redact_text(data["exception_str"])
    data["traceback_str"] = redact_text(data["traceback_str"])
    return data


def tries_of(codec: ResultCodec, record: RetryHistoryRecord) -> list[Try]:
    """A stored history as tries again: values decoded (signatures checked), failures as
    `Failure`s."""
    from reflow.atoms.failure import Failure

    return [
        (
            None if t.value is None else codec.decode(t.value),
            {name: Failure.from_dict(f) for name, f in t.failures.items()},
        )
        for t in record.tries
    ]


def encode(codec: ResultCodec, value: Any, what: str) -> Encoded | None:
    """`value` encoded, or None (logged) when it cannot be: the run is kept without it."""
    try:
        return codec.encode(value)
    except Exception as exc:  # unpicklable
        logger.warning("reflow: %s cannot be stored (%s); the run is kept without it", what, exc)
        return None


__all__ = ["Try", "encode", "failure_dict", "history_record", "tries_of"]
