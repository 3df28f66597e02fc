"""Calls held back in a resumed run: their earlier run completed, but its result was not kept.

A task with `persist_result=False` (or a result that could not be stored) leaves no value in
the store. When a resumed flow run submits such a call again (`submit`, `map`), the engine
does not run it at once: it hands back a `HeldFuture` over the earlier, completed run, and runs
the call again only once something needs its value or waits for it: the flow's code (`result()`,
`wait()`, `done()`, `await`, `wait()`/`as_completed()` of reflow.futures), a task run that has
to run and takes the future as an argument or in `wait_for`, a subflow given it, or the flow
returning it. Calls downstream of it whose results were kept are reused without it; so a large
or unpicklable value is made again only where it is used. A direct call (`t(x)` in the flow)
returns its value to the flow's code, so it always runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reflow.task.futures import Future


class HeldFuture(Future[Any]):
    """The future of a held call: its `run` is the earlier, completed run (its state's result
    is `reflow.states.NOT_KEPT`) until the call is needed, then the new run."""

    __slots__ = ()

    def done(self) -> bool:
        """Whether the run has settled; asking starts a held call (its code waits for it)."""
        self._needed()
        return self._done

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        """As `Future.add_done_callback`; a held call starts, since someone waits for it."""
        self._needed()
        super().add_done_callback(fn)

    def _needed(self) -> None:
        owner: Any = self._owner  # the engine of the flow run that held it
        owner.release(self)


__all__ = ["HeldFuture"]
