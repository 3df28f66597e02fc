"""reflow's task layer on a standup pipeline: retries, a cache hit, a skip, a failure, hooks.

Run it with `make demo`. Every wait here is real but short (well under a second in all).
Every call of a task is a run; hooks collect the runs, and a table sums them up at the end.
"""

from __future__ import annotations

import time
from typing import Any

from reflow import task
from reflow.states import State
from reflow.task import INPUTS, Skip, Task, TaskRun

START = time.monotonic()
RUNS: dict[str, TaskRun] = {}  # every run the hooks saw, by run id, in order of first sight


def log(message: str) -> None:
    """Print a line with the time since the demo started."""
    print(f"  {time.monotonic() - START:6.3f}s  {message}")


def watch(task: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
    """One hook for every kind: keeps the run and shows each state it enters."""
    RUNS.setdefault(run.id, run)
    message = f"  {state.message}" if state.message else ""
    log(f"{label(run):<26} {state.name:<13} #{state.attempt}{message}")


HOOKS: dict[str, Any] = dict(
    on_running=watch, on_retry=watch, on_completion=watch, on_failure=watch
)


class UpdatesService:
    """Fails its first `failures` requests with a connection reset, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def updates(self, team: str) -> dict[str, str]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("connection reset by peer")
        return {"ada": "shipped the retry layer", "grace": "reviewing the task layer"}


SERVICE = UpdatesService(failures=2)


@task(cache_policy=INPUTS, **HOOKS)
def team_roster(team: str) -> list[str]:
    """Who is in the team: slow to look up, and the same answer all day."""
    return ["ada", "grace", "linus"]


@task(retries=2, retry_delay_seconds=[0.02, 0.05], **HOOKS)
def fetch_updates(team: str) -> dict[str, str]:
    """Today's posted updates, from a flaky service."""
    return SERVICE.updates(team)


@task(**HOOKS)
def remind(person: str, updates: dict[str, str]) -> str:
    """Nudge someone who has not posted yet."""
    if person in updates:
        raise Skip(f"{person} already posted", result=f"nothing to do for {person}")
    return f"reminded {person}"


@task(retries=1, retry_delay_seconds=0.01, **HOOKS)
def publish_summary(team: str, updates: dict[str, str]) -> str:
    """Post the digest to the team channel, whose webhook is down today."""
    raise ConnectionError("chat webhook answered 503 Service Unavailable")


def label(run: TaskRun) -> str:
    """The task's name and its first argument: `remind(ada)`."""
    return f"{run.task_name}({run.args[0]})" if run.args else run.task_name


def history(run: TaskRun) -> str:
    return " > ".join(state.name for state in run.states)


def duration_ms(run: TaskRun) -> float:
    """From Pending to the final state, retry delays included."""
    return (run.states[-1].timestamp - run.states[0].timestamp) * 1000


def summary(runs: list[TaskRun]) -> None:
    header = ("task", "final state", "attempts", "duration ms", "state history")
    rows = [
        (
            label(run),
            run.state.name,
            str(len(run.attempts)),
            f"{duration_ms(run):.2f}",
            history(run),
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3}  # right-aligned columns

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header))
    print(line(tuple("-" * width for width in widths)))
    for row in rows:
        print(line(row))


def main() -> None:
    print("1. Look up the team (cache_policy=INPUTS: the first call runs)")
    roster = team_roster("platform")
    log(f"roster: {roster}")

    print("\n2. Fetch the updates (retries=2, retry_delay_seconds=[0.02, 0.05])")
    updates = fetch_updates("platform")
    log(f"{len(updates)} updates after {SERVICE.calls} requests")

    print("\n3. Remind whoever has not posted (Skip for those who have)")
    for person in roster:
        log(f"remind({person!r}) returned {remind(person, updates)!r}")

    print("\n4. Look up the team again: the same inputs, so a cache hit")
    again = team_roster("platform", return_state=True)
    assert again.is_cached()
    assert again.result() == roster
    log(f"{again.name}, no attempt made ({again.message})")

    print("\n5. Publish the summary (retries=1): fails for good, returned as a state")
    published = publish_summary("platform", updates, return_state=True)
    assert published.is_failed()
    log(f"{published.name}: {published.message}")
    for note in getattr(published.exception, "__notes__", []):
        log(f"note: {note}")

    print(f"\nRun summary ({len(RUNS)} runs)\n")
    summary(list(RUNS.values()))
    print(f"\ndone in {time.monotonic() - START:.2f} s")


if __name__ == "__main__":
    main()
