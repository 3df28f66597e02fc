"""Every ```python block of the docs runs as written, so the guide cannot drift from the code.

Blocks come from `docs/*.md` and `README.md`; each runs with `exec` in a fresh module namespace and
fails the test if it raises. Line numbers in tracebacks are those of the Markdown file. A block not
meant to run takes another fence language (```text, ```bash, ```pycon).
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPENING = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
RUNNABLE = {"python", "py"}


def doc_files() -> list[Path]:
    """The Markdown files whose examples must run: docs/*.md, then README.md."""
    files = sorted((ROOT / "docs").glob("*.md"))
    readme = ROOT / "README.md"
    if readme.is_file():
        files.append(readme)
    return files


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """Return (line of the opening fence, code) for every ```python block of `path`."""
    blocks: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = OPENING.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = opening["info"].split()
        language = words[0].lower() if words else ""
        start = i + 1  # 1-based line number of the opening fence
        body: list[str] = []
        i += 1
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            prefix = line[:indent]
            body.append(line[indent:] if prefix.strip() == "" else line.lstrip())
            i += 1
        i += 1  # past the closing fence (or the end of the file: an unclosed block ends there)
        if language in RUNNABLE:
            blocks.append((start, "\n".join(body) + "\n"))
    return blocks


def collect() -> list[pytest.ParameterSet]:
    params = []
    for path in doc_files():
        relative = path.relative_to(ROOT).as_posix()
        for line, code in python_blocks(path):
            params.append(pytest.param(path, line, code, id=f"{relative}:{line}"))
    return params


EXAMPLES = collect()


def test_the_retry_guide_has_runnable_examples() -> None:
    guide = ROOT / "docs" / "retry.md"
    assert guide.is_file(), "docs/retry.md is missing"
    assert python_blocks(guide), "docs/retry.md has no ```python blocks to run"


@pytest.mark.parametrize(("path", "line", "code"), EXAMPLES)
def test_example_runs(path: Path, line: int, code: str) -> None:
    # Pad with blank lines so a traceback points at the line of the Markdown file.
    source = "\n" * line + code
    name = f"reflow_docs_example_{path.stem}_{line}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses, pickle and typing look modules up by name
    try:
        # dont_inherit: this file's `from __future__ import annotations` must not leak in.
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    finally:
        del sys.modules[name]
