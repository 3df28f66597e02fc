"""Results as bytes: JSON when exact, else signed cloudpickle that is refused when tampered."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from reflow.store import Encoded, ResultCodec, UntrustedResultError, load_or_create_key

KEY = b"k" * 32


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    "value", [None, True, 3, 2.5, "text", [1, "a", None], {"a": [1, {"b": 2.0}]}]
)
def test_json_shaped_values_are_json(value: object) -> None:
    codec = ResultCodec(KEY)

    encoded = codec.encode(value)

    assert encoded.encoding == "json"
    assert codec.decode(encoded) == value


@pytest.mark.parametrize(
    "value",
    [(1, 2), {1, 2}, b"bytes", {1: "int key"}, Point(1, 2), float("nan"), [("nested", 1)]],
    ids=["tuple", "set", "bytes", "int-key", "dataclass", "nan", "nested-tuple"],
)
def test_values_json_would_change_are_pickled_and_come_back_the_same(value: object) -> None:
    codec = ResultCodec(KEY)

    encoded = codec.encode(value)
    back = codec.decode(encoded)

    assert encoded.encoding == "pickle"
    assert type(back) is type(value)
    if value == value:  # nan is not equal to itself
        assert back == value


def test_a_lambda_travels_by_value() -> None:
    codec = ResultCodec(KEY)

    back = codec.decode(codec.encode(lambda n: n * 3))

    assert back(2) == 6


def test_a_value_holding_a_secret_keeps_it_by_name_and_reads_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reflow

    monkeypatch.setenv("REFLOW_TEST_CODEC_TOKEN", "codec-secret-4d0a9e")
    token = reflow.secret("REFLOW_TEST_CODEC_TOKEN").reveal()
    codec = ResultCodec(KEY)
    values = [token, f"Bearer {token}", {"auth": [f"{token}:{token}"]}, Point(1, token)]  # type: ignore[arg-type]

    encoded = [codec.encode(v) for v in values]

    assert all(token.encode() not in e.data for e in encoded)
    assert [e.encoding for e in encoded] == ["pickle"] * 4
    monkeypatch.setenv("REFLOW_TEST_CODEC_TOKEN", "codec-rotated-77b1")
    rotated = "codec-rotated-77b1"
    assert [codec.decode(e) for e in encoded] == [
        rotated, f"Bearer {rotated}", {"auth": [f"{rotated}:{rotated}"]}, Point(1, rotated),  # type: ignore[arg-type]
    ]  # fmt: skip


def test_a_secret_the_codec_cannot_reach_by_name_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reflow

    monkeypatch.setenv("REFLOW_TEST_CODEC_TOKEN", "codec-secret-in-bytes-81f")
    token = reflow.secret("REFLOW_TEST_CODEC_TOKEN").reveal()

    with pytest.raises(ValueError, match="not stored in clear"):
        ResultCodec(KEY).encode(token.encode())


def test_a_tampered_pickle_is_refused_not_loaded() -> None:
    codec = ResultCodec(KEY)
    encoded = codec.encode(Point(1, 2))
    tampered = bytearray(encoded.data)
    tampered[-3] ^= 0xFF

    with pytest.raises(UntrustedResultError, match="signature does not match"):
        codec.decode(Encoded("pickle", bytes(tampered)))


def test_a_pickle_signed_with_another_key_is_refused() -> None:
    theirs = ResultCodec(b"x" * 32).encode(Point(1, 2))

    with pytest.raises(UntrustedResultError, match="another reflow key"):
        ResultCodec(KEY).decode(theirs)


def test_a_foreign_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    with pytest.raises(UntrustedResultError, match="not a reflow pickle"):
        ResultCodec(KEY).decode(Encoded("pickle", pickle.dumps(Evil())))
    assert not marker.exists()


def test_a_truncated_blob_and_an_unknown_encoding_are_refused() -> None:
    codec = ResultCodec(KEY)
    encoded = codec.encode((1, 2))

    with pytest.raises(UntrustedResultError):
        codec.decode(Encoded("pickle", encoded.data[:20]))
    with pytest.raises(UntrustedResultError, match="unknown result encoding"):
        codec.decode(Encoded("yaml", b"a: 1"))  # type: ignore[arg-type]


def test_the_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "home" / "key"

    first = load_or_create_key(path)
    second = load_or_create_key(path)

    assert first == second
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_default_key_lives_in_reflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "rh"))

    key = load_or_create_key()

    assert (tmp_path / "rh" / "key").read_bytes() == key


def test_a_short_key_file_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"short")

    with pytest.raises(UntrustedResultError, match="Remove it"):
        load_or_create_key(path)


def test_a_codec_refuses_a_short_key() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ResultCodec(b"short")
