"""`import reflow` is light: it loads the standard library and reflow, nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
import reflow
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_import_reflow_loads_only_the_standard_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    top_level = {name.partition(".")[0] for name in loaded}

    assert "reflow" in top_level
    outside = sorted(top_level - set(sys.stdlib_module_names) - {"reflow"})
    assert outside == []
