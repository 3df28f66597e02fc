"""The atoms engine: runs a compiled flow, and on failure asks the retry controllers whether to
retry a scope, revert it, or revert everything.

One thread (the caller's) decides; the executor runs `execute` and `revert` calls. A failure
stops new atoms from starting; once the running ones have finished, the failed atom's nearest
controller decides. Reverts run newest completion first, each given its atom's arguments,
`result` and `flow_failures`.

A run given `runs=` is kept in a store through a `Keeper` (`reflow.atoms.persistence`): the
engine tells it when the run begins and ends, and hands it every atom state change (after
the `reflow.events` subscribers had it); `resume` (in `reflow.atoms.resume`) rebuilds an
engine from what was recorded.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import queue
from collections.abc import Mapping
from typing import Any

from reflow import events
from reflow._ids import new_id
from reflow.atoms.atom import Atom
from reflow.atoms.calls import Outcome, ancestors, execute, revert
from reflow.atoms.compile import Node
from reflow.atoms.failure import Failure
from reflow.atoms.persistence import Keeper
from reflow.atoms.retry import Decision, History, Retry
from reflow.executors.base import Executor
from reflow.executors.inline import InlineExecutor
from reflow.states import State, new_state

_RAN = frozenset({"Completed", "Failed"})


class WrappedFailure(ExceptionGroup):
    """Several errors ended the flow (a failure, and reverts that failed too)."""


class _Engine:
    def __init__(
        self,
        nodes: list[Node],
        store: dict[str, Any],
        executor: Executor,
        defer_reverts: bool,
        name: str,
        run_id: str | None = None,
        keeper: Keeper | None = None,
    ) -> None:
        self.nodes = nodes
        self.store = store
        self.executor = executor
        self.defer_reverts = defer_reverts
        self.name = name
        self.id = run_id or new_id()
        self.keeper = keeper
        """Keeps the run in a store (None: the run lives in memory)."""
        self.states: dict[Node, State[Any]] = {}
        self.results: dict[Node, Any] = {}
        self.arguments: dict[Node, dict[str, Any]] = {}
        self.completed: list[Node] = []  # in order of completion (success or failure)
        self.histories: dict[Node, History] = {n: History() for n in nodes if n.is_retry}
        self.failures: dict[str, Failure] = {}
        self.waiting: dict[Node, int] = {n: len(n.before) for n in nodes}
        self.ready: list[tuple[int, int, Node]] = []
        self.running: dict[concurrent.futures.Future[Any], Node] = {}
        self.finished: queue.SimpleQueue[concurrent.futures.Future[Any]] = queue.SimpleQueue()
        self.inline = type(executor) is InlineExecutor
        self.remote = executor.ships_code
        self.unresolved: list[tuple[Node, Failure]] = []
        self.errors: list[BaseException] = []
        self.failed = False
        self.run_ids: dict[Node, str] = {}
        """Each node's current execution: new when it becomes Pending (again, after a retry)."""
        for node in nodes:
            node.atom._progress = self._progress

    def begin(self, run_key: str | None = None) -> str | None:
        """Start a new run (`reflow.atoms.resume` sets recorded states instead): keep it, then
        make every atom Pending. Returns the id of the run made with `run_key` when another
        process began one first (nothing began here), else None."""
        nodes, keeper = self.nodes, self.keeper
        if keeper is not None:
            retries = [n.name for n in nodes if n.is_retry]
            names = [n.name for n in nodes]
            taken = keeper.begin(
                self.id, self.name, names, retries, self.store, self.defer_reverts, run_key
            )
            if taken is not None:
                for node in nodes:
                    node.atom._progress = None
                return taken
        try:
            for node in nodes:
                self._set(node, "Pending")
                if not node.before:
                    self._push(node)
        except BaseException:  # interrupted already: the run is left to be resumed
            if keeper is not None:
                keeper.interrupted(self.id)
            raise
        return None

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.executor.start()
        ended = False
        try:
            while True:
                if not self.unresolved and not self.failed:
                    self._start_ready()
                if not self.running:
                    if self.unresolved:
                        self._resolve()
                        continue
                    if self.ready and not self.failed:
                        continue  # the serial engine: the next round of ready atoms
                    break
                done = [self.finished.get()]  # one completion wakes the loop: no scan of all
                while not self.finished.empty():
                    done.append(self.finished.get_nowait())
                for future in sorted(done, key=lambda f: self.running[f].index):
                    self._finished(self.running.pop(future), future)
            ended = True
        finally:
            for node in self.nodes:
                node.atom._progress = None
            self.executor.shutdown()
            if self.keeper is not None and not ended:
                self.keeper.interrupted(self.id)  # not over: left to be resumed
        if self.keeper is not None:
            result = None if self.errors else dict(self.store)
            histories = {n.name: h for n, h in self.histories.items()}
            self.keeper.end(self.id, result, self.errors, histories)  # committed first
        if self.errors:
            if len(self.errors) == 1:
                raise self.errors[0]
            raise WrappedFailure(f"flow {self.name} failed", list(self.errors))  # type: ignore[arg-type]
        return dict(self.store)

    def _push(self, node: Node) -> None:
        heapq.heappush(self.ready, (-node.atom.priority, node.index, node))

    def _start_ready(self) -> None:
        """Start every atom ready now (those they make ready start on the next round)."""
        batch = [heapq.heappop(self.ready)[2] for _ in range(len(self.ready))]
        # One atom and nothing running (a chain): a worker thread would add a hand-off and
        # no overlap, so it runs here, as on the serial engine (never for a process pool).
        here = self.inline or (len(batch) == 1 and not self.running and not self.remote)
        for node in batch:
            atom = node.atom
            try:
                kwargs = atom.arguments(self.store)
            except KeyError as exc:
                self._record_failure(node, exc)
                continue
            self.arguments[node] = kwargs
            atom.run_id = self.run_ids[node]
            self._set(node, "Running")
            call = (execute, atom, self._lead(node), kwargs)
            if here:  # no future to hand over
                self._finished(node, Outcome(call))
                continue
            future = self.executor.submit(*call)
            self.running[future] = node
            future.add_done_callback(self.finished.put)

    def _finished(self, node: Node, future: concurrent.futures.Future[Any] | Outcome) -> None:
        exc = future.exception()
        if exc is None:
            result = future.result()
            try:
                provided = node.atom.provided(result)
            except TypeError as error:
                exc = error
        if exc is not None:
            self._record_failure(node, exc)
            return
        self.results[node] = result
        self.store.update(provided)
        self.completed.append(node)
        if node.is_retry:
            self.histories[node]._begin(result)
        self._set(node, "Completed", data=result)
        for nxt in node.after:
            self.waiting[nxt] -= 1
            if self.waiting[nxt] == 0 and self.states[nxt].name == "Pending":
                self._push(nxt)

    def _record_failure(self, node: Node, exc: BaseException) -> None:
        failure = Failure(exc)
        self.results[node] = failure
        self.failures[node.name] = failure
        self.completed.append(node)
        if node.is_retry:
            self.histories[node].failure = failure
        self._set(node, "Failed", exception=exc, message=f"{type(exc).__name__}: {exc}")
        self.unresolved.append((node, failure))

    # -- deciding ---------------------------------------------------------------------------

    def _resolve(self) -> None:
        """Every failure since the last decision, handled by its nearest controller."""
        unresolved, self.unresolved = self.unresolved, []
        try:
            self._decide_all(unresolved)
        finally:
            if self.failed:  # every failure of the round is reported, not only the first
                for _, failure in unresolved:
                    exc = failure.exception
                    if exc is not None and all(exc is not e for e in self.errors):
                        self.errors.append(exc)

    def _decide_all(self, unresolved: list[tuple[Node, Failure]]) -> None:
        """Group the failures by nearest controller; each controller sees all of its scope's
        failures in its history, then decides once."""
        groups: dict[int, tuple[Node | None, list[tuple[Node, Failure]]]] = {}
        for node, failure in unresolved:
            scope = node.controller
            groups.setdefault(id(scope), (scope, []))[1].append((node, failure))
        for scope, items in groups.values():
            failure = items[0][1]
            while not self.failed:
                if scope is None:  # no controller (left): revert everything
                    self._revert(self.nodes)
                    self._fail(failure)
                    break
                history = self.histories[scope]
                for node, each in items:
                    history._record(node.name, each)
                decision = self._decide(scope, history)
                if decision is Decision.RETRY:
                    if self._revert(scope.members):
                        self._retry(scope)
                    else:  # a revert failed: the scope cannot be run again on top of it
                        self._fail(failure)
                    break
                if decision is Decision.REVERT_ALL:
                    self._revert(self.nodes)
                    self._fail(failure)
                    break
                self._revert([*scope.members, scope])  # REVERT: then the parent decides
                if scope.controller is None:
                    if self.defer_reverts:
                        self._revert(self.nodes)
                    self._fail(failure)
                    break
                scope = scope.controller

    def _decide(self, scope: Node, history: History) -> Decision:
        controller = scope.atom
        assert isinstance(controller, Retry)
        try:
            decision = controller.on_failure(history, **self.arguments.get(scope, {}))
        except Exception as exc:
            exc.add_note(f"reflow: raised by on_failure() of retry controller {controller.name}")
            self.errors.append(exc)
            return Decision.REVERT_ALL
        if not isinstance(decision, Decision):
            self.errors.append(
                TypeError(
                    f"retry controller {controller.name}: on_failure() must return a Decision "
                    f"(RETRY, REVERT or REVERT_ALL), got {decision!r}"
                )
            )
            return Decision.REVERT_ALL
        return decision

    def _fail(self, failure: Failure) -> None:
        self.failed = True
        if failure.exception is not None and failure.exception not in self.errors:
            self.errors.insert(0, failure.exception)

    def _retry(self, scope: Node) -> None:
        """Run a reverted scope again from its controller."""
        for node in scope.members:
            self.failures.pop(node.name, None)  # this try is over: flow_failures forget it
        self._set(scope, "Retrying", message=f"try {len(self.histories[scope]) + 1}")
        for node in (scope, *scope.members):
            self.results.pop(node, None)
            if node in self.completed:
                self.completed.remove(node)
            if node is not scope:
                if node.is_retry:  # a nested controller starts afresh
                    self.histories[node] = History()
                self._set(node, "Pending")
        reset = {id(n) for n in (scope, *scope.members)}
        # recount what each reset node, and each node after one, still waits for
        touched = {id(n): n for n in (scope, *scope.members)}
        for node in (scope, *scope.members):
            for nxt in node.after:
                touched.setdefault(id(nxt), nxt)
        for node in touched.values():
            self.waiting[node] = sum(
                1 for b in node.before if id(b) in reset or self.states[b].name != "Completed"
            )
        self.ready = [entry for entry in self.ready if id(entry[2]) not in reset]
        heapq.heapify(self.ready)
        self.waiting[scope] = sum(1 for b in scope.before if self.states[b].name != "Completed")
        if self.waiting[scope] == 0:
            self._push(scope)

    def _revert(self, nodes: list[Node]) -> bool:
        """Revert the nodes that ran, newest completion first; a failed revert stops the
        reverts of the atoms before it (its branch) and is reported."""
        chosen = {id(n) for n in nodes}
        spared: set[int] = set()
        ok = True
        for node in reversed(list(self.completed)):
            if id(node) not in chosen or self.states[node].name not in _RAN:
                continue
            if id(node) in spared:
                continue
            self._set(node, "Reverting")
            try:
                self._call_revert(node)
            except Exception as exc:
                exc.add_note(f"reflow: raised by the revert of atom {node.name}")
                self.errors.append(exc)
                self._set(node, "Failed", exception=exc, message=f"revert failed: {exc!r}")
                spared |= ancestors(node)
                ok = False
                continue
            self.completed.remove(node)
            for name in node.atom.provides:
                self.store.pop(name, None)
            # A reverted controller keeps its history until it is Pending again (a retry of
            # an enclosing scope): nothing reads it meanwhile, and a kept run's record of it
            # stays what the controller decided from.
            self._set(node, "Reverted")
        return ok

    def _call_revert(self, node: Node) -> None:
        kwargs = dict(self.arguments.get(node, {}))
        if not node.is_retry:
            kwargs.update(result=self.results.get(node), flow_failures=dict(self.failures))
        self.executor.submit(revert, node.atom, self._lead(node), kwargs).result()

    def _lead(self, node: Node) -> tuple[Any, ...]:
        """What comes before the store's arguments: a controller's history."""
        return (self.histories[node],) if node.is_retry else ()

    # -- records ----------------------------------------------------------------------------

    def _set(
        self,
        node: Node,
        name: str,
        message: str = "",
        data: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        state = new_state(name, message=message, data=data, exception=exception)
        if name == "Pending":
            self.run_ids[node] = new_id()
        previous = self.states.get(node)
        self.states[node] = state
        keeper = self.keeper
        # a kept run's controller: its history as of this change, for the store
        kept = self.histories[node]._copy() if keeper is not None and node.is_retry else None
        if events.subscribers:
            events.publish(
                events.StateChange(
                    "atom", self.run_ids[node], node.name, state, previous, self.id, kept
                )
            )
        if keeper is not None:  # after the subscribers, as when the store was one of them
            keeper.changed(self.id, node.name, state, previous, kept)

    def _progress(self, atom: Atom, progress: float, details: Mapping[str, Any] | None) -> None:
        if events.subscribers:
            events.publish(
                events.Progress(
                    "atom", atom.run_id or atom.name, atom.name, progress, dict(details or {}),
                    self.id,
                )
            )  # fmt: skip
