"""Results as bytes: JSON when the value survives a round trip, else signed cloudpickle.

A pickle runs code when loaded, so a pickled result read back from a store is trusted only if
it carries an HMAC-SHA256 signature made with this installation's key (`$REFLOW_HOME/key`,
created with mode 0600). A blob that is tampered with, truncated, signed with another key or
not made here is refused with `UntrustedResultError`, and never unpickled.

A value holding the text of a secret revealed in this process (`reflow.secrets`) is never
stored in clear: each string holding one is pickled as its own text around the secret's name,
and read again by that name where it is loaded (a secret given as a value, with no name, comes
back unavailable, as a nameless `Secret` does). A value whose secret cannot be reached so (in
`bytes`, say) is refused, and its run is kept without it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reflow.secrets import revealed_forms, secret_parts, text_again

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
            data = _json_string(value).encode()
        else:
            text = _json_if_exact(value)
            data = b"" if text is None else text.encode()
        if data:
            if not revealed_forms or not _holds_secret(data):
                return Encoded("json", data)
            return self._pickled(value, keep_secrets=True)
        return self._pickled(value, keep_secrets=False)

    def _pickled(self, value: Any, keep_secrets: bool) -> Encoded:
        """Signed cloudpickle; with `keep_secrets` (or when a secret shows in the bytes), each
        string holding a secret pickled as its parts (`reflow.secrets.secret_parts`)."""
        import cloudpickle

        if not keep_secrets:
            body = cloudpickle.dumps(value)
            keep_secrets = bool(revealed_forms) and _holds_secret(body)
        if keep_secrets:
            stream = io.BytesIO()
            _secrets_pickler()(stream).dump(value)
            body = stream.getvalue()
            if _holds_secret(body):
                raise ValueError(
                    "it holds the text of a secret where reflow cannot keep it by name (in "
                    "bytes, or an object that pickles itself): it is not stored in clear"
                )
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
        import cloudpickle  # noqa: F401  (what the pickle's functions and classes need)

        return _Unpickler(io.BytesIO(body)).load()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()


def _holds_secret(data: bytes) -> bool:
    """Whether `data` holds a revealed secret's text (UTF-8, or as JSON escapes it)."""
    return any(form in data for form in revealed_forms)


_SECRET_TEXT = "reflow-secret-text"


@functools.cache
def _secrets_pickler() -> type:
    """cloudpickle's Pickler that keeps secrets by name (a class made when first needed, so
    cloudpickle is imported only then)."""
    import cloudpickle

    class SecretsByName(cloudpickle.Pickler):  # type: ignore[misc]
        """cloudpickle, with each string holding a secret kept as its parts."""

        def persistent_id(self, obj: Any) -> Any:
            if type(obj) is str:
                parts = secret_parts(obj)
                if parts is not None:
                    return (_SECRET_TEXT, parts)
            return None

    return SecretsByName


class _Unpickler(pickle.Unpickler):
    """`pickle.loads`, reading a string kept as a secret's parts by the secret's name."""

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is tuple and len(pid) == 2 and pid[0] == _SECRET_TEXT:
            return text_again(pid[1])
        raise pickle.UnpicklingError(f"a stored result refers to {pid!r}, unknown to reflow")


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
