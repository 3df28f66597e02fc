"""`@flow` itself: calling it, return_state, .run(), async flows, options, with_options, repr."""

from __future__ import annotations

from typing import Any

import pytest

import reflow
from reflow import Flow, FlowRun, flow, task
from reflow.executors import InlineExecutor, ThreadExecutor
from reflow.states import State


@task
def double(x: int) -> int:
    return 2 * x


@task
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


# --- calling a sync flow ---------------------------------------------------------------------


def test_a_sync_flow_returns_its_value() -> None:
    @flow
    def pipeline(x: int) -> int:
        return double(x) + double.submit(x).result()

    assert isinstance(pipeline, Flow)
    assert pipeline(3) == 12


def test_a_flow_without_tasks_returns_its_value() -> None:
    @flow
    def plain(a: int, b: int = 2) -> tuple[int, int]:
        return a, b

    assert plain(1) == (1, 2)
    assert plain(1, b=5) == (1, 5)


def test_a_failing_flow_raises_its_exception_when_called() -> None:
    @flow
    def pipeline() -> int:
        return boom(1)

    with pytest.raises(ValueError, match="boom 1"):
        pipeline()


def test_return_state_gives_the_final_state() -> None:
    @flow
    def pipeline(x: int) -> int:
        return double(x)

    state = pipeline(4, return_state=True)

    assert isinstance(state, State)
    assert state.name == "Completed"
    assert state.result() == 8


def test_return_state_of_a_failed_flow_does_not_raise() -> None:
    @flow
    def pipeline() -> int:
        return boom(2)

    state = pipeline(return_state=True)

    assert state.is_failed()
    assert isinstance(state.exception, ValueError)
    assert str(state.exception) == "boom 2"
    with pytest.raises(ValueError, match="boom 2"):
        state.result()
    assert state.result(raise_on_failure=False) is state.exception


def test_a_flow_parameter_named_return_state_is_passed_to_the_function() -> None:
    @flow
    def pipeline(return_state: bool = False) -> str:
        return f"got {return_state}"

    assert pipeline(return_state=True) == "got True"


def test_run_gives_the_flow_run_record() -> None:
    @flow
    def pipeline(x: int) -> int:
        return double(x)

    flow_run = pipeline.run(5)

    assert isinstance(flow_run, FlowRun)
    assert flow_run.name == "pipeline"
    assert flow_run.flow is pipeline
    assert flow_run.parent_id is None
    assert flow_run.parameters == {"x": 5}
    assert flow_run.state.name == "Completed"
    assert flow_run.result() == 10
    assert flow_run.attempts == 1
    assert [s.name for s in flow_run.states] == ["Pending", "Running", "Completed"]
    assert [r.task_name for r in flow_run.task_runs] == ["double"]


def test_run_never_raises_the_flows_failure() -> None:
    @flow
    def pipeline() -> int:
        return boom(3)

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, ValueError)
    with pytest.raises(ValueError, match="boom 3"):
        flow_run.result()
    assert isinstance(flow_run.result(raise_on_failure=False), ValueError)


def test_each_call_is_a_new_flow_run() -> None:
    @flow
    def pipeline(x: int) -> int:
        return double(x)

    first, second = pipeline.run(1), pipeline.run(2)

    assert first.id != second.id
    assert first.result() == 2
    assert second.result() == 4
    assert first.task_runs[0].id != second.task_runs[0].id


def test_tasks_outside_a_flow_still_run_plainly() -> None:
    assert double(21) == 42
    assert double(1, return_state=True).result() == 2


# --- async flows -----------------------------------------------------------------------------


@task
async def async_double(x: int) -> int:
    return 2 * x


async def test_an_async_flow_is_awaited_for_its_value() -> None:
    @flow
    async def pipeline(x: int) -> int:
        direct = await async_double(x)
        submitted = await async_double.submit(x)
        sync_too = double.submit(x)
        return direct + submitted + sync_too.result()

    assert await pipeline(2) == 12


async def test_an_async_flow_run_and_return_state() -> None:
    @flow
    async def pipeline(x: int) -> int:
        return await async_double(x)

    state = await pipeline(3, return_state=True)
    flow_run = await pipeline.run(4)

    assert state.name == "Completed"
    assert state.result() == 6
    assert isinstance(flow_run, FlowRun)
    assert flow_run.result() == 8
    assert [r.task_name for r in flow_run.task_runs] == ["async_double"]


async def test_an_async_flow_raises_its_failure() -> None:
    @task
    async def broken() -> None:
        raise KeyError("missing")

    @flow
    async def pipeline() -> None:
        await broken()

    with pytest.raises(KeyError, match="missing"):
        await pipeline()
    flow_run = await pipeline.run()
    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, KeyError)


# --- options, checked at decoration ----------------------------------------------------------


def test_flow_options_are_kept() -> None:
    executor = InlineExecutor()

    @flow(name="etl", description="loads", version="7", retries=2, executor=executor)
    def pipeline() -> None:
        """Docstring."""

    assert pipeline.name == "etl"
    assert pipeline.description == "loads"
    assert pipeline.version == "7"
    assert pipeline.retries == 2
    assert pipeline.executor is executor
    assert pipeline.run().name == "etl"


def test_the_description_defaults_to_the_docstring() -> None:
    @flow
    def pipeline() -> None:
        """Moves data."""

    assert pipeline.description == "Moves data."
    assert pipeline.__name__ == "pipeline"
    assert pipeline.__doc__ == "Moves data."
    assert pipeline.__wrapped__ is pipeline.fn


@pytest.mark.parametrize("retries", [-1, 1.5, "2", True])
def test_bad_retries_are_refused_at_decoration(retries: Any) -> None:
    with pytest.raises(ValueError, match="retries"):
        flow(retries=retries)


def test_bad_retries_on_a_bare_function_name_the_flow() -> None:
    def pipeline() -> None: ...

    with pytest.raises(ValueError, match="flow pipeline: retries"):
        flow(pipeline, retries=-1)


def test_an_executor_class_instead_of_an_instance_is_a_helpful_type_error() -> None:
    with pytest.raises(TypeError, match=r"write executor=ThreadExecutor\(\)"):
        flow(executor=ThreadExecutor)


def test_a_non_executor_is_refused() -> None:
    with pytest.raises(TypeError, match="executor="):
        flow(executor="threads")


def test_a_bad_hook_is_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="on_failure"):
        flow(on_failure=42)


def test_bad_reference_tasks_are_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="reference_tasks"):
        flow(reference_tasks=[42])


def test_a_bad_persist_result_is_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="persist_result is True, False"):
        flow(persist_result="no")


def test_a_bad_timeout_is_refused_at_decoration() -> None:
    with pytest.raises((TypeError, ValueError), match="timeout_seconds"):
        flow(timeout_seconds=-1)


def test_a_generator_function_cannot_be_a_flow() -> None:
    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        flow(gen)


def test_a_non_callable_cannot_be_a_flow() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        flow(42)  # type: ignore[call-overload]


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError):
        flow(retry=1)  # type: ignore[call-overload]


# --- with_options and repr -------------------------------------------------------------------


def test_with_options_makes_a_new_flow_with_some_options_replaced() -> None:
    @flow(name="original", retries=1, version="1")
    def pipeline(x: int) -> int:
        return double(x)

    renamed = pipeline.with_options(name="renamed", retries=0)

    assert renamed is not pipeline
    assert isinstance(renamed, Flow)
    assert (renamed.name, renamed.retries, renamed.version) == ("renamed", 0, "1")
    assert (pipeline.name, pipeline.retries) == ("original", 1)
    assert renamed.fn is pipeline.fn
    assert renamed(2) == 4
    assert renamed.run(1).name == "renamed"


def test_with_options_keeps_hooks() -> None:
    seen: list[str] = []

    @flow(on_completion=lambda f, r, s: seen.append(f.name))
    def pipeline() -> None: ...

    pipeline.with_options(name="copy")()

    assert seen == ["copy"]


def test_with_options_refuses_unknown_options_naming_them() -> None:
    @flow
    def pipeline() -> None: ...

    with pytest.raises(TypeError, match="retires"):
        pipeline.with_options(retires=1)


def test_with_options_checks_the_new_values() -> None:
    @flow
    def pipeline() -> None: ...

    with pytest.raises(ValueError, match="retries"):
        pipeline.with_options(retries=-2)
    with pytest.raises(TypeError, match="executor"):
        pipeline.with_options(executor=ThreadExecutor)


async def test_with_options_of_an_async_flow_is_async() -> None:
    @flow
    async def pipeline() -> int:
        return await async_double(1)

    copy = pipeline.with_options(name="copy")

    assert await copy() == 2


def test_repr_of_a_flow_and_its_run() -> None:
    @flow(name="etl")
    def pipeline() -> int:
        return double(1) + double(2)

    flow_run = pipeline.run()

    assert repr(pipeline) == "<Flow etl>"
    assert repr(flow_run).startswith(f"<FlowRun etl {flow_run.id[:8]} Completed")
    assert "2 task run(s)" in repr(flow_run)


def test_reflow_exports_the_flow_api() -> None:
    for name in ("flow", "FlowRun", "FlowPaused", "ParameterError", "TriggerFailedError"):
        assert hasattr(reflow, name)


def test_bad_options_in_the_decorator_form_do_not_name_a_lambda() -> None:
    with pytest.raises(ValueError, match="retries") as info:
        flow(retries=-1)
    assert "<lambda>" not in str(info.value)


def test_the_short_ids_in_reprs_tell_runs_apart() -> None:
    @flow
    def pipeline() -> None: ...

    first, second = pipeline.run(), pipeline.run()

    assert first.id != second.id
    assert repr(first) != repr(second)


def test_a_sync_flow_runs_an_async_task_called_directly() -> None:
    import inspect

    @flow
    def pipeline(x: int) -> Any:
        return async_double(x)

    flow_run = pipeline.run(3)
    value = flow_run.result(raise_on_failure=False)
    if inspect.iscoroutine(value):
        value.close()  # no "never awaited" warning leaking into other tests
    assert value == 6
    assert [r.task_name for r in flow_run.task_runs] == ["async_double"]
