"""The task graph's layout and grouping, and the timeline's stretches, read off their data."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from reflow.store.records import StateRecord
from reflow.store.views import TaskRunSummary
from reflow.ui import graph, layout, timeline


def test_layers_put_every_node_right_of_its_predecessors() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("x", "d")]
    drawn = layout.draw(["a", "b", "c", "d", "x"], edges)
    assert drawn.layer == {"a": 0, "b": 1, "c": 2, "d": 3, "x": 0}
    for u, v in edges:
        assert drawn.x[u] < drawn.x[v]
    (long,) = [route for u, v, route in drawn.routes if (u, v) == ("a", "c")]
    assert len(long) == 3  # a dummy point in b's layer: it bends around b
    (skip,) = [route for u, v, route in drawn.routes if (u, v) == ("x", "d")]
    assert len(skip) == 4  # two dummies: layers 1 and 2


def test_ordering_removes_crossings_a_naive_order_has() -> None:
    # in the given order, a->y and b->x cross; swapping x and y removes it
    nodes = ["a", "b", "x", "y"]
    edges = [("a", "y"), ("b", "x")]
    assert layout.crossings(["a", "b"], ["x", "y"], edges) == 1  # type: ignore[arg-type]
    drawn = layout.draw(nodes, edges)
    assert drawn.crossings == 0
    assert (drawn.y["a"] < drawn.y["b"]) == (drawn.y["y"] < drawn.y["x"])


def test_nodes_of_a_layer_never_overlap() -> None:
    nodes = [f"n{i}" for i in range(12)]
    edges = [(nodes[0], n) for n in nodes[1:6]] + [(n, nodes[11]) for n in nodes[1:6]]
    drawn = layout.draw(nodes, edges, node_height=40, gap_y=10)
    for (a, ya), (b, yb) in itertools.combinations(drawn.y.items(), 2):
        if drawn.layer[a] == drawn.layer[b]:
            assert abs(ya - yb) >= 50 - 1e-6


def test_cycles_are_broken_and_still_drawn() -> None:
    drawn = layout.draw(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert sorted(drawn.layer.values()) == [0, 1, 2]
    assert len(drawn.routes) == 3


def _summary(key: str, state: str = "Completed", upstream: tuple[str, ...] = ()) -> TaskRunSummary:
    kind = {"Completed": "COMPLETED", "Failed": "FAILED"}[state]
    return TaskRunSummary(key, key, key.split("-")[0], state, kind, list(upstream))


@pytest.mark.parametrize(
    ("key", "level", "group"),
    [("fetch-0[3]", 0, "fetch-0[3]"), ("fetch-0[3]", 1, "fetch-0[*]"),
     ("fetch-2[3]", 2, "fetch-*[*]"), ("load-0[3]/parse-1", 1, "load-0[*]/parse-1"),
     ("step-2-0", 2, "step-2-*")],
)  # fmt: skip
def test_call_keys_group_by_map_then_by_task(key: str, level: int, group: str) -> None:
    assert graph.group_of(key, level) == group


def test_a_graph_groups_as_coarsely_as_its_size_needs() -> None:
    few = [_summary("a-0"), _summary("b-0", upstream=("a-0",))]
    assert graph.task_graph(few).unit == "task run"

    fetches = [_summary(f"fetch-0[{i}]", "Failed" if i == 7 else "Completed") for i in range(500)]
    totals = [_summary("total-0", upstream=tuple(f.id for f in fetches))]
    grouped = graph.task_graph(fetches + totals)
    assert grouped.unit == "map"
    (fetch, _total) = grouped.groups
    assert (fetch.key, fetch.count, fetch.state_type) == ("fetch-0[*]", 500, "FAILED")
    assert fetch.describe() == "499 Completed, 1 Failed"
    assert grouped.edges == [("fetch-0[*]", "total-0", 500)]

    calls = [_summary(f"step-{i}", upstream=(f"step-{i - 1}",) if i else ()) for i in range(400)]
    chain = graph.task_graph(calls)
    assert chain.unit == "task"
    assert [g.key for g in chain.groups] == ["step-*"]
    assert chain.edges == []  # its own calls: no edge to draw
    svg = graph.render(grouped, lambda g: f"/x?group={g.key}")
    assert svg.count('<g class="node') == 2
    assert "500 runs" in svg


def _state(name: str, kind: str, at: float, attempt: int = 0, error: str | None = None) -> Any:
    return StateRecord("t", "task", name, kind, at, "", attempt, error)


def test_a_retried_task_run_is_attempts_with_waits_between_them() -> None:
    states = [
        _state("Pending", "PENDING", 0.0),
        _state("Running", "RUNNING", 1.0, 1),
        _state("AwaitingRetry", "SCHEDULED", 2.0, 1, "ConnectionError: reset"),
        _state("Retrying", "RUNNING", 4.0, 2),
        _state("Completed", "COMPLETED", 4.5, 2),
    ]
    got = [(s.kind, s.start, s.end, s.state_type, s.attempt) for s in timeline.segments(states, 9)]
    assert got == [
        ("queued", 0.0, 1.0, "PENDING", 0),
        ("attempt", 1.0, 2.0, "FAILED", 1),
        ("wait", 2.0, 4.0, "SCHEDULED", 1),
        ("attempt", 4.0, 4.5, "COMPLETED", 2),
    ]
    assert "ConnectionError: reset" in timeline.segments(states, 9)[1].note


def test_what_is_still_going_on_ends_now_and_a_run_that_never_ran_is_a_mark() -> None:
    running = [_state("Pending", "PENDING", 0.0), _state("Running", "RUNNING", 1.0, 1)]
    assert [(s.kind, s.end, s.state_type) for s in timeline.segments(running, 5.0)] == [
        ("queued", 1.0, "PENDING"), ("attempt", 5.0, "RUNNING"),
    ]  # fmt: skip
    skipped = [_state("Pending", "PENDING", 0.0), _state("Skipped", "COMPLETED", 2.0)]
    assert [(s.kind, s.start) for s in timeline.segments(skipped, 5.0)] == [
        ("queued", 0.0), ("mark", 2.0),
    ]  # fmt: skip
    waiting = [_state("Running", "RUNNING", 0.0, 1), _state("AwaitingRetry", "SCHEDULED", 1, 1)]
    last = timeline.segments(waiting, 3.0)[-1]
    assert (last.kind, last.start, last.end) == ("wait", 1, 3.0)


def test_the_chart_has_a_row_per_run_and_a_legend() -> None:
    rows = [
        timeline.Row("fetch-0", timeline.segments([_state("Running", "RUNNING", 0, 1),
                     _state("Completed", "COMPLETED", 1, 1)], 1), "/t/1"),
        timeline.Row("<b>odd</b>", []),
    ]  # fmt: skip
    svg = timeline.render(rows)
    assert svg.count('class="row-label"') == 2
    assert 'href="/t/1"' in svg
    assert "&lt;b&gt;odd&lt;/b&gt;" in svg
    assert "<b>" not in svg
    for _, text in timeline.LEGEND:
        assert f">{text}</text>" in svg
    assert timeline.render([]) == ""
