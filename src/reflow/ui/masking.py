"""Masking what looks secret before the dashboard shows it.

Runs are stored with their secrets already masked (`reflow.secrets.redact`), but a parameter
passed as a plain string (`password="hunter2"` without a `Secret[str]` hint), a URL with a
password in an error message or a token a task logged would still be in clear. The dashboard
masks, in everything it sends: the values of keys whose name says secret (password, token,
api_key, ...), the password of a URL, `Authorization`-style credentials, `name=value` pairs
whose name says secret, and tokens of well-known shapes (Slack, GitHub, AWS, OpenAI-style).
"""

from __future__ import annotations

import re
from typing import Any

from reflow.secrets import MASK, redact_text

_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"credential|authorization|^auth$|[-_]auth$|^auth[-_]|cookie|session[-_]?id|signature",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)")
_CREDENTIAL = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<secret>[^\s'\",;]{6,})")
_PAIR = re.compile(
    r"(?P<head>(?P<name>[\w.-]*(?:pass|pwd|secret|token|key|credential|auth|cookie|session|"
    r"signature)[\w.-]*)['\"]?\s*[=:]\s*['\"]?)(?P<secret>[^\s'\",;&)}\]]+)",
    re.IGNORECASE,
)
"""`name=value` or `name: value` where the name may say secret (checked by `secret_name`)."""
_SHAPED = re.compile(
    r"\b(?:xox[abposr]-[\w-]{8,}|gh[pousr]_\w{20,}|github_pat_\w{20,}|sk-[\w-]{20,}|"
    r"AKIA[0-9A-Z]{16}|glpat-[\w-]{20,})"
)


def secret_name(name: str) -> bool:
    """Whether a key or parameter name says its value is secret (`db_password`, `token`)."""
    return bool(_SECRET_NAME.search(name))


def mask_text(text: str) -> str:
    """`text` with whatever looks like a secret in it replaced by `**********`."""
    if not text:
        return text
    text = redact_text(text)  # the secrets this process revealed (usually none)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _CREDENTIAL.sub(lambda m: m["head"] + MASK, text)
    text = _PAIR.sub(
        lambda m: m["head"] + MASK if secret_name(m["name"]) and m["secret"] != MASK else m[0],
        text,
    )
    return _SHAPED.sub(MASK, text)


def mask_value(value: Any, name: str | None = None) -> Any:
    """A JSON-like value with secrets masked: the values under secret-looking keys (all of
    them, in lists and dicts too), and secret-looking text anywhere."""
    if name is not None and secret_name(name) and value not in (None, "", MASK):
        return MASK
    if isinstance(value, dict):
        return {str(k): mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v, name) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_optional(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


__all__ = ["mask_optional", "mask_text", "mask_value", "secret_name"]
