"""`persist_result=False`: a kept run whose results stay out of its store.

The value never reaches the store (each test that says so reads every byte the store holds: the
SQLite file, its WAL and its results folder, or every row of every PostgreSQL table), while the
run, its states and timings do. On resume, a call whose result was not kept runs again where
its value is needed, and only there.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from reflow import Future, flow, task
from reflow.atoms import LinearFlow
from reflow.atoms import run as run_atoms
from reflow.states import NOT_KEPT, MissingResult
from reflow.store import PostgresStore, SQLiteStore
from reflow.store.cache import default_cache
from reflow.task import INPUTS
from reflow.task.cache import DEFAULT_CACHE_STORE

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return tmp_path / "home"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A store of the test's own; results of more than 64 bytes go to files in its folder."""
    results = tmp_path / "results"
    if request.param == "sqlite":
        made: Any = SQLiteStore(tmp_path / "runs.db", inline_limit=64, results_dir=results)
    else:
        url = request.getfixturevalue("postgres_url")
        made = PostgresStore(url, inline_limit=64, results_dir=results)
    return made


@pytest.fixture
def sqlite(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "runs.db", inline_limit=64, results_dir=tmp_path / "results")


def stored_bytes(store: Any, tmp_path: Path) -> bytes:
    """Everything the store holds: its files (database, WAL, results folder), and for
    PostgreSQL every value of every row of its tables (the schema is the test's own)."""
    found = [p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    if isinstance(store, PostgresStore):
        import psycopg

        with psycopg.connect(store.url) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            ]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            found.append(bytes(value))
                        elif value is not None:
                            found.append(str(value).encode())
    return b"\n".join(found)


def test_a_result_not_kept_never_reaches_the_store_but_its_run_does(
    store: Any, tmp_path: Path
) -> None:
    hidden, shown = f"HIDDEN-{uuid.uuid4().hex}", f"SHOWN-{uuid.uuid4().hex}"

    @task(persist_result=False)
    def password() -> str:
        return hidden

    @task(persist_result=False)
    def large() -> str:
        return hidden * 100  # above inline_limit: it would be a file

    @task
    def kept() -> list[str]:
        return [shown] * 100  # a file: the control, that the search finds what is there

    @flow(store=store)
    def pipeline() -> int:
        return len(password()) + len(large()) + len(kept())

    flow_run = pipeline.run()

    assert flow_run.state.is_completed()
    data = stored_bytes(store, tmp_path)
    assert shown.encode() in data
    assert hidden.encode() not in data
    runs = {r.key: r for r in store.task_runs(flow_run.id)}
    assert (runs["password-0"].state, runs["password-0"].result) == ("Completed", None)
    assert runs["large-0"].result is None
    assert runs["kept-0"].result is not None
    states = [s.name for s in store.states(runs["password-0"].id)]
    assert states == ["Pending", "Running", "Completed"]
    assert runs["password-0"].attempts == 1
    assert runs["password-0"].updated >= runs["password-0"].created


def test_a_resume_runs_a_direct_call_again_and_reuses_the_kept_ones(store: Any) -> None:
    ran: list[str] = []
    failing = [True]

    @task(persist_result=False)
    def connect() -> threading.Lock:
        ran.append("connect")
        return threading.Lock()  # cannot be pickled: could not be kept anyway

    @task
    def query(lock: threading.Lock, n: int) -> int:
        assert isinstance(lock, type(threading.Lock()))
        ran.append(f"query {n}")
        return n * 10

    @task
    def report(total: int) -> str:
        ran.append("report")
        if failing[0]:
            raise ConnectionError("the mail server is down")
        return f"total {total}"

    @flow(store=store)
    def nightly() -> str:
        lock = connect()  # its value is needed here, by the flow's code
        return report(query(lock, 1) + query(lock, 2))

    first = nightly.run()
    assert first.state.is_failed()
    failing[0] = False
    state = nightly.resume(first.id)

    assert state.result() == "total 30"
    assert ran == ["connect", "query 1", "query 2", "report", "connect", "report"]
    runs = {r.key: r for r in store.task_runs(first.id)}
    assert {k: r.state for k, r in runs.items()} == {
        "connect-0": "Completed", "query-0": "Completed", "query-1": "Completed",
        "report-0": "Completed",
    }  # fmt: skip
    assert runs["connect-0"].result is None


def test_another_process_resumes_a_run_whose_results_were_not_kept(tmp_path: Path) -> None:
    database, side = tmp_path / "runs.db", tmp_path / "side.txt"
    env = dict(
        os.environ, UNKEPT_DB=str(database), UNKEPT_SIDE=str(side), UNKEPT_FAIL="1",
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )  # fmt: skip
    first = subprocess.run(
        [sys.executable, "-c", "import unkept_flow; print(unkept_flow.nightly.run().id)"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    run_id = first.stdout.split()[-1]
    del env["UNKEPT_FAIL"]
    resumed = subprocess.run(
        [sys.executable, "-c", f"import reflow; print(reflow.resume({run_id!r}, "
         f"{str(database)!r}).result())"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip

    assert resumed.stdout.split()[-2:] == ["72", "bytes"]  # 12 + 24 + 36
    by_process: dict[str, list[str]] = {}
    for line in side.read_text().splitlines():
        pid, what = line.split(" ", 1)
        by_process.setdefault(pid, []).append(what)
    ran_first, ran_again = by_process.values()
    assert sorted(ran_first) == ["connect", "load 0", "load 1", "load 2", "report", "size",
                                 "size", "size"]  # fmt: skip
    assert ran_again == ["connect", "report"]  # the sizes were kept: no load is needed
    data = b"".join(p.read_bytes() for p in tmp_path.rglob("runs.db*") if p.is_file())
    assert b"UNKEPT-PART-" not in data


def test_a_submitted_call_not_kept_runs_again_only_where_its_value_is_needed(
    sqlite: SQLiteStore,
) -> None:
    ran: list[str] = []
    failing = [True]

    @task(persist_result=False)
    def load(name: str) -> bytes:
        ran.append(f"load {name}")
        return name.encode() * 1000  # large: not worth keeping

    @task
    def size(blob: bytes) -> int:
        ran.append("size")
        return len(blob)

    @task
    def checksum(blob: bytes) -> int:
        ran.append("checksum")
        if failing[0]:
            raise OSError("disk full")
        return sum(blob) % 251

    @flow(store=sqlite)
    def inspect_files() -> tuple[int, int]:
        a, b = load.submit("a"), load.submit("b")
        return size.submit(a).result(), checksum.submit(b).result()

    first = inspect_files.run()
    assert first.state.is_failed()
    failing[0] = False
    ran.clear()
    state = inspect_files.resume(first.id)

    assert state.result() == (1000, (ord("b") * 1000) % 251)
    # size (kept) is reused, so load("a") is not needed; checksum runs, so load("b") does
    assert ran == ["load b", "checksum"]
    runs = {r.key: r for r in sqlite.task_runs(first.id)}
    assert runs["load-1"].state == "Completed"
    assert runs["load-1"].result is None
    assert runs["checksum-0"].upstream == [runs["load-1"].id]  # the run made again


def test_a_map_runs_again_only_the_elements_still_needed(sqlite: SQLiteStore) -> None:
    loaded: list[int] = []
    broken = {3, 7, 11}

    @task(persist_result=False)
    def load(i: int) -> list[int]:
        loaded.append(i)
        return [i] * 1000

    @task
    def total(rows: list[int]) -> int:
        if rows[0] in broken:
            raise OSError(f"part {rows[0]} is unreadable")
        return sum(rows)

    @flow(store=sqlite)
    def parts() -> list[int]:
        return total.map(load.map(range(20))).result()

    first = parts.run()
    assert first.state.is_failed()
    assert sorted(loaded) == list(range(20))
    broken.clear()
    loaded.clear()
    state = parts.resume(first.id)

    assert state.result() == [i * 1000 for i in range(20)]
    assert sorted(loaded) == [3, 7, 11]


def test_a_held_call_runs_when_the_flow_asks_its_future(sqlite: SQLiteStore) -> None:
    ran: list[str] = []
    seen: list[Any] = []

    @task(persist_result=False)
    def token() -> str:
        ran.append("token")
        return "t-1"

    @flow(store=sqlite)
    def login() -> str:
        future = token.submit()
        if isinstance(future.state.data, type(NOT_KEPT)):  # a resume: held, not run yet
            with pytest.raises(MissingResult, match="not kept"):
                future.state.result()
            seen.append(future.state.message)
        return f"{future.result()}!"

    first = login.run()
    state = login.resume(first.id)

    assert state.result() == "t-1!"
    assert ran == ["token", "token"]
    (message,) = seen
    assert "completed in an earlier process; its result was not kept" in message


def test_a_held_call_that_the_flow_returns_runs_again(sqlite: SQLiteStore) -> None:
    ran: list[str] = []

    @task(persist_result=False)
    def value() -> int:
        ran.append("value")
        return 7

    @flow(store=sqlite)
    def job() -> Future[int]:
        return value.submit()

    first = job.run()
    assert first.result() == 7
    assert job.resume(first.id).result() == 7
    assert ran == ["value", "value"]


def test_a_held_call_that_nothing_needs_is_never_run_again(sqlite: SQLiteStore) -> None:
    ran: list[str] = []

    @task(persist_result=False)
    def side_effect() -> int:
        ran.append("side")
        return 1

    @flow(store=sqlite)
    def job() -> str:
        side_effect.submit()
        return "done"

    first = job.run()
    state = job.resume(first.id)

    assert state.result() == "done"
    assert ran == ["side"]


def test_a_held_future_asked_after_its_flow_ended_has_no_result(sqlite: SQLiteStore) -> None:
    kept: list[Future[int]] = []

    @task(persist_result=False)
    def value() -> int:
        return 7

    @flow(store=sqlite)
    def job() -> None:
        kept.append(value.submit())

    first = job.run()
    job.resume(first.id)

    assert kept[0].result() == 7  # the first run's
    held = kept[1]
    assert held.done()
    with pytest.raises(MissingResult, match="completed in an earlier process"):
        held.result(timeout=5)


async def test_an_async_flow_awaits_a_held_call_and_it_runs_again(tmp_path: Path) -> None:
    ran: list[str] = []

    @task(persist_result=False)
    async def fetch() -> int:
        ran.append("fetch")
        return 3

    @flow(store=str(tmp_path / "runs.db"))
    async def job() -> int:
        return await fetch.submit() + 1

    first = await job.run()
    again = await job.resume(first.id)

    assert first.result() == again.result() == 4
    assert ran == ["fetch", "fetch"]


def test_an_unpicklable_result_not_kept_is_not_reported(
    sqlite: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    @task(persist_result=False)
    def open_handle() -> threading.Lock:
        return threading.Lock()

    @flow(store=sqlite)
    def job() -> bool:
        return open_handle().acquire(blocking=False)

    with caplog.at_level(logging.WARNING, "reflow"):
        flow_run = job.run()

    assert flow_run.result() is True
    assert "cannot be kept" not in caplog.text
    (run,) = sqlite.task_runs(flow_run.id)
    assert (run.state, run.result) == ("Completed", None)


def test_an_unpicklable_result_is_reported_once_naming_persist_result(
    sqlite: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    @task
    def open_handle(i: int) -> threading.Lock:
        return threading.Lock()

    @flow(store=sqlite)
    def job() -> int:
        return len(open_handle.map(range(3)).result())

    with caplog.at_level(logging.WARNING, "reflow"):
        flow_run = job.run()

    assert flow_run.result() == 3
    warnings = [r.getMessage() for r in caplog.records if "cannot be kept" in r.getMessage()]
    assert len(warnings) == 1  # not once per run of the map
    (warning,) = warnings
    for part in (
        "a result of task open_handle cannot be kept in the store (TypeError: cannot pickle",
        "a resume of its flow run runs the call again where the value is needed",
        "@task(persist_result=False)",
    ):
        assert part in warning
    assert all(r.result is None for r in sqlite.task_runs(flow_run.id))


def test_with_options_keeps_a_tasks_results_out(sqlite: SQLiteStore, tmp_path: Path) -> None:
    hidden = f"HIDDEN-{uuid.uuid4().hex}"

    @task
    def secret_text() -> str:
        return hidden

    private = secret_text.with_options(persist_result=False)

    @flow(store=sqlite)
    def job() -> int:
        return len(private())

    assert secret_text.persist_result is None
    assert private.persist_result is False
    assert job(return_state=True).is_completed()
    assert hidden.encode() not in stored_bytes(sqlite, tmp_path)


def test_a_flow_with_persist_result_false_keeps_its_results_out(store: Any, tmp_path: Path) -> None:
    hidden, shown = f"HIDDEN-{uuid.uuid4().hex}", f"SHOWN-{uuid.uuid4().hex}"

    @task
    def quiet() -> str:
        return hidden

    @task(persist_result=True)  # says so itself: kept
    def loud() -> str:
        return shown

    @flow
    def inner() -> str:  # as its parent says
        return quiet() + "-inner"

    @flow(store=store, persist_result=False)
    def outer() -> str:
        return quiet() + loud() + inner()

    flow_run = outer.run()

    assert flow_run.result() == hidden + shown + hidden + "-inner"
    data = stored_bytes(store, tmp_path)
    assert shown.encode() in data
    assert hidden.encode() not in data
    record = store.flow_run(flow_run.id)
    assert record is not None
    assert (record.state, record.result) == ("Completed", None)
    (sub,) = store.subflow_runs(flow_run.id)
    assert (sub.state, sub.result) == ("Completed", None)
    assert outer.with_options(name="again").persist_result is False


def test_a_run_key_of_a_run_whose_result_was_not_kept_says_so(sqlite: SQLiteStore) -> None:
    calls: list[int] = []

    @task
    def charge(amount: int) -> str:
        calls.append(amount)
        return f"charged {amount}"

    @flow(store=sqlite, persist_result=False)
    def invoice(amount: int) -> str:
        return charge(amount)

    assert invoice(120, run_key="invoice-7") == "charged 120"
    again = invoice.run(120, run_key="invoice-7")

    assert calls == [120]  # not charged again
    assert again.state.is_completed()
    assert again.state.data is NOT_KEPT
    with pytest.raises(MissingResult, match="'invoice-7' completed, but its result was not"):
        invoice(120, run_key="invoice-7")


def test_a_cached_task_not_kept_caches_in_this_process_only(sqlite: SQLiteStore) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, persist_result=False)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @task(cache_policy=INPUTS)
    def cube(x: int) -> int:  # the control: its entries go to the default store
        return x**3

    @flow(store=sqlite)
    def job(x: int) -> int:
        return square(x) + cube(x)

    assert job(4) == 80
    second = job.run(4)

    assert second.result() == 80
    assert calls == [4]  # the second call was a hit
    assert second.task_runs[0].state.name == "Cached"
    durable = default_cache()
    assert durable is not None
    assert len(durable) == 1  # cube's entry only
    assert len(DEFAULT_CACHE_STORE.memory) >= 1  # square's


def test_a_revert_that_needs_a_result_not_kept_is_reported(sqlite: SQLiteStore) -> None:
    crash = [True]
    undone: list[str] = []

    @task(persist_result=False, revert=lambda result: undone.append(result))
    def reserve() -> str:
        return "seat 12A"

    @task
    def pay() -> str:
        raise ConnectionError("the bank is down")

    @flow(store=sqlite)
    def book() -> str:
        seat = reserve.submit()
        if crash[0]:
            seat.wait()
            raise KeyboardInterrupt  # the process dies here, after the reservation
        return pay()

    with pytest.raises(KeyboardInterrupt):
        book.run()
    (crashed,) = sqlite.flow_runs()
    crash[0] = False
    state = book.resume(crashed.id)  # pay fails: the reservation would be undone

    assert state.is_failed()
    assert undone == []  # its result is gone: its revert cannot be called
    assert isinstance(state.exception, ExceptionGroup)
    (missing,) = [e for e in state.exception.exceptions if isinstance(e, MissingResult)]
    assert "task run reserve-0 completed in an earlier process" in str(missing)
    assert "keep the results of tasks that have a revert" in str(missing)


def test_a_kept_atoms_run_refuses_a_task_whose_result_is_not_kept(tmp_path: Path) -> None:
    @task(persist_result=False)
    def connect() -> str:
        return "conn"

    pattern = LinearFlow("setup").add(connect)

    assert run_atoms(pattern)["connect"] == "conn"  # in memory: nothing to keep out
    with pytest.raises(ValueError, match="atom connect is a task with persist_result=False"):
        run_atoms(pattern, runs=str(tmp_path / "runs.db"))
