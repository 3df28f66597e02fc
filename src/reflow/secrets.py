"""Secrets: values that say `**********` wherever reflow shows or keeps them.

    token = reflow.secret("SLACK_TOKEN")   # the environment, then .env, then secrets.toml
    client = Slack(token.reveal())         # the value itself, only where it is used
    print(token)                           # **********

`reflow.secret(name)` looks in the environment, then in the `.env` file (`REFLOW_ENV_FILE`,
`.env` in the working directory by default), then in `$REFLOW_HOME/secrets.toml` (which must be
readable by its owner only, mode 0600). A missing secret raises `SecretNotFound`, naming every
place it looked.

A `Secret` masks itself in `repr`, `str` and f-strings, in JSON, in the run records (flow-run
parameters go through `redact()`, and a parameter hinted `Secret[str]` is redacted even when a
plain string was passed) and in logs (`SecretsFilter`, installed by `reflow.logging.configure`,
replaces every revealed secret's text in a record). A secret read by name is stored as its name
when a run's arguments are kept for a resume, and read again where the run resumes; so is a
string holding a revealed secret's text (`secret_parts`, used by the store's codec): the text
around it is kept, the secret by its name.

Standard library only: pydantic is imported only when it builds a `Secret[...]` parameter's
validator.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import re
import stat
import threading
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MASK = "**********"
"""What a secret shows instead of its value."""


class SecretNotFound(LookupError):
    """`reflow.secret(name)` found the name nowhere; the message lists where it looked."""


class SecretUnavailable(RuntimeError):
    """A secret given as a value (not read by name) was not kept with a stored run, so a
    resumed run cannot reveal it."""


MIN_REDACTED = 4
"""Secret values shorter than this are not searched for in log text (they would mask common
words); they still mask themselves."""

_revealed: set[str] = set()
"""The text of every secret revealed so far in this process: what log redaction looks for."""
_revealed_lock = threading.Lock()
_names: dict[str, str] = {}
"""The text of each secret read by name -> that name: how a stored string holding it is kept."""
revealed_forms: list[bytes] = []
"""Each revealed secret's text as bytes, in UTF-8 and as JSON writes it (escaped, ASCII): what
the store's codec looks for in what it is about to store. Changed in place, never replaced."""


class Secret(Generic[T]):
    """A value that masks itself: `repr()` and `str()` give `**********`; `reveal()` gives the
    value. `Secret[str]` as a flow parameter's hint turns the argument into a Secret."""

    __slots__ = ("_value", "name")

    def __init__(self, value: T, name: str | None = None) -> None:
        self._value = value
        self.name = name
        """The name it was read by (`reflow.secret(name)`), or None for a value given as is."""
        if isinstance(value, str) and len(value) >= MIN_REDACTED:
            _remember(value, name)

    def reveal(self) -> T:
        """The secret value itself: pass it where it is used, never to a log or a result."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, {MASK!r})" if self.name else f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (a stored run's arguments, a result) as its name, never as its value."""
        if self.name is not None:
            return (_read_again, (self.name,))
        return (_unavailable, ())

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """How pydantic checks a `Secret[X]` parameter: as an X, then wrapped (a Secret is
        taken as it is); shown and serialised as the mask."""
        from pydantic_core import core_schema

        args = typing.get_args(source)
        inner = handler.generate_schema(args[0]) if args else core_schema.any_schema()

        def wrap(value: Any) -> Secret[Any]:
            return value if isinstance(value, Secret) else Secret(value)

        return core_schema.union_schema(
            [
                core_schema.is_instance_schema(Secret),
                core_schema.no_info_after_validator_function(wrap, inner),
            ],
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _: MASK),
        )


def _remember(value: str, name: str | None) -> None:
    """Note a secret's text (and its name, when read by one) for redaction and the store."""
    with _revealed_lock:
        if name is not None:
            _names.setdefault(value, name)
        if value in _revealed:
            return
        _revealed.add(value)
        forms = {value.encode("utf-8", "surrogatepass"), json.dumps(value)[1:-1].encode()}
        revealed_forms.extend(sorted(forms))


def _read_again(name: str) -> Secret[str]:
    """Unpickling a secret read by name reads it again, here (a resumed or queued run)."""
    return secret(name)


class _Unavailable:
    """What a nameless secret becomes in a stored run: revealing it says what to do."""

    def reveal(self) -> Any:
        raise SecretUnavailable(
            "this secret was passed as a value, and values of secrets are never stored, so a "
            "resumed or queued run cannot have it: read it by name inside the flow "
            '(reflow.secret("NAME")) instead of passing it as an argument'
        )

    def __repr__(self) -> str:
        return f"Secret({MASK!r}, unavailable)"

    def __str__(self) -> str:
        return MASK


def _unavailable() -> Any:
    return _Unavailable()


# -- strings holding a secret's text, as a store keeps them ----------------------------------

SecretParts = tuple[str | tuple[str] | None, ...]
"""A string split around the secrets in it: its own text as `str`, each secret read by name as
`(name,)`, and each secret given as a value (no name to read it again by) as None."""


def secret_parts(text: str) -> SecretParts | None:
    """`text` split around the revealed secrets in it (see `SecretParts`), or None when it
    holds none: what a store keeps instead of the text (`text_again` makes it back)."""
    if not _revealed or not any(value in text for value in _revealed):
        return None
    with _revealed_lock:
        values = sorted(_revealed, key=len, reverse=True)
        names = dict(_names)
    pattern = "|".join(re.escape(v) for v in values)
    parts: list[str | tuple[str] | None] = []
    for i, piece in enumerate(re.split(f"({pattern})", text)):
        if i % 2 == 0:
            if piece:
                parts.append(piece)
        else:
            name = names.get(piece)
            parts.append(None if name is None else (name,))
    return tuple(parts)


def text_again(parts: SecretParts) -> Any:
    """The string `secret_parts` split, each secret read again by its name (here, now); a
    secret given as a value cannot be: then the whole string is unavailable (revealing it
    says why), as a nameless `Secret` is."""
    text = []
    for part in parts:
        if part is None:
            return _Unavailable()
        text.append(part if isinstance(part, str) else secret(part[0]).reveal())
    return "".join(text)


# -- reading secrets ---------------------------------------------------------------------------


def secret(name: str, default: str | None = None) -> Secret[str]:
    """The secret `name`, from the environment, else the `.env` file, else
    `$REFLOW_HOME/secrets.toml`; `default` (if given) when none has it, else SecretNotFound."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"secret() takes the secret's name, a non-empty str, got {name!r}")
    from reflow.settings import settings

    current = settings()
    looked: list[str] = []
    value = os.environ.get(name)
    looked.append("the environment")
    if value is None:
        value = _from_env_file(current.env_file, name, looked)
    if value is None:
        value = _from_secrets_toml(current.home / "secrets.toml", name, looked)
    if value is None:
        if default is not None:
            return Secret(default, name)
        raise SecretNotFound(
            f"secret {name!r} not found: looked in {', '.join(looked)}; set it in one of them"
        )
    return Secret(value, name)


def _from_env_file(path: Path, name: str, looked: list[str]) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        looked.append(f"{path} (no such file)")
        return None
    looked.append(str(path))
    return parse_env_file(text).get(name)


def parse_env_file(text: str) -> dict[str, str]:
    """`NAME=value` lines (`export NAME=value` too), `#` comments, values optionally quoted."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def _from_secrets_toml(path: Path, name: str, looked: list[str]) -> str | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        looked.append(f"{path} (no such file)")
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(
            f"{path} can be read by others (mode {stat.filemode(mode)}): secrets files must be "
            f"private; run `chmod 600 {path}`"
        )
    looked.append(str(path))
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    value = table.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(
            f"{path}: the secret {name!r} must be a string, got {type(value).__name__}"
        )
    return value


# -- redaction ---------------------------------------------------------------------------------


def is_secret_hint(hint: Any) -> bool:
    """Whether a parameter's hint is `Secret` or `Secret[...]` (also as a string, also inside
    `Optional`/`Annotated`)."""
    if hint is inspect.Parameter.empty or hint is None:
        return False
    if isinstance(hint, str):
        return hint.strip() == "Secret" or "Secret[" in hint
    if hint is Secret or typing.get_origin(hint) is Secret:
        return True
    return any(is_secret_hint(arg) for arg in typing.get_args(hint) if arg is not type(None))


def redact_value(value: Any) -> Any:
    """The value with every Secret in it (in lists, tuples, sets and dicts too) masked."""
    if isinstance(value, Secret | _Unavailable):
        return MASK
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, str) and _revealed:
        return redact_text(value)
    return value


def redact(
    parameters: Mapping[str, Any], signature: inspect.Signature | None = None
) -> dict[str, Any]:
    """A run's parameters as they may be stored: Secret values masked, and the values of
    parameters hinted `Secret[...]` masked whatever they are (a plain string passed without
    validation)."""
    hinted = _secret_parameters(signature) if signature is not None else frozenset()
    return {
        name: MASK if name in hinted and value is not None else redact_value(value)
        for name, value in parameters.items()
    }


def _secret_parameters(signature: inspect.Signature) -> frozenset[str]:
    """The names of the parameters hinted `Secret[...]` (cached per signature)."""
    try:
        return _secret_parameters_cached(signature)
    except TypeError:  # a default that cannot be hashed: no cache
        return _secret_names_of(signature)


def _secret_names_of(signature: inspect.Signature) -> frozenset[str]:
    return frozenset(n for n, p in signature.parameters.items() if is_secret_hint(p.annotation))


_secret_parameters_cached = functools.lru_cache(maxsize=256)(_secret_names_of)


def redact_text(text: str) -> str:
    """`text` with the value of every secret revealed in this process replaced by the mask.
    Costs one check while no secret has been read."""
    if not _revealed or not text:
        return text
    for value in sorted(_revealed, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class SecretsFilter(logging.Filter):
    """A logging filter that masks secrets in every record it sees (message, arguments,
    exception text): add it to a handler, as `reflow.logging.configure()` does. A `Secret`
    among the arguments masks itself; this catches a revealed value that reached a message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _revealed:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, as it would anyway
            return True
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


__all__ = [
    "MASK",
    "Secret",
    "SecretNotFound",
    "SecretParts",
    "SecretUnavailable",
    "SecretsFilter",
    "is_secret_hint",
    "parse_env_file",
    "redact",
    "redact_text",
    "redact_value",
    "revealed_forms",
    "secret",
    "secret_parts",
    "text_again",
]
