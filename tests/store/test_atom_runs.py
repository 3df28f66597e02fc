"""Atoms runs kept in a store (`run(..., runs=...)`) and resumed from it (`resume`).

A run is "interrupted" here by an atom that raises KeyboardInterrupt: it passes through the
engine as a killed process would stop it, leaving the run unfinished in the store. The tests
with real processes and SIGKILL are in test_atom_faults.py.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import reflow
from reflow import events
from reflow.atoms import (
    AlwaysRevert,
    FlowError,
    ForEach,
    FunctorTask,
    LinearFlow,
    RemoteFailure,
    Times,
    UnorderedFlow,
    resume,
    run,
)
from reflow.executors import ThreadExecutor
from reflow.store import (
    PostgresStore,
    SQLiteStore,
    StoreConflict,
    StoreError,
    UntrustedResultError,
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A REFLOW_HOME of the test's own (its signing key, its default store)."""
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return tmp_path / "home"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


Log = list[str]


def step(
    log: Log,
    name: str,
    fails: Callable[[dict[str, Any]], bool] = lambda kwargs: False,
    requires: tuple[str, ...] = (),
    provides: str | None = None,
    stops: Callable[[], bool] = lambda: False,
    revert_stops: Callable[[], bool] = lambda: False,
) -> FunctorTask:
    """An atom logging `x:name` when it runs and `r:name` when reverted; `stops` and
    `revert_stops` interrupt the run (KeyboardInterrupt) when they say so."""

    def work(**kwargs: Any) -> str:
        if stops():
            raise KeyboardInterrupt
        log.append(f"x:{name}")
        if fails(kwargs):
            raise TimeoutError(f"{name} timed out")
        return f"{name}-done"

    def undo() -> None:
        if revert_stops():
            raise KeyboardInterrupt
        log.append(f"r:{name}")

    return FunctorTask(work, name=name, requires=requires, provides=provides, revert=undo)


def once() -> Callable[[], bool]:
    """True the first time it is asked, then False: interrupt one run only."""
    calls = iter([True])
    return lambda: next(calls, False)


def chain(log: Log, stops_at: str = "") -> LinearFlow:
    stop = once() if stops_at else (lambda: False)
    return LinearFlow("chain").add(
        *[
            step(log, name, provides=name, stops=stop if name == stops_at else lambda: False)
            for name in ("a", "b", "c", "d")
        ]
    )


# --- what is recorded ------------------------------------------------------------------------


def test_a_kept_run_is_in_the_store_when_run_returns(db: str) -> None:
    log: Log = []

    result = run(chain(log), store={"region": "eu"}, runs=db, run_id="r1")

    with SQLiteStore(db) as store:
        record = store.flow_run("r1")
        atom_run = store.atom_run("r1")
        atoms = store.atoms("r1")
        states = [(s.run_kind, s.name) for s in store.states("r1")]
    assert record is not None
    assert atom_run is not None
    assert (record.name, record.state, record.parameters) == (
        "chain",
        "Completed",
        {"region": "eu"},
    )
    assert record.result is not None
    assert record.result.encoding == "json"
    assert atom_run.atoms == ["a", "b", "c", "d"]
    assert states == [("atoms", "Running"), ("atoms", "Completed")]
    assert [(a.name, a.kind, a.state, a.order) for a in atoms] == [
        ("a", "atom", "Completed", 0), ("b", "atom", "Completed", 1),
        ("c", "atom", "Completed", 2), ("d", "atom", "Completed", 3),
    ]  # fmt: skip
    assert [s.name for s in atoms[0].states] == ["Pending", "Running", "Completed"]
    assert atoms[0].result is not None
    assert atoms[0].result.data == b'"a-done"'
    assert result == {"region": "eu", "a": "a-done", "b": "b-done", "c": "c-done", "d": "d-done"}


def test_results_that_are_not_json_are_kept_as_signed_pickles(db: str) -> None:
    flow = LinearFlow("pair").add(FunctorTask(lambda: (1, 2), name="pair", provides="pair"))

    run(flow, runs=db, run_id="r1")

    with SQLiteStore(db) as store:
        (atom,) = store.atoms("r1")
    assert atom.result is not None
    assert atom.result.encoding == "pickle"
    assert resume("r1", flow, runs=db) == {"pair": (1, 2)}


def test_a_failed_run_keeps_its_failures_as_text(db: str) -> None:
    log: Log = []
    flow = LinearFlow("chain").add(step(log, "a"), step(log, "b", fails=lambda kwargs: True))

    with pytest.raises(TimeoutError, match="b timed out"):
        run(flow, runs=db, run_id="r1")

    with SQLiteStore(db) as store:
        record = store.flow_run("r1")
        atom_run = store.atom_run("r1")
        a, b = store.atoms("r1")
    assert record is not None
    assert atom_run is not None
    assert (record.state, record.error) == ("Failed", "TimeoutError: b timed out")
    assert b.failure is not None
    assert b.failure["type_names"][0] == "builtins.TimeoutError"
    assert b.failure["exception_str"] == "b timed out"
    assert "Traceback" in b.failure["traceback_str"]
    assert [e["exception_str"] for e in atom_run.errors] == ["b timed out"]
    assert [s.name for s in b.states] == ["Pending", "Running", "Failed", "Reverting", "Reverted"]
    assert [s.name for s in a.states][-2:] == ["Reverting", "Reverted"]


def test_a_controllers_history_is_kept_with_every_try(db: str) -> None:
    log: Log = []
    flow = LinearFlow("flaky", retry=Times(3, name="thrice", provides="attempt")).add(
        step(log, "call", fails=lambda kwargs: kwargs["attempt"] < 3, requires=("attempt",))
    )

    run(flow, runs=db, run_id="r1")

    with SQLiteStore(db) as store:
        (history,) = store.retry_histories("r1")
        controller = store.atoms("r1")[0]
    assert (history.controller, controller.kind) == ("thrice", "retry")
    assert [t.value.data if t.value else None for t in history.tries] == [b"1", b"2", b"3"]
    assert [sorted(t.failures) for t in history.tries] == [["call"], ["call"], []]
    assert history.tries[0].failures["call"]["exception_str"] == "call timed out"


def test_a_failed_runs_history_keeps_the_tries_that_exhausted_it(db: str) -> None:
    log: Log = []
    flow = LinearFlow("flaky", retry=Times(2, name="twice")).add(
        step(log, "call", fails=lambda kwargs: True)
    )

    with pytest.raises(TimeoutError):
        run(flow, runs=db, run_id="r1")

    with SQLiteStore(db) as store:
        (history,) = store.retry_histories("r1")
    assert [sorted(t.failures) for t in history.tries] == [["call"], ["call"]]


def test_the_runs_events_carry_its_id(db: str) -> None:
    seen: list[events.Event] = []

    with events.subscribe(seen.append):
        run(chain([]), runs=db, run_id="r1")

    assert {e.parent_id for e in seen} == {"r1"}


# --- resuming --------------------------------------------------------------------------------


def test_an_interrupted_run_resumes_without_running_its_completed_atoms_again(db: str) -> None:
    log: Log = []
    with pytest.raises(KeyboardInterrupt):
        run(chain(log, stops_at="c"), runs=db, run_id="r1")
    assert log == ["x:a", "x:b"]
    with SQLiteStore(db) as store:
        record = store.flow_run("r1")
    assert record is not None
    assert record.state == "Running"  # not over: left to be resumed

    result = resume("r1", chain(log), runs=db)

    assert log == ["x:a", "x:b", "x:c", "x:d"]
    assert result == run(chain([]))
    with SQLiteStore(db) as store:
        record = store.flow_run("r1")
        states = [(s.name, s.message) for s in store.states("r1")]
    assert record is not None
    assert record.state == "Completed"
    assert states == [("Running", ""), ("Running", "resumed"), ("Completed", "")]


def test_an_atom_that_was_running_runs_again(db: str) -> None:
    log: Log = []
    stop = once()
    flow = LinearFlow("chain").add(step(log, "a"), step(log, "b", stops=stop))
    with pytest.raises(KeyboardInterrupt):
        run(flow, runs=db, run_id="r1")

    resume("r1", flow, runs=db)

    with SQLiteStore(db) as store:
        b = store.atoms("r1")[1]
    assert log == ["x:a", "x:b"]
    assert [s.name for s in b.states] == ["Pending", "Running", "Pending", "Running", "Completed"]


def test_a_completed_run_resumed_returns_its_stored_result_without_running(db: str) -> None:
    log: Log = []
    first = run(chain(log), runs=db, run_id="r1")

    again = resume("r1", chain(log), runs=db)

    assert again == first
    assert log == ["x:a", "x:b", "x:c", "x:d"]


def test_a_failed_run_resumed_raises_its_stored_failure(db: str) -> None:
    log: Log = []
    flow = LinearFlow("chain").add(step(log, "a", fails=lambda kwargs: True))
    with pytest.raises(TimeoutError):
        run(flow, runs=db, run_id="r1")

    with pytest.raises(RemoteFailure, match=r"builtins\.TimeoutError: a timed out") as raised:
        resume("r1", flow, runs=db)

    assert raised.value.failure.check(TimeoutError)
    assert log == ["x:a", "r:a"]


def test_a_controllers_tries_are_counted_across_an_interruption(db: str) -> None:
    log: Log = []
    stop = once()

    def flow() -> LinearFlow:
        def stops() -> bool:
            return log.count("x:call") == 1 and stop()  # in the second try

        return LinearFlow("flaky", retry=Times(3, name="thrice", provides="attempt")).add(
            step(log, "call", fails=lambda kwargs: True, requires=("attempt",), stops=stops)
        )

    with pytest.raises(KeyboardInterrupt):
        run(flow(), runs=db, run_id="r1")
    assert log == ["x:call", "r:call"]

    with pytest.raises(TimeoutError, match="call timed out"):
        resume("r1", flow(), runs=db)  # tries 2 and 3: three in all, not three more

    assert log == ["x:call", "r:call", "x:call", "r:call", "x:call", "r:call"]
    with SQLiteStore(db) as store:
        (history,) = store.retry_histories("r1")
    assert len(history.tries) == 3


def test_a_run_interrupted_while_reverting_goes_on_reverting(db: str) -> None:
    log: Log = []
    stop = once()
    flow = LinearFlow("chain").add(
        step(log, "a"), step(log, "b", revert_stops=stop), step(log, "c"),
        step(log, "d", fails=lambda kwargs: True),
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run(flow, runs=db, run_id="r1")
    assert log == ["x:a", "x:b", "x:c", "x:d", "r:d", "r:c"]

    with pytest.raises(RemoteFailure, match="d timed out"):
        resume("r1", flow, runs=db)

    assert log == ["x:a", "x:b", "x:c", "x:d", "r:d", "r:c", "r:b", "r:a"]


def test_a_retry_interrupted_while_reverting_its_scope_retries_once_resumed(db: str) -> None:
    log: Log = []
    stop = once()
    scope = LinearFlow("payment", retry=Times(2, name="twice", provides="attempt")).add(
        step(log, "authorize", revert_stops=stop),
        step(log, "pay", fails=lambda kwargs: kwargs["attempt"] == 1, requires=("attempt",)),
    )
    with pytest.raises(KeyboardInterrupt):
        run(scope, runs=db, run_id="r1")

    result = resume("r1", scope, runs=db)

    assert log == ["x:authorize", "x:pay", "r:pay", "r:authorize", "x:authorize", "x:pay"]
    assert result["attempt"] == 2


def order(log: Log, stop: Callable[[], bool]) -> LinearFlow:
    """An order whose payment fails in the first try: the payment scope reverts, and the
    order's controller retries the whole order."""
    payment = LinearFlow("payment", retry=AlwaysRevert(name="pay-reverts")).add(
        step(log, "authorize", revert_stops=stop),
        step(log, "pay", fails=lambda kwargs: kwargs["attempt"] == 1, requires=("attempt",)),
    )
    outer = LinearFlow("order", retry=Times(2, name="twice", provides="attempt"))
    return outer.add(step(log, "reserve"), payment, step(log, "ship"))


def test_a_nested_revert_interrupted_hands_over_to_the_enclosing_controller(db: str) -> None:
    log: Log = []
    stop = once()
    with pytest.raises(KeyboardInterrupt):
        run(order(log, stop), runs=db, run_id="r1")
    assert log == ["x:reserve", "x:authorize", "x:pay", "r:pay"]

    result = resume("r1", order(log, stop), runs=db)

    uninterrupted: Log = []
    assert result == run(order(uninterrupted, lambda: False))
    assert log == uninterrupted
    assert log[4:] == ["r:authorize", "r:reserve", "x:reserve", "x:authorize", "x:pay", "x:ship"]


class StopAt:
    """An events subscriber that interrupts the run (in the engine's thread, where events
    are published) at the `n`-th completion of an atom."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.StateChange) and event.state.name == "Completed":
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt


def test_a_parallel_run_resumes(db: str) -> None:
    log: Log = []
    lock = threading.Lock()

    def flow() -> UnorderedFlow:
        def work(i: int) -> int:
            with lock:
                log.append(f"x:p{i}")
            return i

        return UnorderedFlow("par").add(
            *[FunctorTask(work, name=f"p{i}", inject={"i": i}, provides=f"p{i}") for i in range(6)]
        )

    with events.subscribe(StopAt(2)), pytest.raises(KeyboardInterrupt):
        run(flow(), runs=db, run_id="r1", executor=ThreadExecutor(3))
    with SQLiteStore(db) as store:
        recorded = {a.name for a in store.atoms("r1") if a.state == "Completed"}
    ran = len(log)

    result = resume("r1", flow(), runs=db, executor=ThreadExecutor(3))

    assert result == {f"p{i}": i for i in range(6)}
    assert not recorded & {entry[2:] for entry in log[ran:]}  # recorded completed: not again


# --- refusals --------------------------------------------------------------------------------


def test_resuming_with_another_flow_names_the_difference(db: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(chain([], stops_at="b"), runs=db, run_id="r1")
    other = LinearFlow("chain").add(step([], "a"), step([], "b"), step([], "e"))

    with pytest.raises(FlowError, match=r"lacks c, d; the run had no e\. Resume it with"):
        resume("r1", other, runs=db)


def test_resuming_with_a_flow_of_another_name_is_refused(db: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(chain([], stops_at="b"), runs=db, run_id="r1")
    renamed = LinearFlow("other").add(*chain([]).items)

    with pytest.raises(FlowError, match="a run of flow 'chain', not of 'other'"):
        resume("r1", renamed, runs=db)


def test_resuming_an_unknown_run_says_so(db: str) -> None:
    with pytest.raises(LookupError, match="no atoms run 'nope'"):
        resume("nope", chain([]), runs=db)


def test_a_flow_run_is_not_resumed_as_an_atoms_run_nor_the_reverse(db: str) -> None:
    @reflow.flow(store=db)
    def pipeline() -> int:
        return 1

    flow_run = pipeline.run()
    run(chain([]), runs=db, run_id="r1")

    with pytest.raises(StoreError, match=r"is a flow run \(pipeline\), not an atoms run"):
        resume(flow_run.id, chain([]), runs=db)
    with pytest.raises(StoreError, match=r"is an atoms run: continue it with reflow.atoms"):
        reflow.resume("r1", db)


def test_a_run_id_that_is_taken_is_refused(db: str) -> None:
    run(chain([]), runs=db, run_id="r1")

    with pytest.raises(StoreConflict, match=r"already in .* reflow.atoms.resume\('r1'"):
        run(chain([]), runs=db, run_id="r1")


def test_run_id_needs_runs() -> None:
    with pytest.raises(ValueError, match="run_id= names a kept run: give runs= too"):
        run(chain([]), run_id="r1")


def test_runs_takes_true_a_path_a_url_or_a_store() -> None:
    with pytest.raises(TypeError, match="runs= takes True"):
        run(chain([]), runs=42)


def test_a_tampered_result_is_refused_on_resume(db: str) -> None:
    stop = once()
    flow = LinearFlow("pair").add(
        FunctorTask(lambda: (1, 2), name="pair", provides="pair"),
        FunctorTask(lambda: _interrupt(stop), name="stop"),
    )
    with pytest.raises(KeyboardInterrupt):
        run(flow, runs=db, run_id="r1")
    conn = sqlite3.connect(db)
    (blob,) = conn.execute("SELECT result FROM reflow_atoms WHERE name = 'pair'").fetchone()
    conn.execute("UPDATE reflow_atoms SET result = ? WHERE name = 'pair'", (blob[:-1] + b"X",))
    conn.commit()
    conn.close()

    with pytest.raises(UntrustedResultError, match="signature does not match"):
        resume("r1", flow, runs=db)


def _interrupt(stop: Callable[[], bool]) -> None:
    if stop():
        raise KeyboardInterrupt


def test_a_result_that_cannot_be_stored_is_logged_and_its_atom_runs_again(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Log = []
    stop = once()

    def make() -> threading.Lock:
        calls.append("lock")
        return threading.Lock()  # not picklable

    flow = LinearFlow("locks").add(
        FunctorTask(make, name="lock", provides="lock"),
        FunctorTask(lambda: _interrupt(stop), name="stop"),
    )
    with caplog.at_level(logging.WARNING, "reflow"), pytest.raises(KeyboardInterrupt):
        run(flow, runs=db, run_id="r1")
    assert "the result of atom lock cannot be stored" in caplog.text

    with caplog.at_level(logging.WARNING, "reflow"):
        resume("r1", flow, runs=db)

    assert calls == ["lock", "lock"]
    assert "its result could not be stored: it runs again" in caplog.text


# --- stores ----------------------------------------------------------------------------------


def test_runs_true_keeps_the_run_in_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_STORE", str(tmp_path / "default.db"))

    run(chain([]), runs=True, run_id="r1")

    assert resume("r1", chain([])) == run(chain([]))
    with SQLiteStore(tmp_path / "default.db") as store:
        assert store.atom_run("r1") is not None


def test_reflow_store_memory_keeps_runs_true_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_STORE", "memory")

    assert run(chain([]), runs=True)["d"] == "d-done"
    with pytest.raises(ValueError, match="REFLOW_STORE is 'memory'"):
        resume("r1", chain([]))


def test_a_postgres_store_keeps_and_resumes_atoms_runs(postgres_url: str) -> None:
    log: Log = []
    with pytest.raises(KeyboardInterrupt):
        run(chain(log, stops_at="c"), runs=postgres_url, run_id="r1")

    result = resume("r1", chain(log), runs=postgres_url)

    assert log == ["x:a", "x:b", "x:c", "x:d"]
    assert result["d"] == "d-done"
    with PostgresStore(postgres_url) as store:
        record = store.flow_run("r1")
        assert record is not None
        assert record.state == "Completed"
        assert [a.state for a in store.atoms("r1")] == ["Completed"] * 4


def test_a_revert_that_failed_before_the_interruption_is_tried_again(db: str) -> None:
    log: Log = []
    stuck = iter([True])  # b's first revert fails, the next works
    stop = once()

    def undo_b() -> None:
        if next(stuck, False):
            raise OSError("b: the volume is busy")
        log.append("r:b")

    flow = LinearFlow("chain").add(
        UnorderedFlow("both").add(
            step(log, "a", revert_stops=stop),  # not b's branch: reverted after b's failed
            FunctorTask(lambda: log.append("x:b"), name="b", revert=undo_b),
        ),
        step(log, "c", fails=lambda kwargs: True),
    )
    with pytest.raises(KeyboardInterrupt):
        run(flow, runs=db, run_id="r1")
    assert log == ["x:a", "x:b", "x:c", "r:c"]

    with pytest.raises(RemoteFailure, match="c timed out"):
        resume("r1", flow, runs=db)  # the revert worked this time: only c's failure is left

    assert log == ["x:a", "x:b", "x:c", "r:c", "r:b", "r:a"]


def test_large_values_of_an_atoms_run_go_to_files_beside_the_database(tmp_path: Path) -> None:
    big = "x" * 1_000
    flow = LinearFlow("big", retry=ForEach([big], name="each", provides="value")).add(
        FunctorTask(lambda value: value + "!", name="grow", provides="grown")
    )
    kept = SQLiteStore(tmp_path / "runs.db", inline_limit=512)

    result = run(flow, store={"seed": big}, runs=kept, run_id="r1")

    conn = sqlite3.connect(tmp_path / "runs.db")
    encodings = conn.execute(
        "SELECT (SELECT result_encoding FROM reflow_flow_runs WHERE id = 'r1'), "
        "(SELECT store_encoding FROM reflow_atom_runs WHERE run_id = 'r1'), "
        "(SELECT result_encoding FROM reflow_atoms WHERE name = 'grow'), "
        "(SELECT value_encoding FROM reflow_retry_histories WHERE run_id = 'r1')"
    ).fetchone()
    conn.close()
    assert encodings == ("file:json", "file:json", "file:json", "file:json")
    assert len(list((tmp_path / "runs-results").glob("*/*"))) == 4
    with SQLiteStore(tmp_path / "runs.db") as store:
        (history,) = store.retry_histories("r1")
        atom_run = store.atom_run("r1")
        grow = store.atoms("r1")[1]
    assert history.tries[0].value is not None
    assert atom_run is not None
    assert grow.result is not None
    assert atom_run.store is not None
    assert json.loads(history.tries[0].value.data) == big
    assert json.loads(atom_run.store.data) == {"seed": big}
    assert json.loads(grow.result.data) == big + "!"
    assert result == {"seed": big, "value": big, "grown": big + "!"}
    assert resume("r1", flow, runs=kept) == result


# --- run_key -----------------------------------------------------------------------------------


def test_a_run_key_gives_the_earlier_runs_store_without_running_again(db: str) -> None:
    log: Log = []

    first = run(chain(log), store={"region": "eu"}, runs=db, run_key="nightly-2026-11-24")
    again = run(chain(log), store={"region": "us"}, runs=db, run_key="nightly-2026-11-24")

    assert again == first
    assert again["region"] == "eu"  # the earlier run, as it was started
    assert log == ["x:a", "x:b", "x:c", "x:d"]
    with SQLiteStore(db) as store:
        (record,) = store.flow_runs()
    assert record.run_key == "nightly-2026-11-24"


def test_a_run_key_of_a_failed_run_raises_its_failure_without_running_again(db: str) -> None:
    log: Log = []
    flow = LinearFlow("chain").add(step(log, "a", fails=lambda kwargs: True))
    with pytest.raises(TimeoutError):
        run(flow, runs=db, run_key="k")

    with pytest.raises(RemoteFailure, match="a timed out"):
        run(flow, runs=db, run_key="k")

    assert log == ["x:a", "r:a"]


def test_a_run_key_of_a_run_that_never_finished_resumes_it(db: str) -> None:
    log: Log = []
    with pytest.raises(KeyboardInterrupt):
        run(chain(log, stops_at="c"), runs=db, run_key="k", run_id="r1")

    result = run(chain(log), runs=db, run_key="k")

    assert log == ["x:a", "x:b", "x:c", "x:d"]
    assert result == run(chain([]))
    with SQLiteStore(db) as store:
        assert [r.id for r in store.flow_runs()] == ["r1"]


def test_a_new_key_starts_a_new_run(db: str) -> None:
    log: Log = []

    run(chain(log), runs=db, run_key="monday")
    run(chain(log), runs=db, run_key="tuesday")

    assert log.count("x:a") == 2


def test_a_run_key_needs_runs() -> None:
    with pytest.raises(ValueError, match="run_key= names a kept run: give runs= too"):
        run(chain([]), run_key="k")


def test_a_run_key_must_be_a_non_empty_str(db: str) -> None:
    with pytest.raises(TypeError, match="run_key is a non-empty str, got ''"):
        run(chain([]), runs=db, run_key="")


def test_a_flow_runs_key_is_not_taken_for_an_atoms_run(db: str) -> None:
    @reflow.flow(store=db)
    def pipeline() -> int:
        return 1

    pipeline(run_key="shared")

    with pytest.raises(StoreError, match=r"'shared' .* is the key of flow run .* \(pipeline\)"):
        run(chain([]), runs=db, run_key="shared")


def test_a_run_key_on_postgres(postgres_url: str) -> None:
    log: Log = []

    first = run(chain(log), runs=postgres_url, run_key="k")

    assert run(chain(log), runs=postgres_url, run_key="k") == first
    assert log == ["x:a", "x:b", "x:c", "x:d"]


def test_a_key_another_process_took_meanwhile_gives_that_run(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between this process looking the key up (not there yet) and writing its run, another
    process wrote a run with that key: the write is refused, and that run is used."""
    from reflow.store.atoms import AtomsKeeper

    log: Log = []
    first = run(chain(log), runs=db, run_key="k")
    looked_up = iter([None])
    find = AtomsKeeper.find
    monkeypatch.setattr(
        AtomsKeeper, "find", lambda self, key: next(looked_up, None) or find(self, key)
    )

    assert run(chain(log), runs=db, run_key="k") == first

    assert log == ["x:a", "x:b", "x:c", "x:d"]
    with SQLiteStore(db) as store:
        assert len(store.flow_runs()) == 1
        assert store.atoms(store.flow_runs()[0].id)[0].state == "Completed"


def test_a_write_of_its_atoms_that_failed_is_raised_when_the_run_ends(
    db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    kept = SQLiteStore(db)
    write_atoms = SQLiteStore.write_atoms

    def disk_full(self: SQLiteStore, **records: Any) -> None:
        if records.get("atom_rows"):
            raise sqlite3.OperationalError("database or disk is full")
        write_atoms(self, **records)

    monkeypatch.setattr(SQLiteStore, "write_atoms", disk_full)

    with (
        caplog.at_level(logging.ERROR, "reflow"),
        pytest.raises(StoreError, match=r"atoms run r1 \(chain\) ended Completed, but writing"),
    ):
        run(chain(log), runs=kept, run_id="r1")

    assert log == ["x:a", "x:b", "x:c", "x:d"]
    assert "database or disk is full" in caplog.text
