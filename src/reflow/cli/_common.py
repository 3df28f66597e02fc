"""What the commands share: errors as one line, the store, loading `FILE.py:FLOW`, parameters,
and how times, durations and states are shown."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import typer
from rich.console import Console

from reflow.humanize import seconds as seconds  # shown by every command
from reflow.humanize import when as when

F = TypeVar("F", bound=Callable[..., Any])

DEBUG = {"on": False}
"""Set by `reflow --debug`: errors show their traceback."""


class CLIError(Exception):
    """A failure the user can act on: shown as one line, the process exits with `code`."""

    code = 1

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(CLIError):
    """The command was called wrongly (exit code 2)."""

    code = 2


def fail(message: str) -> None:
    """Print `reflow: error: ...` on standard error."""
    typer.echo(f"reflow: error: {message}", err=True)


def handle_errors(fn: F) -> F:
    """Turn any error of a command into one line on standard error and an exit code (1, or 2
    for usage errors); `--debug` shows the traceback instead."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except CLIError as exc:
            if DEBUG["on"]:
                raise
            fail(str(exc))
            raise typer.Exit(exc.code) from None
        except KeyboardInterrupt:
            fail("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if DEBUG["on"]:
                raise
            text = str(exc).splitlines()[0] if str(exc) else ""
            hint = " (reflow --debug ... shows the traceback)"
            fail(f"{type(exc).__name__}: {text}{hint}" if text else f"{type(exc).__name__}{hint}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def stdout() -> Console:
    """A console on standard output as it is now (the test runner replaces it). Not a
    terminal: 160 columns (or $COLUMNS), so piped lines are cut less."""
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(
            file=sys.stdout, highlight=False, soft_wrap=False,
            width=int(os.environ.get("COLUMNS") or 0) or 160,
        )  # fmt: skip
    return console


# -- the store ---------------------------------------------------------------------------------


def store_url(given: str | None) -> str | None:
    """The store the command uses: `--store`, else `REFLOW_STORE` / reflow.toml, else None (the
    default, `$REFLOW_HOME/reflow.db`)."""
    from reflow.settings import settings

    url = given if given else settings().store
    return url or None


def open_cli_store(given: str | None) -> Any:
    """Open the store to read from (the caller closes it)."""
    from reflow.store import open_store

    url = store_url(given)
    if url == "memory":
        raise UsageError(
            "the store is 'memory' (REFLOW_STORE): nothing is kept to look at; give --store URL "
            "or unset REFLOW_STORE"
        )
    return open_store(url)


@contextmanager
def reading_store(given: str | None) -> Iterator[Any]:
    store = open_cli_store(given)
    try:
        yield store
    finally:
        store.close()


def resolve_run(store: Any, ref: str) -> Any:
    """The flow run named by `ref`: its id, a prefix of it (4 characters or more), or `last`."""
    if ref in ("last", "latest"):
        runs = [r for r in store.flow_runs(limit=20) if r.parent_id is None]
        if not runs:
            raise CLIError(f"{store!r} holds no flow run yet: make one with `reflow run`")
        return runs[0]
    record = store.flow_run(ref)
    if record is not None:
        return record
    if len(ref) < 4:
        raise UsageError(f"{ref!r} is too short to find a run by: give 4 characters of its id")
    found = store.run_ids_starting(ref, limit=6)
    if not found:
        raise CLIError(f"no flow run {ref!r} in {store!r} (`reflow runs ls` lists them)")
    if len(found) > 1:
        shown = ", ".join(f[:12] for f in found[:5])
        raise UsageError(f"{ref!r} names several runs ({shown}...): give more of the id")
    return store.flow_run(found[0])


# -- flows and parameters ----------------------------------------------------------------------


def load_target(target: str) -> Any:
    """The flow named `FILE.py:FLOW` (or `package.module:FLOW`, or `FILE.py` holding one flow).

    A file is loaded the way a resumed run finds it again (`reflow.store.flow_paths.find_flow`),
    so runs made here can be resumed by `reflow runs resume` and by workers.
    """
    from reflow.flow import Flow
    from reflow.store.flow_paths import find_flow, load_script

    where, sep, name = target.rpartition(":")
    if not sep:
        where, name = target, ""
    if not where:
        raise UsageError(f"{target!r}: name a flow as FILE.py:FLOW (or module:FLOW)")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UsageError(f"{where}: no such file (name a flow as FILE.py:FLOW)")
        try:
            namespace = load_script(path)
        except Exception as exc:
            raise CLIError(f"{where} raised {type(exc).__name__} while loading: {exc}") from exc
        flows = sorted(k for k, v in namespace.items() if isinstance(v, Flow))
        if not name:
            if len(flows) != 1:
                listed = ", ".join(flows) or "none"
                raise UsageError(f"{where}: say which flow, as {where}:FLOW (its flows: {listed})")
            name = flows[0]
        target = f"{path.resolve()}:{name}"
    elif not name:
        raise UsageError(f"{target!r}: name a flow as FILE.py:FLOW or module:FLOW")
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does
    try:
        found = find_flow(target)
    except (LookupError, AttributeError):
        raise UsageError(f"{where} has no flow {name!r}") from None
    except ImportError as exc:
        raise UsageError(f"cannot import {where!r}: {exc}") from exc
    if not isinstance(found, Flow):
        raise UsageError(
            f"{where}:{name} is {type(found).__name__}, not a flow: decorate it with @reflow.flow"
        )
    return found


def parse_params(flow: Any, pairs: list[str], params_json: Path | None) -> Any:
    """The flow's arguments from `--params-json FILE` then `--param k=v` (which wins), checked
    and converted by the flow's own parameter validation. A `k=v` value is taken as a string
    first, and as JSON when the string does not fit (`--param names='["a", "b"]'`)."""
    from reflow.flow.errors import ParameterError

    values: dict[str, Any] = {}
    if params_json is not None:
        try:
            text = sys.stdin.read() if str(params_json) == "-" else params_json.read_text()
            loaded = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"--params-json {params_json}: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--params-json {params_json}: expected a JSON object of parameters")
        values.update(loaded)
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r}: write it as NAME=VALUE")
        raw[key.strip()] = value
    values.update(raw)
    tried_json: set[str] = set()
    while True:
        try:
            if flow.validate_parameters:
                return flow._parameters.bind((), dict(values))
            bound = flow._parameters.signature.bind(**values)
            bound.apply_defaults()
            return bound
        except (ParameterError, TypeError) as exc:
            culprit = getattr(exc, "parameter", None)
            if culprit in raw and culprit not in tried_json:
                tried_json.add(culprit)
                try:
                    values[culprit] = json.loads(raw[culprit])
                    continue
                except json.JSONDecodeError:
                    pass
            raise UsageError(str(exc)) from None


# -- showing things ----------------------------------------------------------------------------

STATE_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "red",
    "CANCELLED": "yellow",
    "PAUSED": "magenta",
    "RUNNING": "cyan",
    "SCHEDULED": "blue",
    "PENDING": "dim",
}


def styled_state(name: str, state_type: str) -> str:
    """The state name in its colour (rich markup)."""
    style = STATE_STYLES.get(state_type, "")
    if name == "Skipped":
        style = "dim green"
    return f"[{style}]{name}[/]" if style else name


# -- stopping on a signal ----------------------------------------------------------------------


@contextmanager
def graceful_stop(stop: threading.Event, what: str) -> Iterator[None]:
    """SIGINT or SIGTERM sets `stop` (finish what runs, then end); a second one interrupts
    now (KeyboardInterrupt). Outside the main thread, signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(number: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(number).name
        typer.echo(f"reflow: {name}: {what} (again to stop at once)", err=True)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
