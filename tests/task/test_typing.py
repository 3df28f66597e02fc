"""Static typing: a Task keeps the decorated function's signature under mypy --strict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.slow

MypyRun = Callable[..., tuple[str, int]]


@pytest.fixture(scope="module")
def mypy(tmp_path_factory: pytest.TempPathFactory) -> MypyRun:
    """Run mypy --strict in-process on files; the runs of this module share one cache."""
    cache = tmp_path_factory.mktemp("mypy-cache")

    def run(*files: Path) -> tuple[str, int]:
        stdout, stderr, status = mypy_api.run(
            [
                "--strict",
                "--config-file", str(ROOT / "pyproject.toml"),
                "--cache-dir", str(cache),
                "--no-error-summary",
                "--hide-error-context",
                *map(str, files),
            ]
        )  # fmt: skip
        return stdout + stderr, status

    return run


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
