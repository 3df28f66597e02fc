"""Secrets in an atoms run never reach its store in clear, and the run still resumes.

The initial store is the run's shown `parameters` (masked, as a flow run's are) and what a
resume starts from (kept by the secret's name, read again where the run resumes). Results,
failures and controllers' values are kept the same way. Each test reads the database's bytes
(the file, its WAL) for the secret's text, as tests/cli/test_secrets_kept_out.py does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import reflow
from reflow.atoms import ForEach, FunctorTask, LinearFlow, resume, run
from reflow.secrets import MASK, Secret, SecretUnavailable
from reflow.store import SQLiteStore

TOKEN = "tok-atoms-5e1f0c9a77"
ROTATED = "tok-rotated-3b8d21e4c6"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    monkeypatch.setenv("REFLOW_TEST_ATOMS_TOKEN", TOKEN)
    return tmp_path / "home"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


def assert_kept_out(db: str, *values: str) -> None:
    files = [p for p in Path(db).parent.rglob("*") if p.is_file() and "runs.db" in str(p)]
    assert files
    for path in files:
        data = path.read_bytes()
        for value in values:
            assert value.encode() not in data, (path.name, value)


def test_the_initial_store_is_masked_and_a_resume_reads_the_secrets_again(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = reflow.secret("REFLOW_TEST_ATOMS_TOKEN")
    seen: list[Any] = []
    stopped = iter([True])

    def call(token: Secret[str], plain: str, headers: dict[str, str]) -> str:
        if next(stopped, False):
            raise KeyboardInterrupt  # the first process dies here
        seen.append((token.reveal(), plain, headers))
        return "called"

    def flow() -> LinearFlow:
        return LinearFlow("api").add(FunctorTask(call, name="call", provides="done"))

    initial = {
        "token": token,
        "plain": token.reveal(),
        "headers": {"Authorization": f"Bearer {token.reveal()}"},
    }
    with pytest.raises(KeyboardInterrupt):
        run(flow(), store=initial, runs=db, run_id="r1")

    with SQLiteStore(db) as store:
        record = store.flow_run("r1")
    assert record is not None
    assert record.parameters == {
        "token": MASK, "plain": MASK, "headers": {"Authorization": f"Bearer {MASK}"},
    }  # fmt: skip
    assert_kept_out(db, TOKEN)

    monkeypatch.setenv("REFLOW_TEST_ATOMS_TOKEN", ROTATED)  # read again where it resumes
    result = resume("r1", flow(), runs=db)

    assert seen == [(ROTATED, ROTATED, {"Authorization": f"Bearer {ROTATED}"})]
    assert result["done"] == "called"
    assert_kept_out(db, TOKEN, ROTATED)


def test_results_failures_and_controller_values_keep_secrets_out(db: str) -> None:
    token = reflow.secret("REFLOW_TEST_ATOMS_TOKEN").reveal()

    def connect(key: str) -> str:
        if key.endswith("-old"):
            raise PermissionError(f"the key {key} was revoked")
        return f"session for {key}"

    flow = LinearFlow("login", retry=ForEach([f"{token}-old", token], provides="key")).add(
        FunctorTask(connect, name="connect", provides="session")
    )

    result = run(flow, runs=db, run_id="r1")

    assert result["session"] == f"session for {token}"
    assert_kept_out(db, token)
    with SQLiteStore(db) as store:
        (history,) = store.retry_histories("r1")
        atoms = {a.name: a for a in store.atoms("r1")}
    failure = history.tries[0].failures["connect"]
    assert failure["exception_str"] == f"the key {MASK}-old was revoked"
    assert all(t.value is not None and t.value.encoding == "pickle" for t in history.tries)
    assert resume("r1", flow, runs=db)["session"] == f"session for {token}"  # its result
    assert atoms["connect"].result is not None


def test_a_failed_runs_error_is_masked(db: str) -> None:
    token = reflow.secret("REFLOW_TEST_ATOMS_TOKEN")

    def refuse(token: Secret[str]) -> None:
        raise PermissionError(f"{token.reveal()} is not allowed here")

    with pytest.raises(PermissionError):
        run(LinearFlow("denied").add(FunctorTask(refuse)), store={"token": token}, runs=db)

    assert_kept_out(db, TOKEN)
    with SQLiteStore(db) as store:
        (record,) = store.flow_runs()
        (atom_run_errors,) = [store.atom_run(record.id).errors]  # type: ignore[union-attr]
    assert record.error == f"PermissionError: {MASK} is not allowed here"
    assert atom_run_errors[0]["exception_str"] == f"{MASK} is not allowed here"


def test_a_secret_given_as_a_value_is_not_kept_and_says_so_when_resumed(db: str) -> None:
    given = Secret("given-as-a-value-71c2e0")
    stopped = iter([True])
    seen: list[Any] = []

    def use(token: Any, note: str) -> None:
        if next(stopped, False):
            raise KeyboardInterrupt
        seen.append((token, note))

    def flow() -> LinearFlow:
        return LinearFlow("given").add(FunctorTask(use, name="use"))

    with pytest.raises(KeyboardInterrupt):
        run(flow(), store={"token": given, "note": f"x{given.reveal()}"}, runs=db, run_id="r1")
    assert_kept_out(db, given.reveal())

    resume("r1", flow(), runs=db)

    ((token, note),) = seen
    for unavailable in (token, note):  # no name to read it again by
        assert str(unavailable) == MASK
        with pytest.raises(SecretUnavailable, match="read it by name"):
            unavailable.reveal()


def test_the_shown_parameters_are_json_with_the_mask(db: str) -> None:
    token = reflow.secret("REFLOW_TEST_ATOMS_TOKEN")

    run(LinearFlow("noop").add(FunctorTask(lambda: 1, provides="one")), store={"t": token}, runs=db)

    with SQLiteStore(db) as store:
        (record,) = store.flow_runs()
    assert json.dumps(record.parameters) == json.dumps({"t": MASK})


def test_a_flow_runs_arguments_and_results_keep_revealed_secrets_out(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = reflow.secret("REFLOW_TEST_ATOMS_TOKEN").reveal()
    fails = iter([True])
    sent: list[str] = []

    @reflow.task
    def header(key: str) -> str:
        return f"Bearer {key}"

    @reflow.task
    def send(auth: str) -> str:
        if next(fails, False):
            raise ConnectionError("the API is down")
        sent.append(auth)
        return "sent"

    @reflow.flow(store=db)
    def notify(key: str) -> str:  # a plain str: only its text says it is secret
        return send(header(key))

    flow_run = notify.run(token)
    assert flow_run.state.is_failed()
    assert_kept_out(db, TOKEN)

    monkeypatch.setenv("REFLOW_TEST_ATOMS_TOKEN", ROTATED)
    assert notify.resume(flow_run.id).is_completed()
    assert sent == [f"Bearer {ROTATED}"]  # the kept call and result, read again by name
    assert_kept_out(db, TOKEN, ROTATED)
