"""The flow layer: `@flow` runs task calls as a graph, with futures, mapping, triggers,
signals, executors and an in-memory record of every run."""

from reflow.flow import triggers
from reflow.flow.decorator import Flow, FlowHook, flow
from reflow.flow.errors import FlowPaused, ParameterError, TriggerFailedError
from reflow.flow.run import FlowRun
from reflow.flow.runlog import RunContext, get_run_context, get_run_logger

__all__ = [
    "Flow",
    "FlowHook",
    "FlowPaused",
    "FlowRun",
    "ParameterError",
    "RunContext",
    "TriggerFailedError",
    "flow",
    "get_run_context",
    "get_run_logger",
    "triggers",
]
