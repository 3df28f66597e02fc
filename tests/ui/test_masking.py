"""What the dashboard masks before it shows anything."""

from __future__ import annotations

import pytest

from reflow.ui.masking import mask_text, mask_value, secret_name

MASK = "**********"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("db_password", True), ("API_KEY", True), ("token", True),
     ("slack-token", True), ("auth", True), ("client_secret", True), ("author", False),
     ("day", False), ("keys", False), ("tokens_used", True)],
)  # fmt: skip
def test_names_that_say_secret(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("connect postgresql://app:pw-123@db:5432/x", f"connect postgresql://app:{MASK}@db:5432/x"),
        ("Authorization: Bearer abc.def.ghi", None),
        ("retrying with password=hunter2 now", f"retrying with password={MASK} now"),
        ('{"api_key": "k-9"}', f'{{"api_key": "{MASK}"}}'),
        ("Error: token=abc lost", f"Error: token={MASK} lost"),
        ("slack said xoxb-1234-5678-abcdef", f"slack said {MASK}"),
        ("fetched page 3 of 10", "fetched page 3 of 10"),
        ("author=ada", "author=ada"),
    ],
)
def test_secret_looking_text_is_masked(text: str, shown: str | None) -> None:
    masked = mask_text(text)
    if shown is None:
        assert "abc.def.ghi" not in masked
    else:
        assert masked == shown


def test_values_under_secret_keys_are_masked_however_deep() -> None:
    given = {
        "team": "data",
        "password": "hunter2",
        "auth": {"user": "ada", "token": "t-1"},
        "tokens": ["a", "b"],
        "dsn": "postgresql://u:p4ss@h/db",
        "empty_password": None,
    }
    assert mask_value(given) == {
        "team": "data",
        "password": MASK,
        "auth": MASK,
        "tokens": MASK,
        "dsn": f"postgresql://u:{MASK}@h/db",
        "empty_password": None,
    }
