"""What the `reflow runs` commands share: how a run is named on the command line, and how
stored runs, results and failures are shown."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reflow import states
from reflow.cli._common import UsageError
from reflow.humanize import run_duration

RunArg = Annotated[
    str,
    typer.Argument(
        metavar="RUN",
        help="The run: its id, 4 or more of its first characters, or `last`.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for programs.")]


def duration(record: Any) -> float | None:
    """Seconds from its start to its end (to now, for a run that has not ended)."""
    return run_duration(float(record.created), float(record.updated), record.state_type)


def flow_json(record: Any) -> dict[str, Any]:
    """A stored flow run as JSON, for `--json`."""
    return {
        "id": record.id,
        "name": record.name,
        "state": record.state,
        "state_type": record.state_type,
        "created": record.created,
        "updated": record.updated,
        "duration": duration(record),
        "version": record.version,
        "parent_id": record.parent_id,
        "parameters": record.parameters,
        "run_key": record.run_key,
        "worker": record.worker,
        "heartbeat": record.heartbeat,
        "error": record.error,
        "flow_path": record.flow_path,
    }


def result_text(encoded: Any) -> str:
    """A stored value, short: its JSON text, or its encoding and size."""
    if encoded is None:
        return "-"
    if encoded.encoding == "json":
        text = str(encoded.data.decode("utf-8", "replace"))
        return text if len(text) <= 200 else text[:197] + "..."
    return f"({encoded.encoding}, {len(encoded.data)} bytes)"


def failure_text(failure: dict[str, Any] | None) -> str | None:
    """A stored failure (`Failure.to_dict()`) as `Type: message`."""
    if failure is None:
        return None
    kind = str(failure["type_names"][0]).removeprefix("builtins.")
    return f"{kind}: {failure['exception_str']}"


def state_filter(state: str) -> tuple[str, str | None]:
    """(state type to ask the store for, state name to keep) for `--state`."""
    try:
        return states.state_filter(state)
    except ValueError as error:
        raise UsageError(f"--state {error}") from None
