"""reflow's retry layer on a flaky service: retries, backoff with jitter, hooks, giving up.

Run it with `make demo`. Every wait here is real but short (well under a second in all).
"""

from __future__ import annotations

import asyncio
import random
import time

from reflow import AttemptState, retry, waits
from reflow.retry import AttemptsExhausted, ExceptionMatches

START = time.monotonic()


def log(message: str) -> None:
    print(f"  {time.monotonic() - START:6.3f}s  {message}")


class RateLimited(Exception):
    """A 429 from the service, carrying the Retry-After it asked for."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429 Too Many Requests (Retry-After: {retry_after} s)")
        self.retry_after = retry_after


class FlakyService:
    """Fails its first `failures` calls with the given errors, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def get(self, path: str) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"200 OK {path}"


def report(state: AttemptState) -> None:
    """One hook for every phase: shows the order reflow calls them in."""
    detail = f" wait={state.wait_seconds:.3f}s" if state.wait_seconds else ""
    error = f" {type(state.exception).__name__}: {state.exception}" if state.exception else ""
    log(f"{state.phase.value:<14} attempt {state.attempt}{detail}{error}")


HOOKS = dict(
    before_attempt=report, on_success=report, on_failure=report,
    before_wait=report, after_wait=report, on_giveup=report,
)  # fmt: skip


def backoff_with_jitter() -> None:
    print("1. Exponential backoff with full jitter, on ConnectionError only")
    service = FlakyService(ConnectionError("reset by peer"), ConnectionError("reset by peer"))

    @retry(attempts=4, on=ConnectionError, wait=waits.exponential(0.02, 1, jitter=1.0), **HOOKS)
    def fetch(path: str) -> str:
        return service.get(path)

    log(f"result: {fetch('/standup')!r} after {service.calls} calls")


def server_dictates_the_wait() -> None:
    print("\n2. The error says how long to wait (Retry-After), else back off")
    service = FlakyService(RateLimited(0.05), ConnectionError("timeout"))

    def retry_after(exc: BaseException) -> float | None:
        return exc.retry_after if isinstance(exc, RateLimited) else None

    wait = waits.from_exception(retry_after, fallback=waits.exponential(0.01, 0.1))

    @retry(until=AttemptsExhausted(5) | ~ExceptionMatches((RateLimited, ConnectionError)),
           wait=wait, before_wait=report)  # fmt: skip
    def fetch(path: str) -> str:
        return service.get(path)

    log(f"result: {fetch('/updates')!r}")


def giving_up() -> None:
    print("\n3. Giving up: the original exception, with a note saying what happened")
    service = FlakyService(*[ConnectionError(f"refused #{n}") for n in range(1, 10)])

    @retry(attempts=3, wait=[0.01, 0.02], on_giveup=report)
    def fetch(path: str) -> str:
        return service.get(path)

    try:
        fetch("/down")
    except ConnectionError as exc:
        log(f"caught {type(exc).__name__}: {exc}")
        for note in exc.__notes__:
            log(f"note: {note}")


def not_retried() -> None:
    print("\n4. Errors the policy does not name are raised at once")
    service = FlakyService(PermissionError("403 Forbidden"))

    @retry(attempts=5, on=ConnectionError, wait=0.5)
    def fetch(path: str) -> str:
        return service.get(path)

    try:
        fetch("/secret")
    except PermissionError as exc:
        log(f"caught {exc!r} after {service.calls} call, no wait")


async def async_too() -> None:
    print("\n5. The same policy on an async function, with a per-attempt timeout")
    calls = 0

    @retry(attempts=3, timeout=0.05, wait=0.01, on_failure=report)
    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1 if calls == 1 else 0)  # the first attempt hangs
        return "answered"

    log(f"result: {await slow_then_fast()!r} after {calls} attempts")


def main() -> None:
    random.seed(7)
    backoff_with_jitter()
    server_dictates_the_wait()
    giving_up()
    not_retried()
    asyncio.run(async_too())
    print(f"\ndone in {time.monotonic() - START:.2f} s")


if __name__ == "__main__":
    main()
