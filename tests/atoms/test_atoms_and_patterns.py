"""Atoms and patterns: data by name (requires/provides/rebind/inject/auto_extract), priority,
hooks, functor tasks, `@reflow.task` as an atom, the three patterns and nesting, and the
validation that happens before anything runs."""

from __future__ import annotations

import operator
import threading
from typing import Any

import pytest

import reflow
from reflow.atoms import (
    Atom,
    Failure,
    FlowError,
    FunctorTask,
    GraphFlow,
    LinearFlow,
    MapFunctorTask,
    ReduceFunctorTask,
    Task,
    UnorderedFlow,
    run,
)
from reflow.executors import InlineExecutor, ThreadExecutor

Log = list[Any]


def boom() -> None:
    raise RuntimeError("boom")


def recorder(log: Log, name: str, value: Any = None, **options: Any) -> FunctorTask:
    """A task that appends its name (and its arguments, if any) to `log` and returns `value`."""

    def execute(**kwargs: Any) -> Any:
        log.append((name, kwargs) if kwargs else name)
        return value

    return FunctorTask(execute, name=name, **options)


# --- provides -----------------------------------------------------------------------------------


def test_provides_a_str_stores_the_whole_result() -> None:
    store = run(FunctorTask(lambda: [1, 2], name="t", provides="both"))
    assert store == {"both": [1, 2]}


def test_provides_a_list_stores_the_items_of_the_result_by_position() -> None:
    store = run(FunctorTask(lambda: ("ann", 42), name="t", provides=["who", "age"]))
    assert store == {"who": "ann", "age": 42}


def test_provides_a_dict_stores_items_by_index_or_key() -> None:
    by_index = FunctorTask(lambda: ("x", "y", "z"), name="a", provides={"first": 0, "last": 2})
    by_key = FunctorTask(lambda: {"id": 7, "ok": True}, name="b", provides={"ident": "id"})

    store = run(UnorderedFlow("f").add(by_index, by_key))

    assert store == {"first": "x", "last": "z", "ident": 7}


def test_an_atom_without_provides_stores_nothing() -> None:
    assert run(FunctorTask(lambda: 5, name="t"), store={"a": 1}) == {"a": 1}


def test_default_provides_is_a_class_attribute() -> None:
    class Make(Task):
        default_provides = "made"

        def execute(self) -> str:
            return "thing"

    assert run(Make()) == {"made": "thing"}
    assert run(Make(provides="other")) == {"other": "thing"}


# --- requires, rebind, inject, auto_extract ----------------------------------------------------


def test_execute_parameters_are_requirements_taken_from_the_store() -> None:
    class Add(Task):
        def execute(self, a: int, b: int) -> int:
            return a + b

    atom = Add(name="add", provides="sum")

    assert atom.requires == {"a", "b"}
    assert run(atom, store={"a": 2, "b": 3})["sum"] == 5


def test_requires_adds_store_names_passed_as_keyword_arguments() -> None:
    seen: Log = []

    class Take(Task):
        def execute(self, **kwargs: Any) -> None:
            seen.append(kwargs)

    atom = Take(name="t", requires=["x", "y"])

    assert atom.requires == {"x", "y"}
    run(atom, store={"x": 1, "y": 2, "z": 3})
    assert seen == [{"x": 1, "y": 2}]


def test_auto_extract_false_takes_only_the_listed_requirements() -> None:
    seen: Log = []

    def listed(a: int = 0, b: int = 0) -> None:
        seen.append((a, b))

    atom = FunctorTask(listed, name="f", auto_extract=False, requires=["a"])

    assert atom.requires == {"a"}
    run(atom, store={"a": 5, "b": 6})
    assert seen == [(5, 0)]


def test_rebind_a_list_maps_execute_parameters_in_order_onto_store_names() -> None:
    class Sub(Task):
        def execute(self, left: int, right: int) -> int:
            return left - right

    atom = Sub(name="sub", rebind=["big", "small"], provides="diff")

    assert atom.requires == {"big", "small"}
    assert run(atom, store={"big": 10, "small": 3})["diff"] == 7


def test_rebind_a_dict_maps_named_parameters_onto_store_names() -> None:
    class Sub(Task):
        def execute(self, left: int, right: int) -> int:
            return left - right

    atom = Sub(name="sub", rebind={"right": "small"}, provides="diff")

    assert atom.requires == {"left", "small"}
    assert run(atom, store={"left": 10, "small": 4})["diff"] == 6


def test_rebind_naming_more_values_than_execute_takes_is_an_error() -> None:
    class One(Task):
        def execute(self, only: int) -> int:
            return only

    with pytest.raises(ValueError, match="rebind"):
        One(name="one", rebind=["a", "b"])


def test_inject_gives_parameters_fixed_values_that_are_not_requirements() -> None:
    class Greet(Task):
        def execute(self, greeting: str, who: str) -> str:
            return f"{greeting}, {who}"

    atom = Greet(name="greet", inject={"greeting": "hello"}, provides="text")

    assert atom.requires == {"who"}
    # "greeting" need not be in the store (no FlowError), and the store's does not win
    assert run(atom, store={"who": "ann"})["text"] == "hello, ann"
    assert run(atom, store={"who": "bo", "greeting": "bye"})["text"] == "hello, bo"


def test_optional_parameters_take_the_store_value_when_there_and_the_default_otherwise() -> None:
    seen: Log = []

    class Opt(Task):
        def execute(self, needed: int, extra: int = 100) -> None:
            seen.append((needed, extra))

    atom = Opt(name="opt")

    assert atom.requires == {"needed"}
    run(atom, store={"needed": 1})
    run(atom, store={"needed": 2, "extra": 3})
    assert seen == [(1, 100), (2, 3)]


def test_an_optional_parameter_makes_no_ordering_edge_to_its_provider() -> None:
    seen: Log = []

    class Opt(Task):
        def execute(self, extra: str = "default") -> None:
            seen.append(("consumer", extra))

    # added first, with nothing ordering it after the provider: it runs first, on its default
    flow = GraphFlow("g").add(
        Opt(name="consumer"), recorder(seen, "provider", "given", provides="extra")
    )
    run(flow)
    assert seen == [("consumer", "default"), "provider"]

    # after its provider in a linear flow, it gets the provided value
    seen.clear()
    flow = LinearFlow("l").add(
        recorder(seen, "provider", "given", provides="extra"), Opt(name="consumer")
    )
    run(flow)
    assert seen == ["provider", ("consumer", "given")]


def test_an_atom_has_a_default_name_and_a_version() -> None:
    class Named(Task):
        def execute(self) -> None:
            return None

    atom = Named()

    assert atom.name == f"{__name__}.{Named.__qualname__}"
    assert atom.version == "1.0"
    assert Named(version="2.1").version == "2.1"


# --- priority -----------------------------------------------------------------------------------


def test_higher_priority_atoms_start_first_among_ready_ones() -> None:
    log: Log = []

    class Urgent(Task):
        priority = 7

        def execute(self) -> None:
            log.append(self.name)

    flow = UnorderedFlow("u").add(
        recorder(log, "low", priority=1),
        recorder(log, "plain"),
        Urgent(name="class-level"),
        recorder(log, "high", priority=10),
        recorder(log, "negative", priority=-5),
    )

    run(flow, executor=InlineExecutor())

    assert log == ["high", "class-level", "low", "plain", "negative"]


def test_priority_does_not_override_the_order_of_a_linear_flow() -> None:
    log: Log = []
    flow = LinearFlow("l").add(
        recorder(log, "first", priority=-1), recorder(log, "second", priority=9)
    )

    run(flow)

    assert log == ["first", "second"]


def test_priority_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="priority"):
        FunctorTask(lambda: None, name="t", priority="high")  # type: ignore[arg-type]


# --- hooks --------------------------------------------------------------------------------------


class Hooked(Task):
    def __init__(self, name: str, log: Log, fails: bool = False) -> None:
        super().__init__(name=name)
        self.log = log
        self.fails = fails

    def pre_execute(self) -> None:
        self.log.append((self.name, "pre_execute"))

    def execute(self) -> None:
        self.log.append((self.name, "execute"))
        if self.fails:
            raise RuntimeError(f"{self.name} failed")

    def post_execute(self) -> None:
        self.log.append((self.name, "post_execute"))

    def pre_revert(self) -> None:
        self.log.append((self.name, "pre_revert"))

    def revert(self, result: Any, flow_failures: dict[str, Failure]) -> None:
        self.log.append((self.name, "revert"))

    def post_revert(self) -> None:
        self.log.append((self.name, "post_revert"))


def test_hooks_run_around_execute_and_revert_in_order() -> None:
    log: Log = []
    flow = LinearFlow("l").add(Hooked("ok", log), FunctorTask(boom, name="boom"))

    with pytest.raises(RuntimeError, match="boom"):
        run(flow)

    assert log == [
        ("ok", "pre_execute"),
        ("ok", "execute"),
        ("ok", "post_execute"),
        ("ok", "pre_revert"),
        ("ok", "revert"),
        ("ok", "post_revert"),
    ]


def test_post_execute_runs_even_when_execute_raises() -> None:
    log: Log = []

    with pytest.raises(RuntimeError, match="bad failed"):
        run(Hooked("bad", log, fails=True))

    assert log == [
        ("bad", "pre_execute"),
        ("bad", "execute"),
        ("bad", "post_execute"),
        ("bad", "pre_revert"),
        ("bad", "revert"),
        ("bad", "post_revert"),
    ]


# --- functor tasks ------------------------------------------------------------------------------


def test_functor_task_requirements_come_from_its_function_and_revert_gets_what_it_accepts() -> None:
    log: Log = []

    def create(size: int) -> str:
        log.append(("create", size))
        return f"disk-{size}"

    def delete(result: str) -> None:  # takes only result: no size, no flow_failures
        log.append(("delete", result))

    def delete_all(size: int, result: str, flow_failures: dict[str, Failure]) -> None:
        log.append(("delete_all", size, result, sorted(flow_failures)))

    flow = LinearFlow("l").add(
        FunctorTask(create, name="one", provides="disk", revert=delete),
        FunctorTask(create, name="two", provides="disk2", revert=delete_all),
        FunctorTask(boom, name="boom"),
    )

    with pytest.raises(RuntimeError, match="boom"):
        run(flow, store={"size": 10})

    assert log == [
        ("create", 10),
        ("create", 10),
        ("delete_all", 10, "disk-10", ["boom"]),
        ("delete", "disk-10"),
    ]


def test_functor_task_is_named_after_its_function_by_default() -> None:
    def make_thing() -> int:
        return 1

    assert FunctorTask(make_thing).name == f"{__name__}.{make_thing.__qualname__}"


def test_functor_task_rejects_what_is_not_callable() -> None:
    with pytest.raises(TypeError):
        FunctorTask(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FunctorTask(lambda: None, revert="nope")  # type: ignore[arg-type]


def test_map_functor_task_applies_the_function_to_each_requirement_in_order() -> None:
    atom = MapFunctorTask(lambda v: v * 10, requires=["c", "a", "b"], name="m", provides="out")

    assert atom.requires == {"a", "b", "c"}
    assert run(atom, store={"a": 1, "b": 2, "c": 3})["out"] == [30, 10, 20]


def test_map_functor_task_needs_a_requirement() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MapFunctorTask(str, requires=[])


def test_reduce_functor_task_reduces_the_requirements_in_order() -> None:
    atom = ReduceFunctorTask(operator.sub, requires=["x", "y", "z"], name="r", provides="out")

    assert run(atom, store={"x": 100, "y": 30, "z": 5})["out"] == 65


def test_reduce_functor_task_needs_two_requirements() -> None:
    with pytest.raises(ValueError, match="at least two"):
        ReduceFunctorTask(operator.add, requires=["only"])


def test_map_and_reduce_chain_through_the_store() -> None:
    flow = LinearFlow("mr").add(
        MapFunctorTask(
            lambda v: v * v, requires=["a", "b", "c"], name="square", provides=["a2", "b2", "c2"]
        ),
        ReduceFunctorTask(operator.add, requires=["a2", "b2", "c2"], name="sum", provides="total"),
    )

    assert run(flow, store={"a": 1, "b": 2, "c": 3})["total"] == 14


# --- @reflow.task as an atom --------------------------------------------------------------------


def test_a_reflow_task_with_revert_is_an_atom_providing_its_result_under_its_name() -> None:
    log: Log = []

    @reflow.task
    def create_vm(flavor: str) -> str:
        log.append(("create", flavor))
        return f"vm-{flavor}"

    @create_vm.revert
    def delete_vm(result: str, flavor: str) -> None:
        log.append(("delete", result, flavor))

    @reflow.task
    def attach(create_vm: str) -> str:
        log.append(("attach", create_vm))
        raise RuntimeError("no network")

    with pytest.raises(RuntimeError, match="no network"):
        run(LinearFlow("vm").add(create_vm, attach), store={"flavor": "small"})

    assert log == [
        ("create", "small"),
        ("attach", "vm-small"),
        ("delete", "vm-small", "small"),
    ]


def test_a_reflow_task_as_an_atom_returns_its_result_in_the_store() -> None:
    @reflow.task
    def double(x: int) -> int:
        return 2 * x

    assert run(LinearFlow("l").add(double), store={"x": 4}) == {"x": 4, double.name: 8}


def test_patterns_reject_what_is_not_an_atom() -> None:
    with pytest.raises(TypeError, match="atoms"):
        LinearFlow("l").add(lambda: None)


# --- patterns -----------------------------------------------------------------------------------


def test_linear_flow_runs_its_items_in_the_order_added() -> None:
    log: Log = []
    flow = LinearFlow("l").add(*(recorder(log, name) for name in "dcab"))

    run(flow, executor=ThreadExecutor(4))

    assert log == list("dcab")


def test_unordered_flow_runs_its_items_at_once_on_a_thread_executor() -> None:
    barrier = threading.Barrier(3, timeout=30)
    threads: set[int] = set()

    def meet() -> int:
        threads.add(threading.get_ident())
        return barrier.wait()  # breaks (BrokenBarrierError) unless all three run at once

    flow = UnorderedFlow("u").add(
        *(FunctorTask(meet, name=f"m{i}", provides=f"slot{i}") for i in range(3))
    )

    store = run(flow, executor=ThreadExecutor(3))

    assert sorted(store[f"slot{i}"] for i in range(3)) == [0, 1, 2]
    assert len(threads) == 3


def test_graph_flow_orders_atoms_by_the_data_between_them() -> None:
    log: Log = []
    flow = GraphFlow("g").add(
        recorder(log, "report", requires=["total"]),
        recorder(log, "sum", 3, requires=["a", "b"], provides="total"),
        recorder(log, "make_b", 2, provides="b"),
        recorder(log, "make_a", 1, provides="a"),
    )

    store = run(flow, executor=InlineExecutor())

    assert log == [
        "make_b",
        "make_a",
        ("sum", {"a": 1, "b": 2}),
        ("report", {"total": 3}),
    ]
    assert store == {"a": 1, "b": 2, "total": 3}


def test_graph_flow_link_orders_atoms_without_data() -> None:
    log: Log = []
    first, second, third = (recorder(log, name) for name in ("first", "second", "third"))
    flow = GraphFlow("g").add(third, second, first)
    assert flow.link(first, second) is flow
    flow.link(second, third)

    run(flow, executor=InlineExecutor())

    assert log == ["first", "second", "third"]


def test_graph_flow_links_reflow_tasks_as_added() -> None:
    log: Log = []

    @reflow.task
    def first() -> None:
        log.append("first")

    @reflow.task
    def second() -> None:
        log.append("second")

    flow = GraphFlow("g").add(second, first).link(first, second)

    run(flow, executor=InlineExecutor())

    assert log == ["first", "second"]


def test_graph_flow_links_nested_patterns_as_wholes() -> None:
    log: Log = []
    inner = LinearFlow("inner").add(recorder(log, "i1"), recorder(log, "i2"))
    last = recorder(log, "last")
    flow = GraphFlow("g").add(last, inner).link(inner, last)

    run(flow, executor=InlineExecutor())

    assert log == ["i1", "i2", "last"]


def test_nested_patterns_keep_each_pattern_order() -> None:
    log: Log = []
    flow = LinearFlow("outer").add(
        recorder(log, "start"),
        UnorderedFlow("fan").add(
            LinearFlow("left").add(recorder(log, "l1"), recorder(log, "l2")),
            LinearFlow("right").add(recorder(log, "r1"), recorder(log, "r2")),
        ),
        GraphFlow("tail").add(
            recorder(log, "use", requires=["made"]),
            recorder(log, "make", "thing", provides="made"),
        ),
        recorder(log, "end"),
    )

    run(flow, executor=ThreadExecutor(4))

    assert log[0] == "start"
    assert log.index("l1") < log.index("l2")
    assert log.index("r1") < log.index("r2")
    assert log[5:] == ["make", ("use", {"made": "thing"}), "end"]
    assert sorted(log[1:5]) == ["l1", "l2", "r1", "r2"]


def test_a_pattern_knows_its_atoms_and_size() -> None:
    a, b, c = (recorder([], name) for name in "abc")
    inner = UnorderedFlow("inner").add(b, c)
    flow = LinearFlow("outer").add(a, inner)

    assert len(flow) == 2
    assert list(flow) == [a, inner]
    assert list(flow.iter_atoms()) == [a, b, c]


# --- validation before anything runs ------------------------------------------------------------


def test_a_requirement_nobody_provides_is_an_error_naming_the_atom() -> None:
    log: Log = []
    flow = LinearFlow("l").add(recorder(log, "first"), recorder(log, "needy", requires=["ghost"]))

    with pytest.raises(FlowError, match=r"needy requires 'ghost'"):
        run(flow)
    assert log == []  # nothing ran

    run(flow, store={"ghost": 1})  # the initial store satisfies it
    assert log == ["first", ("needy", {"ghost": 1})]


def test_a_requirement_provided_only_by_itself_is_missing() -> None:
    flow = LinearFlow("l").add(recorder([], "loop", requires=["x"], provides="x"))

    with pytest.raises(FlowError, match="loop"):
        run(flow)


def test_two_atoms_that_may_run_in_any_order_providing_a_name_is_an_error_naming_both() -> None:
    log: Log = []
    flow = UnorderedFlow("u").add(
        recorder(log, "maker_one", 1, provides="thing"),
        recorder(log, "maker_two", 2, provides="thing"),
    )

    with pytest.raises(FlowError, match="'thing'") as raised:
        run(flow)

    assert "maker_one" in str(raised.value)
    assert "maker_two" in str(raised.value)
    assert log == []


def test_ordered_providers_of_one_name_are_not_ambiguous_and_the_latest_wins() -> None:
    flow = LinearFlow("l").add(
        FunctorTask(lambda: 1, name="old", provides="x"),
        FunctorTask(lambda: 2, name="new", provides="x"),
        FunctorTask(lambda x: x * 10, name="use", provides="y"),
    )

    assert run(flow) == {"x": 2, "y": 20}


def test_a_consumer_between_two_providers_of_a_name_gets_the_earlier_one() -> None:
    seen: Log = []
    flow = LinearFlow("l").add(
        FunctorTask(lambda: 1, name="p1", provides="x"),
        FunctorTask(lambda x: seen.append(("c1", x)), name="c1"),
        FunctorTask(lambda: 2, name="p2", provides="x"),
        FunctorTask(lambda x: seen.append(("c2", x)), name="c2"),
    )

    run(flow)

    assert seen == [("c1", 1), ("c2", 2)]


def test_a_consumer_before_every_provider_of_its_requirement_is_an_error() -> None:
    flow = LinearFlow("l").add(
        FunctorTask(lambda x: x, name="early"),
        FunctorTask(lambda: 1, name="p1", provides="x"),
        FunctorTask(lambda: 2, name="p2", provides="x"),
    )

    with pytest.raises(FlowError, match="early") as raised:
        run(flow)

    assert "'x'" in str(raised.value)
    assert run(flow, store={"x": 0})["x"] == 2  # with the name in the store, it reads that


def test_a_cycle_of_links_is_an_error_naming_the_atoms() -> None:
    log: Log = []
    a, b, c = (recorder(log, name) for name in ("alpha", "beta", "gamma"))
    flow = GraphFlow("g").add(a, b, c).link(a, b).link(b, a)

    with pytest.raises(FlowError, match="cycle") as raised:
        run(flow)

    assert "alpha" in str(raised.value)
    assert "beta" in str(raised.value)
    assert log == []


def test_a_cycle_through_data_is_an_error_naming_the_atoms() -> None:
    flow = GraphFlow("g").add(
        recorder([], "chicken", requires=["egg"], provides="hen"),
        recorder([], "egg_layer", requires=["hen"], provides="egg"),
    )

    with pytest.raises(FlowError, match="cycle") as raised:
        run(flow)

    assert "chicken" in str(raised.value)
    assert "egg_layer" in str(raised.value)


def test_duplicate_atom_names_are_an_error_naming_the_atom() -> None:
    log: Log = []
    flow = LinearFlow("l").add(recorder(log, "twin"), UnorderedFlow("u").add(recorder(log, "twin")))

    with pytest.raises(FlowError, match="'twin'"):
        run(flow)
    assert log == []


def test_link_of_an_item_not_added_is_an_error_naming_it() -> None:
    added, stranger = recorder([], "added"), recorder([], "stranger")
    flow = GraphFlow("g").add(added)

    with pytest.raises(ValueError, match="stranger"):
        flow.link(added, stranger)
    with pytest.raises(ValueError, match="stranger"):
        flow.link(stranger, added)


def test_run_rejects_what_is_not_a_flow_or_atom() -> None:
    with pytest.raises(TypeError):
        run("not a flow")  # type: ignore[arg-type]


def test_a_bare_atom_runs_as_a_flow_of_one() -> None:
    class Echo(Atom):
        def execute(self, word: str) -> str:
            return word * 2

    assert run(Echo(name="echo", provides="out"), store={"word": "ab"}) == {
        "word": "ab",
        "out": "abab",
    }


def test_a_controller_named_like_an_atom_is_a_duplicate_name() -> None:
    from reflow.atoms import Times

    flow = LinearFlow("l", retry=Times(2, name="same")).add(recorder([], "same"))

    with pytest.raises(FlowError, match="'same'"):
        run(flow)


def test_an_empty_flow_runs_to_its_store() -> None:
    from reflow.atoms import Times

    assert run(LinearFlow("empty"), store={"a": 1}) == {"a": 1}
    assert run(LinearFlow("only-controller", retry=Times(1, name="r", provides="n"))) == {"n": 1}
