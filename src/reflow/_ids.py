"""Run ids: 32 hex digits, unique across processes and cheap to make (no system call each).

Each process draws a random 64-bit prefix once (again after a fork) and counts from a random
start; `os.urandom` per id would cost a system call, and in a busy flow a trip through the GIL.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter: itertools.count[int] = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(int.from_bytes(os.urandom(4), "big") << 16)


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new run id."""
    return f"{_prefix}{next(_counter):016x}"
