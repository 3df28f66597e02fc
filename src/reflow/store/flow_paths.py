"""Finding a flow again from the path recorded with its runs: `module:qualname`, or
`/path/script.py:qualname` for a flow defined in a script (resume, workers, the CLI)."""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import sys
import threading
from pathlib import Path
from typing import Any

SCRIPT_MODULE = "__reflow_resume__"
"""The module name of a script's code loaded by `find_flow` (the CLI's `FILE.py:FLOW` too)."""


def flow_path(flow: Any) -> str:
    """`module:qualname` (or `/path/script.py:qualname` for a script) to find it again."""
    module = getattr(flow, "__module__", "")
    name = getattr(flow, "__qualname__", "")
    if module in ("__main__", SCRIPT_MODULE):
        namespace = getattr(getattr(flow, "fn", None), "__globals__", None) or {}
        path = namespace.get("__file__")
        if path is None and module == "__main__":
            path = getattr(sys.modules.get("__main__"), "__file__", None)
        if path:
            return f"{_resolved(path, '' if os.path.isabs(path) else os.getcwd())}:{name}"
    return f"{module}:{name}"


@functools.lru_cache(maxsize=64)
def _resolved(path: str, cwd: str) -> Path:
    """A script's real path (every run of a script's flow records it: worth keeping)."""
    return Path(cwd, path).resolve()


_scripts: dict[str, tuple[int, dict[str, Any]]] = {}
_scripts_lock = threading.Lock()


def find_flow(path: str) -> Any:
    """The flow object at a `flow_path()`: `module:name`, or `/path/script.py:name`.

    A script runs once per process (again only when its file changed), as an imported module
    would, under the name `__reflow_resume__` (so its `if __name__ == "__main__":` block does
    not run); its folder is put on `sys.path` first, as `python script.py` does.
    """
    where, _, name = path.rpartition(":")
    if where.endswith(".py"):
        namespace = load_script(where)
        target: Any = namespace.get(name.split(".")[0])
        if target is None:
            raise LookupError(f"{where} has no {name.split('.')[0]!r}")
        rest = name.split(".")[1:]
    else:
        target, rest = importlib.import_module(where), name.split(".")
    for part in rest:
        target = getattr(target, part)
    return target


def load_script(where: str | Path) -> dict[str, Any]:
    """Run a script's code once (again when it changed) and return its globals."""
    script = Path(where).resolve()
    stamp = script.stat().st_mtime_ns
    with _scripts_lock:
        loaded = _scripts.get(str(script))
        if loaded is not None and loaded[0] == stamp:
            return loaded[1]
        folder = str(script.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        namespace = runpy.run_path(str(script), run_name=SCRIPT_MODULE)
        _scripts[str(script)] = (stamp, namespace)
        return namespace
