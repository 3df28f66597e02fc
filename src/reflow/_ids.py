"""Run ids: 32 hex digits, cheap to make (no system call each).

A per-process generator seeded from `os.urandom` (again after a fork) draws 128 bits per id;
`os.urandom` per id would cost a system call, and in a busy flow a trip through the GIL. Any
prefix of an id is as random as the whole, so short ids (the first 8 digits) tell runs apart.

Task runs, made by the thousand, take `new_ordered_id()` instead: the time in microseconds
first, then 72 random bits. A store's index of them then grows at its end, not at random
places (random keys made SQLite's inserts twice as slow); they are not meant to be typed.
"""

from __future__ import annotations

import os
import random
import time

_random = random.Random()


def _reseed() -> None:
    _random.seed(os.urandom(32))


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new run id."""
    return f"{_random.getrandbits(128):032x}"


def new_ordered_id() -> str:
    """A new id that sorts after the ids made before it (to the microsecond)."""
    return f"{time.time_ns() // 1000:014x}{_random.getrandbits(72):018x}"
