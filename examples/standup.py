"""The classic standup pipeline as a reflow flow: who has not posted today gets a reminder.

Run it with `make demo`, or:

    reflow run examples/standup.py:standup          # then: reflow runs show last

1. `fetch_updates` asks the team's standup service for today's updates. The service is local
   and simulated, and flaky: its first two requests in a process fail with 503, so the task
   retries with exponential backoff (0.05 s, then 0.1 s, with jitter).
2. `check_member` runs once per team member (a map) and Skips those who already posted.
3. `send_reminder` runs once per check; a skipped check skips its reminder (skip propagation).
   It reads the chat token with `reflow.secret("SLACK_TOKEN")` and has a revert: if the run
   fails, the reminders it sent are deleted again.
4. `post_report` posts a summary to the team channel whatever happened (`all_finished`): a
   cleanup task that always runs.

The reminders are the flow's reference tasks: a reminder that could not be sent fails the run
even though the report completed. See it fail (and revert) with a member whose messages are
closed:

    reflow run examples/standup.py:standup --param unreachable='["erin"]'

The simulated chat accepts any token; set SLACK_TOKEN (the environment, `.env`, or
`$REFLOW_HOME/secrets.toml`) and check that it appears nowhere in `.reflow/reflow.db`.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import date
from typing import Any

import reflow
from reflow import Skip, flow, get_run_logger, task, unmapped
from reflow.states import State
from reflow.task import exponential_backoff
from reflow.triggers import all_finished

TEAMS = {
    "platform": ["ada", "bob", "chen", "dana", "erin", "farid"],
    "data": ["gus", "hana", "ivo"],
}
DEMO_TOKEN = "xoxb-local-simulated-chat-token"


class ServiceUnavailable(ConnectionError):
    """The standup service answered 503: worth retrying."""


class StandupService:
    """A local, simulated standup service: the updates posted today, by member.

    Its first `failures` requests in this process fail with 503, whatever asks; then it answers.
    """

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests = 0
        self._lock = threading.Lock()
        self.posted = {
            "platform": {
                "ada": "shipped the retry budget",
                "chen": "reviewing the store schema",
                "farid": "on call, quiet night",
            },
            "data": {"hana": "backfilled November"},
        }

    def updates(self, team: str, day: date) -> dict[str, str]:
        with self._lock:
            self.requests += 1
            failing = self.requests <= self.failures
        time.sleep(0.01)  # a round trip
        if failing:
            raise ServiceUnavailable(f"GET /teams/{team}/standups/{day}: 503 Service Unavailable")
        return dict(self.posted.get(team, {}))


class ChatError(RuntimeError):
    """The chat refused a message (closed direct messages): retrying does not help."""


class Chat:
    """A local, simulated chat: messages by id, and who cannot receive any."""

    def __init__(self) -> None:
        self.messages: dict[str, tuple[str, str]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def post(self, token: str, to: str, text: str, closed: list[str]) -> str:
        if not token:
            raise ChatError("chat.postMessage: not_authed (no token)")
        if to in closed:
            raise ChatError(f"chat.postMessage to {to}: messages_closed")
        with self._lock:
            message_id = f"msg-{next(self._ids)}"
            self.messages[message_id] = (to, text)
        return message_id

    def delete(self, token: str, message_id: str) -> None:
        with self._lock:
            self.messages.pop(message_id, None)


SERVICE = StandupService(failures=2)
CHAT = Chat()


@task(
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=0.05),
    retry_jitter_factor=0.5,
    retry_on=[ConnectionError],
)
def fetch_updates(team: str, day: date) -> dict[str, str]:
    """Today's updates from the standup service, by member (retried while it answers 503)."""
    return SERVICE.updates(team, day)


@task
def check_member(member: str, updates: dict[str, str]) -> str:
    """The member, if they still have to post; Skip if they already did."""
    if member in updates:
        raise Skip(f"{member} already posted: {updates[member]!r}")
    return member


@task(retries=1, retry_delay_seconds=0.02)
def send_reminder(member: str, day: date, closed: list[str]) -> str:
    """Remind one member by direct message; returns the message's id (for the revert)."""
    token = reflow.secret("SLACK_TOKEN", default=DEMO_TOKEN)
    text = f"Hi {member}, your standup update for {day} is missing"
    message_id = CHAT.post(token.reveal(), member, text, closed)
    get_run_logger().info("reminded %s (%s)", member, message_id)
    return message_id


@send_reminder.revert
def unsend_reminder(message_id: str, member: str, day: date, closed: list[str]) -> None:
    """The run failed: take the reminder back."""
    CHAT.delete(reflow.secret("SLACK_TOKEN", default=DEMO_TOKEN).reveal(), message_id)


@task(trigger=all_finished, skip_on_upstream_skip=False)
def post_report(team: str, day: date, checks: list[Any], reminders: list[Any]) -> str:
    """Post the summary to the team channel: runs whatever happened upstream."""
    posted = sum(1 for c in checks if c is None)  # a skipped check's result is None
    reminded = [r for r in reminders if isinstance(r, str)]
    failed = [r for r in reminders if isinstance(r, State)]
    summary = f"{team} {day}: {posted} posted, {len(reminded)} reminded, {len(failed)} failed"
    get_run_logger().info("report: %s", summary)
    return summary


@flow(reference_tasks=[send_reminder])
def standup(team: str = "platform", day: date | None = None, unreachable: list[str] = []) -> Any:  # noqa: B006 - a parameter, never mutated
    """Remind the members of `team` who have not posted their standup update for `day`."""
    if team not in TEAMS:
        raise ValueError(f"unknown team {team!r}: the teams are {', '.join(sorted(TEAMS))}")
    day = day or date.today()
    members = TEAMS[team]
    updates = fetch_updates.submit(team, day)
    checks = check_member.map(members, unmapped(updates))
    reminders = send_reminder.map(checks, day, unmapped(unreachable))
    return post_report.submit(team, day, checks, reminders)


if __name__ == "__main__":
    import sys

    from reflow.cli import main

    sys.exit(main(["run", f"{__file__}:standup", *sys.argv[1:]]))
