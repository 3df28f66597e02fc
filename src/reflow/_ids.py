"""Run ids: 32 random hex digits, cheap to make (no system call each).

A per-process generator seeded from `os.urandom` (again after a fork) draws 128 bits per id;
`os.urandom` per id would cost a system call, and in a busy flow a trip through the GIL. Any
prefix of an id is as random as the whole, so short ids (the first 8 digits) tell runs apart.
"""

from __future__ import annotations

import os
import random

_random = random.Random()


def _reseed() -> None:
    _random.seed(os.urandom(32))


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new run id."""
    return f"{_random.getrandbits(128):032x}"
