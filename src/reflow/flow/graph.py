"""A flow run's task graph as Mermaid flowchart text (renders on GitHub, in docs, in the UI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reflow.flow.run import FlowRun

_STYLE = {
    "COMPLETED": "fill:#d4f7dc,stroke:#2e7d32",
    "FAILED": "fill:#fde0e0,stroke:#c62828",
    "CRASHED": "fill:#fde0e0,stroke:#c62828",
    "CANCELLED": "fill:#eeeeee,stroke:#616161",
    "PAUSED": "fill:#fff4cc,stroke:#f9a825",
    "RUNNING": "fill:#dbeafe,stroke:#1d4ed8",
    "PENDING": "fill:#ffffff,stroke:#9e9e9e",
    "SCHEDULED": "fill:#ffffff,stroke:#9e9e9e",
}


def mermaid(flow_run: FlowRun) -> str:
    """`flowchart LR`, a node `t<n>["name<br/>State"]` per task run, an edge per upstream."""
    runs = flow_run.task_runs
    node = {run.id: f"t{i}" for i, run in enumerate(runs)}
    for sub in flow_run.subflow_runs:
        node[sub.id] = f"f{len(node)}"
    lines = ["flowchart LR"]
    used: set[str] = set()
    for run in runs:
        kind = run.state.type.name
        used.add(kind)
        label = _escape(f"{run.key or run.task_name}<br/>{run.state.name}")
        lines.append(f'    {node[run.id]}["{label}"]:::{kind.lower()}')
    for sub in flow_run.subflow_runs:
        kind = sub.state.type.name if sub.states else "PENDING"
        used.add(kind)
        label = _escape(f"{sub.name}<br/>{sub.state.name if sub.states else 'Pending'}")
        lines.append(f'    {node[sub.id]}[["{label}"]]:::{kind.lower()}')
    edges = [(run.upstream, run.id) for run in runs]
    edges += [(sub.upstream, sub.id) for sub in flow_run.subflow_runs]
    for ups, target in edges:
        for up in ups:
            if up in node:
                lines.append(f"    {node[up]} --> {node[target]}")
    for kind in sorted(used):
        lines.append(f"    classDef {kind.lower()} {_STYLE.get(kind, '')}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("[", "#91;").replace("]", "#93;")
