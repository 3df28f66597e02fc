"""Resuming a kept atoms run: an engine rebuilt from the states its atoms were recorded in.

`resume(run_id, flow, runs=...)` reads the run back, checks that `flow` has the atoms it was
recorded with, and goes on from where the last process stopped (TaskFlow's model: an engine
loaded with the same flow detail continues it):

- an atom recorded Completed does not run again: its result is read back, and the values it
  provided go back into the store, in the order they were first provided;
- an atom recorded Running (its process died while it ran) runs again, as do those that had
  not started;
- an atom whose revert was interrupted (Reverting) or failed is reverted again; one recorded
  Reverted is not;
- a failure that was being handled (its atom recorded Failed) goes to its controller again,
  with the history recorded for it, so a controller that decides from its history (all of
  reflow's do) decides as it did, and the reverts it asked for go on;
- a controller gets its recorded history back: `Times(3)` counts the tries of every process.

A run that ended is not run again: a completed one returns its stored result, a failed one
raises its stored failures (as `RemoteFailure`s).
"""

from __future__ import annotations

import logging
from typing import Any

from reflow._ids import new_id
from reflow.atoms.atom import Atom, check_kept
from reflow.atoms.compile import FlowError, Node, compile_flow
from reflow.atoms.engine import WrappedFailure, _Engine
from reflow.atoms.failure import Failure
from reflow.atoms.patterns import Pattern
from reflow.atoms.persistence import RecordedAtom, RecordedRun, Try, keeper_for
from reflow.atoms.retry import History
from reflow.executors.base import Executor, check_executor
from reflow.executors.inline import InlineExecutor
from reflow.states import new_state

logger = logging.getLogger("reflow.atoms")


def resume(
    run_id: str,
    flow: Pattern | Atom,
    runs: Any = True,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Continue the kept atoms run `run_id` with `flow` (built as it was for the run: the
    same atom names); return the store, as `run` does, or raise the run's failure.

    `runs` is the store the run was kept in (True: the default store). Atoms recorded
    Completed do not run again; see the module's documentation for the rest. A run that
    another live process is running is refused (`reflow.store.RunHeld`), before anything runs.
    """
    keeper = keeper_for(runs)
    if keeper is None:
        raise ValueError(
            "resume() reads a kept run from its store, and runs= gives none (REFLOW_STORE is "
            "'memory'?): pass the store the run was kept in, runs='runs.db' for instance"
        )
    recorded = keeper.load(run_id)
    if recorded.state == "Completed":
        return dict(recorded.result or {})
    if recorded.state == "Failed":
        _raise_failures(recorded)
    nodes = compile_flow(flow, recorded.store)
    check_kept(node.atom for node in nodes)
    _check_same_flow(flow, nodes, recorded)
    chosen = InlineExecutor() if executor is None else check_executor(executor)
    engine = _Engine(
        nodes, dict(recorded.store), chosen, recorded.defer_reverts, recorded.name, run_id,
        keeper,
    )  # fmt: skip
    keeper.resumed(run_id)
    try:
        _restore(engine, recorded)
    except BaseException:
        keeper.interrupted(run_id)  # still not over: it can be resumed again
        raise
    return engine.run()


def _raise_failures(recorded: RecordedRun) -> None:
    errors = [f.exception for f in recorded.errors if isinstance(f.exception, Exception)]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise WrappedFailure(f"flow {recorded.name} failed", errors)
    raise RuntimeError(
        f"atoms run {recorded.run_id} ({recorded.name}) failed; its errors were not recorded"
    )


def _check_same_flow(flow: Pattern | Atom, nodes: list[Node], recorded: RecordedRun) -> None:
    """The flow must have the recorded atoms and controllers, by name: what was recorded of
    each is given back to the atom of the same name."""
    here = {n.name: n.is_retry for n in nodes}
    problems = []
    if flow.name != recorded.name:
        problems.append(f"it is a run of flow {recorded.name!r}, not of {flow.name!r}")
    missing = [name for name in recorded.atoms if name not in here]
    if missing:
        problems.append(f"this flow lacks {', '.join(missing)}")
    added = [name for name in here if name not in recorded.retries and name not in recorded.atoms]
    if added:
        problems.append(f"the run had no {', '.join(added)}")
    changed = [
        name
        for name, is_retry in here.items()
        if name in recorded.atoms and is_retry != (name in recorded.retries)
    ]
    if changed:
        problems.append(f"{', '.join(changed)} changed between atom and retry controller")
    if problems:
        raise FlowError(
            f"atoms run {recorded.run_id} cannot be resumed with this flow: "
            + "; ".join(problems)
            + ". Resume it with the flow it ran (built the same way, with the same names)"
        )


def settled(states: tuple[str, ...]) -> tuple[str, bool]:
    """Where an atom stands for a resumed run, from its recorded states: its state since it
    last became Pending, with an interrupted or failed revert undone (it will run again); and
    whether its execution since then failed (a failure being handled, reverted or not yet)."""
    recent = list(states)
    if "Pending" in recent:
        recent = recent[len(recent) - recent[::-1].index("Pending") :]
    failed = any(
        name == "Failed" and (i == 0 or recent[i - 1] != "Reverting")
        for i, name in enumerate(recent)
    )
    while recent:
        if recent[-1] == "Reverting":
            recent.pop()
        elif recent[-2:] == ["Reverting", "Failed"]:
            del recent[-2:]
        else:
            break
    return (recent[-1] if recent else "Pending"), failed


def _restore(engine: _Engine, recorded: RecordedRun) -> None:
    """Give `engine` the recorded states, results, failures and histories, then the store,
    arguments and order of completion they imply, and what is ready to run."""
    done: list[tuple[float, int, Node]] = []  # completed or failed: reverted newest first
    handled: list[tuple[float, int, Node]] = []  # failures being handled (reverted or not)
    for node in engine.nodes:
        record = recorded.records.get(node.name)
        where, failed = settled(record.states) if record is not None else ("Pending", False)
        if where == "Completed" and record is not None and not record.has_result:
            logger.warning(
                "reflow: atom %s of run %s completed, but its result could not be stored: it "
                "runs again", node.name, engine.id,
            )  # fmt: skip
            where = "Running"
        if node.is_retry:
            engine.histories[node] = _history(recorded.histories.get(node.name, []))
        if where in ("Pending", "Retrying", "Running"):
            if where == "Running" or record is None:
                engine._set(node, "Pending")  # a new execution, recorded as one
            else:
                engine.run_ids[node] = new_id()
                engine.states[node] = new_state("Pending")
            continue
        assert record is not None
        engine.run_ids[node] = new_id()
        order = (float("inf") if record.order is None else record.order, node.index, node)
        if failed:
            failure = record.failure or _lost(node.name)
            engine.failures[node.name] = failure
            handled.append(order)
            if node.is_retry:
                engine.histories[node].failure = failure
        if where == "Completed":
            engine.states[node] = new_state("Completed", data=record.result)
            engine.results[node] = record.result
        elif where == "Failed":
            failure = engine.failures[node.name]
            engine.states[node] = new_state(
                "Failed", exception=failure.exception, message=failure.exception_str
            )
            engine.results[node] = failure
        else:  # Reverted: its values left the store
            engine.states[node] = new_state("Reverted")
            continue
        done.append(order)
    for _, _, node in sorted(done, key=lambda item: item[:2]):
        try:
            engine.arguments[node] = node.atom.arguments(engine.store)
        except KeyError:
            engine.arguments[node] = {}
        engine.completed.append(node)
        if engine.states[node].name == "Completed":
            engine.store.update(node.atom.provided(engine.results[node]))
    for _, _, node in sorted(handled, key=lambda item: item[:2]):
        engine.unresolved.append((node, engine.failures[node.name]))  # decided again
    for node in engine.nodes:
        engine.waiting[node] = sum(
            1 for before in node.before if engine.states[before].name != "Completed"
        )
        if engine.states[node].name == "Pending" and engine.waiting[node] == 0:
            engine._push(node)


def _history(tries: list[Try]) -> History:
    history = History()
    history._tries = [(value, dict(failures)) for value, failures in tries]
    return history


def _lost(name: str) -> Failure:
    return Failure.from_dict(
        {
            "type_names": ["builtins.RuntimeError"],
            "exception_str": f"atom {name} failed; its failure was not recorded",
            "traceback_str": "",
        }
    )


__all__ = ["RecordedAtom", "resume", "settled"]
