"""Results as bytes: JSON when the value survives a round trip, else signed cloudpickle.

A pickle runs code when loaded, so a pickled result read back from a store is trusted only if
it carries an HMAC-SHA256 signature made with this installation's key (`$REFLOW_HOME/key`,
created with mode 0600). A blob that is tampered with, truncated, signed with another key or
not made here is refused with `UntrustedResultError`, and never unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Encoding = Literal["json", "pickle"]
_MAGIC = b"reflow-pickle-v1\n"
_DIGEST = hashlib.sha256().digest_size


class UntrustedResultError(ValueError):
    """A stored result that reflow did not sign (or that changed since): it is not loaded."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A result as stored: how it is encoded, and the bytes."""

    encoding: Encoding
    data: bytes


def reflow_home() -> Path:
    """`$REFLOW_HOME` (or `home` in reflow.toml), else `.reflow` in the working directory."""
    from reflow.settings import settings

    return settings().home


def load_or_create_key(path: Path | None = None) -> bytes:
    """The signing key at `path` (default `$REFLOW_HOME/key`), made (0600) if there is none."""
    path = path if path is not None else reflow_home() / "key"
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            key = path.read_bytes()
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(key)
                file.flush()
                os.fsync(file.fileno())
    if len(key) < 16:
        raise UntrustedResultError(
            f"the signing key {path} holds {len(key)} bytes; a reflow key has 32. Remove it to "
            "have a new one made (results signed with the old one will then be refused)"
        )
    return key


class ResultCodec:
    """Encodes results for a store and decodes them back, checking pickles' signatures."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("ResultCodec needs a key of at least 16 bytes")
        self._key = key

    def encode(self, value: Any) -> Encoded:
        """JSON when `json.loads(json.dumps(value)) == value` exactly, else signed cloudpickle."""
        kind = type(value)
        if kind is int and -_BIG < value < _BIG:  # the common results, at once
            return Encoded("json", repr(value).encode())
        if kind is bool or value is None:
            return _TRUE if value is True else _FALSE if value is False else _NULL
        if kind is str:
            return Encoded("json", _json_string(value).encode())
        text = _json_if_exact(value)
        if text is not None:
            return Encoded("json", text.encode())
        import cloudpickle

        body = cloudpickle.dumps(value)
        return Encoded("pickle", _MAGIC + self._sign(body) + body)

    def decode(self, encoded: Encoded) -> Any:
        """The value back; UntrustedResultError for a pickle this key did not sign."""
        if encoded.encoding == "json":
            return json.loads(encoded.data)
        if encoded.encoding != "pickle":
            raise UntrustedResultError(f"unknown result encoding {encoded.encoding!r}")
        data = encoded.data
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _DIGEST:
            raise UntrustedResultError(
                "a stored result is not a reflow pickle (no reflow header): refusing to load it"
            )
        signature = data[len(_MAGIC) : len(_MAGIC) + _DIGEST]
        body = data[len(_MAGIC) + _DIGEST :]
        if not hmac.compare_digest(signature, self._sign(body)):
            raise UntrustedResultError(
                "a stored result's signature does not match: it was changed after it was "
                "written, or written with another reflow key. Refusing to unpickle it"
            )
        import cloudpickle

        return cloudpickle.loads(body)

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()


_BIG = 10**4000  # Python refuses to print ints of more than 4,300 digits: those are pickled
_TRUE, _FALSE, _NULL = Encoded("json", b"true"), Encoded("json", b"false"), Encoded("json", b"null")
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps does to a str


def _json_if_exact(value: Any) -> str | None:
    """`value` as JSON text if reading it back gives an equal value of the same types."""
    if not _json_shaped(value):
        return None
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return text


def _json_shaped(value: Any, depth: int = 0) -> bool:
    """Only what JSON gives back as is: None, bool, int, float, str, lists, str-keyed dicts."""
    if depth > 100:
        return False
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return True
    if kind is list:
        return all(_json_shaped(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _json_shaped(v, depth + 1) for k, v in value.items())
    return False  # tuples, sets, bytes, dataclasses, subclasses: they would not come back equal
