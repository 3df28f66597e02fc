"""Live progress of a flow run, from `reflow.events`, and the summary table after it.

With a terminal attached, a rich live display shows the run's task tree (each task's runs and
states, a progress bar for every map) and a bar of finished task runs; it is replaced by the
summary when the run ends. Without one (a pipe, a log file, CI), each state change is one plain
line, as it happens. `Pending` changes are not shown: every run starts there.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from reflow import events
from reflow.cli._common import seconds, styled_state
from reflow.states import FINAL_TYPE_NAMES

FINAL = FINAL_TYPE_NAMES
SHOWN_PER_MAP = 6


@dataclass(slots=True)
class TaskView:
    """What the display knows of one task run."""

    key: str
    task_name: str
    state: str = "Pending"
    state_type: str = "PENDING"
    attempts: int = 0


@dataclass(slots=True)
class FlowView:
    """What the display knows of the flow run (or a subflow run)."""

    run_id: str
    name: str
    state: str = "Pending"
    state_type: str = "PENDING"
    tasks: dict[str, TaskView] = field(default_factory=dict)


class RunDisplay:
    """Shows one flow run's progress while it runs (use it as a context manager around the
    call that runs the flow)."""

    def __init__(self, console: Console, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.flows: dict[str, FlowView] = {}
        self.root: str | None = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._subscription: events.Subscription | None = None
        self._live: Live | None = None

    def __enter__(self) -> RunDisplay:
        self._subscription = events.subscribe(self._on_event)
        if self.live:
            self._live = Live(
                get_renderable=self._render,
                console=self.console,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._live.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._subscription is not None:
            self._subscription.unsubscribe()
        if self._live is not None:
            self._live.stop()

    # -- events -------------------------------------------------------------------------------

    def _on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.StateChange):
            return
        state = event.state
        with self._lock:
            if event.run_kind == "flow":
                if self.root is None and event.parent_id is None:
                    self.root = event.run_id
                if event.run_id != self.root and event.parent_id not in self.flows:
                    return
                view = self.flows.setdefault(event.run_id, FlowView(event.run_id, event.name))
                view.state, view.state_type = state.name, state.type.name
            elif event.run_kind == "task" and event.parent_id in self.flows:
                run = event.run
                key = getattr(run, "key", None) or event.name
                tasks = self.flows[event.parent_id].tasks
                task = tasks.setdefault(event.run_id, TaskView(key, event.name))
                task.key = key
                task.state, task.state_type = state.name, state.type.name
                task.attempts = len(getattr(run, "attempts", ()) or ())
            else:
                return
        if not self.live and state.name != "Pending":
            self._line(event)

    def _line(self, event: events.StateChange) -> None:
        state = event.state
        stamp = time.strftime("%H:%M:%S", time.localtime(state.timestamp))
        if event.run_kind == "flow":
            what = f"flow {event.name} {event.run_id[:8]}"
        else:
            what = f"  {getattr(event.run, 'key', None) or event.name}"
        detail = ""
        if state.name in ("Retrying", "Running") and state.attempt > 1:
            detail = f" (attempt {state.attempt})"
        if state.message and state.name not in ("Running", "Completed"):
            detail += f": {state.message}"
        sys.stdout.write(f"{stamp} {what} {state.name}{detail}\n")
        sys.stdout.flush()

    # -- the live view ------------------------------------------------------------------------

    def _render(self) -> RenderableType:
        with self._lock:
            flows = list(self.flows.values())
        if not flows:
            return Text("starting...", style="dim")
        root = flows[0]
        elapsed = seconds(time.monotonic() - self.started)
        header = Text.from_markup(
            f"[bold]{root.name}[/] {root.run_id[:8]}  "
            f"{styled_state(root.state, root.state_type)}  {elapsed}"
        )
        tree = Tree(header)
        total = finished = 0
        for flow in flows:
            branch = tree if flow is root else tree.add(
                Text.from_markup(
                    f"[bold]{flow.name}[/] {flow.run_id[:8]} "
                    f"{styled_state(flow.state, flow.state_type)}"
                )
            )  # fmt: skip
            groups: dict[str, list[TaskView]] = {}
            for task in list(flow.tasks.values()):
                groups.setdefault(task.task_name, []).append(task)
            for name, runs in groups.items():
                done = sum(1 for r in runs if r.state_type in FINAL)
                total, finished = total + len(runs), finished + done
                if len(runs) == 1:
                    branch.add(Text.from_markup(_task_line(runs[0])))
                    continue
                label = Table.grid(padding=(0, 1))
                label.add_row(
                    Text(name, style="bold"),
                    ProgressBar(total=len(runs), completed=done, width=24),
                    f"{done}/{len(runs)}",
                    Text.from_markup(_counts(runs)),
                )
                node = branch.add(label)
                busy = [r for r in runs if r.state_type not in FINAL]
                busy.sort(key=lambda r: r.state_type == "PENDING")  # running ones first
                for run in busy[:SHOWN_PER_MAP]:
                    node.add(Text.from_markup(_task_line(run)))
                if len(busy) > SHOWN_PER_MAP:
                    more = len(busy) - SHOWN_PER_MAP
                    node.add(Text(f"... {more} more not finished", style="dim"))
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            "task runs", ProgressBar(total=max(total, 1), completed=finished, width=40),
            f"{finished}/{total} finished",
        )  # fmt: skip
        return Group(tree, bar)


def _task_line(task: TaskView) -> str:
    attempts = f" [dim]({task.attempts} attempts)[/]" if task.attempts > 1 else ""
    return f"{task.key}  {styled_state(task.state, task.state_type)}{attempts}"


def _counts(runs: list[TaskView]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for run in runs:
        counts[(run.state, run.state_type)] = counts.get((run.state, run.state_type), 0) + 1
    return ", ".join(f"{n} {styled_state(s, t)}" for (s, t), n in counts.items())


# -- after the run -----------------------------------------------------------------------------


def task_duration(run: Any) -> float | None:
    """Seconds from a task run's first attempt's start to its last attempt's end."""
    attempts = getattr(run, "attempts", None) or []
    if not attempts or attempts[-1].ended is None:
        return None
    return float(attempts[-1].ended - attempts[0].started)


SUMMED_OVER = 20
"""A task with more runs than this (a big map) gets one summary row, not one per run."""


def summary_table(flow_run: Any) -> Table:
    """One row per task run (subflows' too): task, state, attempts, duration; a task with
    more than `SUMMED_OVER` runs gets one row: its runs' states counted, attempts added, and
    the longest duration."""
    table = Table(title=None, box=None, header_style="bold", pad_edge=False)
    table.add_column("task")
    table.add_column("state")
    table.add_column("attempts", justify="right")
    table.add_column("duration", justify="right")

    def add(run_of: Any, prefix: str) -> None:
        runs = run_of.task_runs
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.task_name] = counts.get(run.task_name, 0) + 1
        summed: set[str] = set()
        for run in runs:
            if counts[run.task_name] > SUMMED_OVER:
                if run.task_name not in summed:
                    summed.add(run.task_name)
                    _summed_row(table, prefix, [r for r in runs if r.task_name == run.task_name])
                continue
            table.add_row(
                prefix + (run.key or run.task_name),
                styled_state(run.state.name, run.state.type.name),
                str(len(run.attempts)),
                seconds(task_duration(run)),
            )
        for sub in run_of.subflow_runs:
            table.add_row(
                f"{prefix}{sub.name} (subflow)",
                styled_state(sub.state.name, sub.state.type.name) if sub.states else "-",
                str(sub.attempts),
                "-",
            )
            add(sub, prefix + "  ")

    add(flow_run, "")
    return table


def _summed_row(table: Table, prefix: str, runs: list[Any]) -> None:
    views = [
        TaskView(r.key or r.task_name, r.task_name, r.state.name, r.state.type.name) for r in runs
    ]
    durations = [d for d in (task_duration(r) for r in runs) if d is not None]
    table.add_row(
        f"{prefix}{runs[0].task_name} ({len(runs)} runs)",
        _counts(views),
        str(sum(len(r.attempts) for r in runs)),
        f"max {seconds(max(durations))}" if durations else "-",
    )


__all__ = ["RunDisplay", "summary_table", "task_duration"]
