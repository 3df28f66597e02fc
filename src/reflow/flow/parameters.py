"""A flow's parameters: bound to its signature, validated and coerced from its type hints by
pydantic, before anything runs. pydantic is imported on the first call of a flow with hints."""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

from reflow.flow.errors import ParameterError

logger = logging.getLogger("reflow.flow")


class Parameters:
    """The checker of one flow function's parameters (built once, lazily)."""

    def __init__(self, fn: Callable[..., Any], flow_name: str) -> None:
        self.fn = fn
        self.flow_name = flow_name
        self.signature = inspect.signature(fn)
        self._adapters: dict[str, Any] | None = None

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], skip: str | None = None
    ) -> inspect.BoundArguments:
        """The call's arguments by name, validated and coerced; ParameterError otherwise.

        `skip` names a parameter not to validate (a retry controller gives it later)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"flow {self.flow_name}: {exc}", _culprit(str(exc))) from None
        adapters = self._adapters if self._adapters is not None else self._build()
        for name, value in bound.arguments.items():
            adapter = adapters.get(name)
            if adapter is None or name == skip:
                continue
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                bound.arguments[name] = tuple(
                    self._check(adapter, f"{name}[{i}]", v) for i, v in enumerate(value)
                )
            elif kind is inspect.Parameter.VAR_KEYWORD:
                bound.arguments[name] = {k: self._check(adapter, k, v) for k, v in value.items()}
            else:
                bound.arguments[name] = self._check(adapter, name, value)
        bound.apply_defaults()  # the run records every parameter, defaults included
        return bound

    def _check(self, adapter: Any, name: str, value: Any) -> Any:
        from pydantic import ValidationError

        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(_describe(e) for e in exc.errors())
            raise ParameterError(
                f"flow {self.flow_name}: parameter {name!r} = {value!r:.80} is invalid: {problems}",
                name.partition("[")[0],
            ) from None

    def _build(self) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(self.fn, include_extras=True)
        except Exception:  # a hint naming something undefined: resolve the others one by one
            hints = self._hints_one_by_one()
        hints.pop("return", None)
        adapters: dict[str, Any] = {}
        if hints:
            from pydantic import ConfigDict, TypeAdapter

            config = ConfigDict(arbitrary_types_allowed=True)
            for name, hint in hints.items():
                if name not in self.signature.parameters or hint is Any:
                    continue
                try:
                    adapters[name] = TypeAdapter(hint, config=config)
                except Exception:
                    try:  # models and dataclasses carry their own config
                        adapters[name] = TypeAdapter(hint)
                    except Exception as exc:
                        logger.warning(
                            "reflow: flow %s: parameter %r has a hint pydantic cannot check "
                            "(%s); it is passed as given",
                            self.flow_name, name, exc,
                        )  # fmt: skip
        self._adapters = adapters
        return adapters

    def _hints_one_by_one(self) -> dict[str, Any]:
        namespace = getattr(self.fn, "__globals__", {})
        hints: dict[str, Any] = {}
        for name, parameter in self.signature.parameters.items():
            hint = parameter.annotation
            if hint is inspect.Parameter.empty:
                continue
            if isinstance(hint, str):
                try:
                    hint = eval(hint, namespace)  # what typing.get_type_hints does for each
                except Exception as exc:
                    logger.warning(
                        "reflow: flow %s: the type hint %r of parameter %r cannot be resolved "
                        "(%s); that parameter is passed as given",
                        self.flow_name, hint, name, exc,
                    )  # fmt: skip
                    continue
            hints[name] = hint
        return hints


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message}" if where else message


def _culprit(message: str) -> str | None:
    """The parameter a signature-binding TypeError names, if it names one."""
    if "'" in message:
        return message.split("'")[1]
    return None
