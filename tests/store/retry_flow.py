"""A decorated flow whose `retry=Times(3)` controller the fault test kills in its second try
and resumes in another process (test_flow_histories.py).

    python retry_flow.py start | resume RUN_ID

`call` always fails; in its second try, the first time, it kills the process (SIGKILL). Every
try appends `x:call:N` to `$KILL_SIDE`; the child prints its outcome last: `ok <result>` or
`failed <error>`.
"""

from __future__ import annotations

import os
import signal
import sys

import reflow
from reflow import flow, task
from reflow.atoms import Times


def note(line: str) -> None:
    with open(os.environ["KILL_SIDE"], "a") as side:
        side.write(line + "\n")


def first_time(marker: str) -> bool:
    with open(os.environ["KILL_SIDE"], "a+") as side:
        side.seek(0)
        if marker in side.read().split():
            return False
    note(marker)
    return True


@task
def call(attempt: int) -> None:
    note(f"x:call:{attempt}")
    if attempt == 2 and first_time("killed"):
        from reflow.store.persistence import persistence

        kept = persistence(True, os.environ["KILL_DB"])
        assert kept is not None
        kept.recorder.flush()  # the test reads what the store had when the process died
        os.kill(os.getpid(), signal.SIGKILL)
    raise TimeoutError(f"try {attempt} timed out")


@flow(store=os.environ.get("KILL_DB"), retry=Times(3, name="thrice", provides="attempt"))
def flaky(attempt: int) -> None:
    call(attempt)


if __name__ == "__main__":
    try:
        if sys.argv[1] == "resume":
            state = reflow.resume(sys.argv[2], os.environ["KILL_DB"])
        else:
            state = flaky.run().state
        state.result()
    except Exception as exc:
        print(f"failed {type(exc).__name__}: {exc}", flush=True)
    else:
        print("ok", flush=True)
