"""Secrets: where `reflow.secret()` looks, how a `Secret` masks itself, and redaction."""

from __future__ import annotations

import inspect
import json
import logging
import os
import pickle
from pathlib import Path

import pytest

import reflow
from reflow.secrets import (
    MASK,
    Secret,
    SecretNotFound,
    SecretsFilter,
    SecretUnavailable,
    parse_env_file,
    redact,
    redact_text,
)


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A REFLOW_HOME and a .env of the test's own, and no SLACK_TOKEN in the environment."""
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REFLOW_ENV_FILE", str(tmp_path / ".env"))
    monkeypatch.delenv("SLACK_TOKEN", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path


def test_the_environment_comes_first(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (place / ".env").write_text("SLACK_TOKEN=from-the-env-file\n")
    monkeypatch.setenv("SLACK_TOKEN", "from-the-environment")
    assert reflow.secret("SLACK_TOKEN").reveal() == "from-the-environment"


def test_then_the_env_file_then_secrets_toml(place: Path) -> None:
    (place / ".env").write_text('# tokens\nexport SLACK_TOKEN="xoxb-from-dotenv"  \nOTHER=1\n')
    assert reflow.secret("SLACK_TOKEN").reveal() == "xoxb-from-dotenv"
    (place / ".env").unlink()
    toml = place / "home" / "secrets.toml"
    toml.write_text('SLACK_TOKEN = "xoxb-from-toml"\n')
    toml.chmod(0o600)
    token = reflow.secret("SLACK_TOKEN")
    assert token.reveal() == "xoxb-from-toml"
    assert token.name == "SLACK_TOKEN"


def test_a_missing_secret_names_every_place_it_looked(place: Path) -> None:
    with pytest.raises(SecretNotFound) as caught:
        reflow.secret("SLACK_TOKEN")
    message = str(caught.value)
    assert message.startswith("secret 'SLACK_TOKEN' not found: looked in the environment, ")
    assert f"{place / '.env'} (no such file)" in message
    assert f"{place / 'home' / 'secrets.toml'} (no such file)" in message
    assert reflow.secret("SLACK_TOKEN", default="fallback").reveal() == "fallback"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_secrets_file_others_can_read_is_refused(place: Path) -> None:
    toml = place / "home" / "secrets.toml"
    toml.write_text('SLACK_TOKEN = "xoxb"\n')
    toml.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        reflow.secret("SLACK_TOKEN")


def test_a_secret_masks_itself() -> None:
    token = Secret("hunter2-is-my-password", name="DB_PASSWORD")
    assert repr(token) == "Secret('DB_PASSWORD', '**********')"
    assert str(token) == f"{token}" == MASK
    assert f"password={token!s:>12}" == f"password={MASK:>12}"
    assert token.reveal() == "hunter2-is-my-password"
    assert token == Secret("hunter2-is-my-password")
    assert bool(token)


def test_a_secret_pickles_as_its_name_never_its_value(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-pickled-by-name")
    named = reflow.secret("SLACK_TOKEN")
    data = pickle.dumps(named)
    assert b"xoxb-pickled-by-name" not in data
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-rotated-meanwhile")
    assert pickle.loads(data).reveal() == "xoxb-rotated-meanwhile"  # read again where loaded

    anonymous = pickle.loads(pickle.dumps(Secret("given-as-a-value")))
    assert str(anonymous) == MASK
    with pytest.raises(SecretUnavailable, match="read it by name"):
        anonymous.reveal()


def test_redact_masks_secret_values_and_secret_hinted_parameters() -> None:
    def fn(token: Secret[str], hint: Secret[str] | None, n: int, tags: list[str]) -> None: ...

    parameters = {"token": Secret("abc-123-def"), "hint": "plain-string-given", "n": 3,
                  "tags": [Secret("in-a-list-456"), "ok"]}  # fmt: skip
    stored = redact(parameters, inspect.signature(fn))
    assert stored == {"token": MASK, "hint": MASK, "n": 3, "tags": [MASK, "ok"]}
    assert "abc-123-def" not in json.dumps(stored)


def test_revealed_values_are_masked_in_text_and_log_records() -> None:
    token = Secret("s3cr3t-value-for-logs")
    text = f"Authorization: Bearer {token.reveal()}"
    assert redact_text(text) == f"Authorization: Bearer {MASK}"

    record = logging.LogRecord("reflow.runs", logging.INFO, __file__, 1, "auth %s %s",
                               (token.reveal(), token), None)  # fmt: skip
    assert SecretsFilter().filter(record)
    assert record.getMessage() == f"auth {MASK} {MASK}"


def test_env_files_are_read_like_shells_write_them() -> None:
    text = "A=1\nexport B='two words'\n# C=3\nD = \"x#y\"\nE=plain # comment\nnot a line\n"
    assert parse_env_file(text) == {"A": "1", "B": "two words", "D": "x#y", "E": "plain"}


def test_a_flow_parameter_hinted_secret_becomes_a_secret() -> None:
    @reflow.flow(persist=False)
    def login(password: Secret[str]) -> int:
        assert isinstance(password, Secret)
        return len(password.reveal())

    flow_run = login.run("correct-horse")
    assert flow_run.result() == len("correct-horse")
    assert str(flow_run.parameters["password"]) == MASK
