"""Flows the CLI tests run, as `tests/cli/flows.py:NAME` (loaded the way the CLI loads files)."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import reflow
from reflow import Secret, flow, get_run_logger, task


@task
def plus(a: int, b: int) -> int:
    return a + b


@flow
def add(a: int, b: int = 1) -> int:
    return plus(a, b)


@task
def explode(why: str) -> None:
    raise RuntimeError(why)


@flow
def fails(why: str = "the disk is full") -> None:
    explode(why)


@flow
def typed(day: date, names: list[str], limit: int = 3) -> str:
    return f"{day.isoformat()} {','.join(names)} {limit}"


@task
def square(x: int) -> int:
    return x * x


@flow
def squares(n: int = 5) -> int:
    return sum(square.map(range(n)).result())


@task
def nap(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


@flow
def slow(n: int = 200, seconds: float = 0.05) -> int:
    """Long enough to be cancelled while it runs: n naps, one after the other."""
    return sum(nap(i, seconds) for i in range(n))


@task
def call_api(token: Secret[str]) -> int:
    value = token.reveal()
    get_run_logger().info("calling the API with %s", value)  # a careless log line
    return len(value)


@task
def read_env_secret() -> int:
    token = reflow.secret("REFLOW_TEST_API_KEY")
    get_run_logger().info("key %s, revealed %s", token, token.reveal())
    return len(token.reveal())


@flow
def secretive(token: Secret[str]) -> int:
    return call_api(token) + read_env_secret()


@task
def note(side: str) -> str:
    with Path(side).open("a") as file:
        file.write(f"{os.getpid()}\n")
    return side


@flow
def tick(side: str) -> str:
    """What `reflow serve` fires in the tests: one line in the side file per run."""
    return note(side)


@task
def step_one(side: str) -> str:
    with Path(side).open("a") as file:
        file.write("one\n")
    return "one"


@task
def step_two(side: str) -> str:
    text = Path(side).read_text()
    with Path(side).open("a") as file:
        if "two-failed" not in text:
            file.write("two-failed\n")
            raise ConnectionError("the upload was cut off")
        file.write("two\n")
    return "two"


@flow
def twice(side: str) -> str:
    """Fails the first time (step two), completes when resumed: step one runs once."""
    return step_one(side) + step_two(side)
