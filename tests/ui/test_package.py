"""The wheel carries the dashboard's templates and static files (it loads nothing from
outside, so what the package lacks, the pages lack)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "src" / "reflow" / "ui"


def test_the_wheel_holds_every_template_and_static_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("reflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = sorted(
        p.relative_to(ROOT / "src").as_posix()
        for folder in ("templates", "static")
        for p in (UI / folder).iterdir()
    )
    assert {"reflow/ui/static/app.css", "reflow/ui/static/app.js",
            "reflow/ui/templates/run.html"} <= set(assets)  # fmt: skip
    assert [a for a in assets if a not in names] == []
