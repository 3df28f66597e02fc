"""The settings object: defaults, then reflow.toml, then REFLOW_* variables; the docs' table."""

from __future__ import annotations

from pathlib import Path

import pytest

from reflow.settings import SETTINGS, load, settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_then_the_file_then_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "reflow.toml"
    config.write_text('log_level = "debug"\nheartbeat_seconds = 2\nstore = "file.db"\n')

    assert load({}, tmp_path / "none.toml").log_level == "INFO"
    from_file = load({}, config)
    assert (from_file.log_level, from_file.heartbeat_seconds, from_file.store) == (
        "DEBUG", 2.0, "file.db",
    )  # fmt: skip
    assert from_file.config_file == config
    env = load({"REFLOW_LOG_LEVEL": "error", "REFLOW_STORE": "env.db"}, config)
    assert (env.log_level, env.store, env.heartbeat_seconds) == ("ERROR", "env.db", 2.0)


def test_a_reflow_table_is_read_too(tmp_path: Path) -> None:
    config = tmp_path / "reflow.toml"
    config.write_text('[reflow]\nlog_format = "JSON"\ntimezone = "Europe/Paris"\n')
    loaded = load({}, config)
    assert (loaded.log_format, loaded.timezone) == ("json", "Europe/Paris")


def test_bad_values_name_where_they_came_from(tmp_path: Path) -> None:
    config = tmp_path / "reflow.toml"
    config.write_text("heartbeat_seconds = -1\n")
    with pytest.raises(ValueError, match=r"heartbeat_seconds in .*reflow.toml must be 0 or more"):
        load({}, config)
    config.write_text("colour = true\n")
    with pytest.raises(ValueError, match="unknown setting 'colour'; the settings are env_file"):
        load({}, config)
    with pytest.raises(ValueError, match="the variable REFLOW_LOG_FORMAT must be one of text"):
        load({"REFLOW_LOG_FORMAT": "xml"}, tmp_path / "none.toml")
    with pytest.raises(ValueError, match="REFLOW_CONFIG names"):
        load({"REFLOW_CONFIG": str(tmp_path / "missing.toml")})


def test_a_changed_variable_is_seen_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_HEARTBEAT_SECONDS", "3")
    assert settings().heartbeat_seconds == 3.0
    monkeypatch.setenv("REFLOW_HEARTBEAT_SECONDS", "4")
    assert settings().heartbeat_seconds == 4.0


def test_the_docs_table_lists_every_setting() -> None:
    table = (ROOT / "docs" / "cli.md").read_text()
    for setting in SETTINGS:
        assert f"| `{setting.name}` | `{setting.env}` |" in table, setting.name
