"""reflow's settings: one typed, immutable object read from `REFLOW_*` variables and `reflow.toml`.

    from reflow.settings import settings

    settings().log_level          # "INFO", or REFLOW_LOG_LEVEL, or log_level in reflow.toml

Each setting has a default, a key in `reflow.toml` (the file named by `REFLOW_CONFIG`, else
`reflow.toml` in the working directory) and an environment variable, which wins over the file.
`SETTINGS` lists them; docs/cli.md shows them in one table (a test keeps the two in step).

This module is standard library only and cheap to call: the object is rebuilt only when a
`REFLOW_*` variable or the file changed, so a changed environment is seen at once (tests rely on
it), and the task and flow layers can read a setting where they use it.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name (the `reflow.toml` key), variable, default and meaning."""

    name: str
    env: str
    default: Any
    kind: str
    """What the value is, as the docs' table says it: "path", "number", "whole number", ..."""
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "REFLOW_HOME", ".reflow", "path",
            "reflow's folder: the default store `reflow.db`, the signing key, `secrets.toml`"),
    Setting("store", "REFLOW_STORE", None, "store URL",
            "where runs are kept: `sqlite:///path`, a file path, `postgresql://...`, or `memory`; "
            "unset: `$REFLOW_HOME/reflow.db` (every flow without `store=` or `persist=False`)"),
    Setting("log_level", "REFLOW_LOG_LEVEL", "INFO", "level",
            "the level of the console log handler (`reflow.logging.configure()`, the CLI): "
            "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    Setting("log_format", "REFLOW_LOG_FORMAT", "text", "text or json",
            "console log lines as text, or one JSON object a line (for machines)"),
    Setting("heartbeat_seconds", "REFLOW_HEARTBEAT_SECONDS", 10.0, "number",
            "how often a running stored run says it is alive (a cancel request is seen within "
            "a second, or this, if shorter)"),
    Setting("task_default_retries", "REFLOW_TASK_DEFAULT_RETRIES", 0, "whole number",
            "retries of a task that does not set `retries`"),
    Setting("task_default_retry_delay_seconds", "REFLOW_TASK_DEFAULT_RETRY_DELAY_SECONDS", 0.0,
            "number", "the delay between retries of a task that does not set one"),
    Setting("env_file", "REFLOW_ENV_FILE", ".env", "path",
            "the `.env` file `reflow.secret()` reads (after the environment)"),
    Setting("timezone", "REFLOW_TIMEZONE", "UTC", "time zone",
            "the time zone of cron schedules that do not name one (`reflow serve --cron`)"),
)  # fmt: skip
"""Every setting, in the order of the docs' table."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings in force: the defaults, then `reflow.toml`, then `REFLOW_*` variables."""

    home: Path
    store: str | None
    log_level: str
    log_format: str
    heartbeat_seconds: float
    task_default_retries: int
    task_default_retry_delay_seconds: float
    env_file: Path
    timezone: str
    config_file: Path | None = None
    """The `reflow.toml` that was read, if there was one."""


def _path(value: Any, where: str) -> Path:
    if not isinstance(value, str | os.PathLike) or str(value).strip() == "":
        raise ValueError(f"{where} must be a path, got {value!r}")
    return Path(value)


def _text(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {value!r}")
    return value or None


def _number(value: Any, where: str, *, integer: bool = False) -> float:
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool):
        raise ValueError(f"{where} must be {kind}, got {value!r}")
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be {kind}, got {value!r}") from None
    if integer and isinstance(value, float) and value != number:
        raise ValueError(f"{where} must be {kind}, got {value!r}")
    if number < 0:
        raise ValueError(f"{where} must be 0 or more, got {value!r}")
    return number


def _choice(choices: tuple[str, ...], *, upper: bool) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        text = str(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in choices:
            raise ValueError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
        return text

    return check


def _timezone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a time zone name such as Europe/Paris, got {value!r}")
    return value.strip()


_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "home": _path,
    "store": _text,
    "log_level": _choice(LOG_LEVELS, upper=True),
    "log_format": _choice(LOG_FORMATS, upper=False),
    "heartbeat_seconds": _number,
    "task_default_retries": lambda v, w: int(_number(v, w, integer=True)),
    "task_default_retry_delay_seconds": _number,
    "env_file": _path,
    "timezone": _timezone,
}


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The `reflow.toml` to read: `REFLOW_CONFIG`, else `reflow.toml` in the working directory."""
    env = os.environ if environ is None else environ
    return Path(env.get("REFLOW_CONFIG") or "reflow.toml")


def load(environ: Mapping[str, str] | None = None, config: Path | None = None) -> Settings:
    """Read the settings now: defaults, then the `reflow.toml` (if there is one), then the
    environment. A bad value raises ValueError naming where it came from."""
    env = os.environ if environ is None else environ
    path = config if config is not None else config_path(env)
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    found: Path | None = None
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        if "REFLOW_CONFIG" in env and config is None:
            raise ValueError(
                f"REFLOW_CONFIG names {path}, which does not exist: create it or unset it"
            ) from None
    else:
        found = path
        try:
            table = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid TOML: {exc}") from None
        table = table.get("reflow", table) if isinstance(table.get("reflow"), dict) else table
        known = {s.name for s in SETTINGS}
        for key, value in table.items():
            if key not in known:
                raise ValueError(
                    f"{path}: unknown setting {key!r}; the settings are {', '.join(sorted(known))}"
                )
            values[key] = _CHECKS[key](value, f"{key} in {path}")
    for setting in SETTINGS:
        value = env.get(setting.env)
        if value is not None and value.strip() != "":
            values[setting.name] = _CHECKS[setting.name](value, f"the variable {setting.env}")
    if values["store"] is not None and not isinstance(values["store"], str):
        values["store"] = str(values["store"])
    for name in ("home", "env_file"):
        values[name] = Path(values[name])
    return Settings(**values, config_file=found)


_cache: tuple[Any, Settings] | None = None
_lock = threading.Lock()
_WATCHED = (*(s.env for s in SETTINGS), "REFLOW_CONFIG")
"""The variables the settings depend on: the cache is rebuilt when one of them changes."""


def _new_lock_after_fork() -> None:
    """A forked child gets a lock of its own: one held by another thread at the fork would
    never be released there."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def settings() -> Settings:
    """The settings in force, rebuilt only when a `REFLOW_*` setting variable, the working
    directory or `reflow.toml` changed."""
    global _cache
    get = os.environ.get
    env = tuple([get(name) for name in _WATCHED])  # every flow call reads this: no full scan
    path = env[-1] or "reflow.toml"
    try:
        stamp: Any = os.stat(path).st_mtime_ns
    except OSError:
        stamp = None
    try:
        where = os.getcwd()  # a relative reflow.toml (or home) depends on it
    except OSError:
        where = None
    key = (env, where, stamp)
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        loaded = load()
        _cache = (key, loaded)
        return loaded


def task_default_retries() -> int:
    """`REFLOW_TASK_DEFAULT_RETRIES`: retries of a task that does not set `retries` (0)."""
    return settings().task_default_retries


def task_default_retry_delay_seconds() -> float:
    """`REFLOW_TASK_DEFAULT_RETRY_DELAY_SECONDS`: delay between task retries when unset (0)."""
    return settings().task_default_retry_delay_seconds


__all__ = ["SETTINGS", "Setting", "Settings", "config_path", "load", "settings"]
