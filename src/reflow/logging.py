"""Console logging for reflow: the level from `REFLOW_LOG_LEVEL`, text or JSON lines.

    import reflow.logging
    reflow.logging.configure()            # REFLOW_LOG_LEVEL, REFLOW_LOG_FORMAT (text | json)

`configure()` puts one handler on the `reflow` logger (which `get_run_logger()`'s `reflow.runs`
belongs to), writing to standard error. Text lines carry the run they came from; JSON lines are
one object each, with the run ids as fields, for log shippers. Every record passes through
`SecretsFilter` first, so a revealed secret never reaches the console. The CLI calls it; a
program of your own can too. Calling it again replaces the handler it installed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from reflow.secrets import SecretsFilter

RUN_FIELDS = ("flow_run_id", "flow_name", "task_run_id", "task_name")
"""The attributes `get_run_logger()` puts on its records."""


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, the run ids
    when the record has them, and the exception's traceback text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in RUN_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO  standup/send_reminder: reminded dave` (the run's names when it has them)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        flow_name = getattr(record, "flow_name", None)
        task_name = getattr(record, "task_name", None)
        where = record.name
        if flow_name:
            where = f"{flow_name}/{task_name}" if task_name else flow_name
        line = f"{stamp} {record.levelname:<7} {where}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """Writes to the stream it was given, or to `sys.stderr` as it is when each record is
    written (so a live display that redirects standard error shows the lines above it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._fixed = value if value is not sys.stderr else None


_installed: ConsoleHandler | None = None


def configure(
    level: str | int | None = None, format: str | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Log reflow's records (and your runs') to standard error (or `stream`), at `level`
    (default: `REFLOW_LOG_LEVEL`, INFO) as `format` "text" or "json" (default:
    `REFLOW_LOG_FORMAT`). Returns the handler; a second call replaces the first's."""
    global _installed
    from reflow.settings import LOG_FORMATS, settings

    current = settings()
    chosen_level = current.log_level if level is None else level
    if isinstance(chosen_level, str):
        number = logging.getLevelName(chosen_level.upper())
        if not isinstance(number, int):
            raise ValueError(
                f"unknown log level {chosen_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        chosen_level = number
    chosen_format = (current.log_format if format is None else format).lower()
    if chosen_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {format!r}: use 'text' or 'json'")
    handler = ConsoleHandler(stream)
    handler.setFormatter(JSONFormatter() if chosen_format == "json" else TextFormatter())
    handler.addFilter(SecretsFilter())
    logger = logging.getLogger("reflow")
    if _installed is not None:
        logger.removeHandler(_installed)
    logger.addHandler(handler)
    logger.setLevel(chosen_level)
    _installed = handler
    return handler


def unconfigure() -> None:
    """Remove the handler `configure()` installed (tests use it to leave logging as it was)."""
    global _installed
    if _installed is not None:
        logger = logging.getLogger("reflow")
        logger.removeHandler(_installed)
        logger.setLevel(logging.NOTSET)
        _installed = None


__all__ = ["ConsoleHandler", "JSONFormatter", "RUN_FIELDS", "TextFormatter", "configure"]
