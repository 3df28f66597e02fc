"""Settings read from `REFLOW_*` environment variables, each where it is used.

The operations layer gathers these into one typed settings object with a `reflow.toml`; until
then each setting is a function reading its variable, so a changed environment is seen.
"""

from __future__ import annotations

import os


def _env_number(name: str, default: float, *, integer: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"the environment variable {name} must be {kind}, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"the environment variable {name} must be 0 or more, got {raw!r}")
    return value


def task_default_retries() -> int:
    """`REFLOW_TASK_DEFAULT_RETRIES`: retries of a task that does not set `retries` (0)."""
    return int(_env_number("REFLOW_TASK_DEFAULT_RETRIES", 0, integer=True))


def task_default_retry_delay_seconds() -> float:
    """`REFLOW_TASK_DEFAULT_RETRY_DELAY_SECONDS`: delay between task retries when unset (0)."""
    return _env_number("REFLOW_TASK_DEFAULT_RETRY_DELAY_SECONDS", 0.0)
