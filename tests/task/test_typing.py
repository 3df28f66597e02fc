"""Static typing: a Task keeps the decorated function's signature under mypy --strict."""

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
from reflow import task
from reflow.states import State


@task(retries=3)
def fetch(n: int) -> str:
    return str(n)


fetch(1)
fetch("x")
number: int = fetch(1)
state: State[str] = fetch(1, return_state=True)
wrong: str = fetch(1, return_state=True)
"""


def test_wrong_argument_and_result_types_are_errors(mypy: MypyRun, tmp_path: Path) -> None:
    bad = tmp_path / "bad_calls.py"
    bad.write_text(BAD_SNIPPET)

    output, status = mypy(bad)

    assert status == 1
    errors = sorted(
        line.split(f"{bad.name}:", 1)[1] for line in output.splitlines() if ": error:" in line
    )
    assert [e.split(":", 1)[0] for e in errors] == ["12", "13", "15"], output
    wrong_argument, wrong_result, state_not_result = errors
    assert 'argument type "str"' in wrong_argument
    assert '(expression has type "str", variable has type "int")' in wrong_result
    assert 'expression has type "State[str]", variable has type "str"' in state_not_result
