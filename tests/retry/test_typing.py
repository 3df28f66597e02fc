"""Static typing: a Retriable keeps the wrapped function's signature under mypy --strict."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MypyRun

HERE = Path(__file__).parent

pytestmark = pytest.mark.slow


def test_correct_uses_type_check(mypy: MypyRun) -> None:
    output, status = mypy(HERE / "typing_check.py")

    assert output == ""
    assert status == 0


BAD_SNIPPET = """
from reflow import retry


@retry(attempts=3)
def fetch(n: int) -> str:
    return str(n)


@retry
async def fetch_async(n: int) -> str:
    return str(n)


fetch("x")
number: int = fetch(1)


async def use() -> None:
    await fetch_async(n="x")
"""


def test_wrong_argument_and_result_types_are_errors(mypy: MypyRun, tmp_path: Path) -> None:
    bad = tmp_path / "bad_calls.py"
    bad.write_text(BAD_SNIPPET)

    output, status = mypy(bad)

    assert status == 1
    errors = sorted(
        line.split(f"{bad.name}:", 1)[1] for line in output.splitlines() if ": error:" in line
    )
    assert len(errors) == 3, output
    wrong_positional, wrong_result, wrong_keyword = errors
    assert wrong_positional.startswith("15: error:")
    assert 'incompatible type "str"; expected "int"  [arg-type]' in wrong_positional
    assert wrong_result.startswith("16: error: Incompatible types in assignment")
    assert '(expression has type "str", variable has type "int")' in wrong_result
    assert wrong_keyword.startswith("20: error:")
    assert 'incompatible type "str"; expected "int"  [arg-type]' in wrong_keyword
