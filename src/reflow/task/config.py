"""`TaskConfig`: the options of `@task`, checked once at decoration, naming the bad option."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reflow import settings
from reflow.retry import AttemptsExhausted, AttemptTimeout, Condition, ExceptionMatches, NoException
from reflow.retry.conditions import check_exception_types
from reflow.retry.durations import to_seconds
from reflow.task.cache import DEFAULT_CACHE_STORE, CachePolicy, CacheStore, KeyFunction
from reflow.task.hooks import check_callables
from reflow.task.options import Jittered, check_jitter_factor, delay_wait
from reflow.task.signals import Fail, Pause, is_bad_call, is_crash
from reflow.task.signals import Retry as RetrySignal

HOOK_KINDS = ("on_running", "on_retry", "on_completion", "on_failure")


class TaskConfig:
    """The options of `@task`, validated; raises naming the option at decoration time."""

    NAMES = (
        "name", "description", "version", "tags", "retries", "retry_delay_seconds",
        "retry_jitter_factor", "retry_condition_fn", "retry_on", "timeout_seconds",
        "cache_policy", "cache_key_fn", "cache_expiration", "refresh_cache", "cache_store",
        "persist_result", "on_running", "on_retry", "on_completion", "on_failure",
        "state_handlers", "skip_on_upstream_skip", "trigger", "revert",
    )  # fmt: skip

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        unknown = set(options) - set(self.NAMES)
        if unknown:
            raise TypeError(f"@task got unknown option(s) {', '.join(sorted(unknown))}")
        get = options.get
        name = get("name") or getattr(fn, "__name__", type(fn).__name__)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        self.name: str = name
        self.description = get("description")
        self.version = get("version")
        tags = get("tags") or ()
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise TypeError(f"tags takes a list of strings, got {tags!r}")
        self.tags = frozenset(tags)
        retries = get("retries")
        if retries is None:
            retries = settings.task_default_retries()
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number of 0 or more, got {retries!r}")
        self.retries = retries
        delay = get("retry_delay_seconds")
        if delay is None:
            delay = settings.task_default_retry_delay_seconds()
        wait = delay_wait(delay, retries)
        jitter = check_jitter_factor(get("retry_jitter_factor"))
        self.wait = Jittered(wait, jitter) if jitter else wait
        self.retry_condition_fn = get("retry_condition_fn")
        if self.retry_condition_fn is not None and not callable(self.retry_condition_fn):
            raise TypeError(
                f"retry_condition_fn takes a function (task, run, state) -> bool, "
                f"got {self.retry_condition_fn!r}"
            )
        timeout = get("timeout_seconds")
        self.timeout_seconds = (
            None if timeout is None else to_seconds(timeout, "timeout_seconds", allow_zero=False)
        )
        self.until = self._until(get("retry_on"))
        self.cache_policy = self._cache_policy(get("cache_policy"), get("cache_key_fn"))
        expiration = get("cache_expiration")
        self.cache_expiration = (
            None
            if expiration is None
            else to_seconds(expiration, "cache_expiration", allow_zero=False)
        )
        self.refresh_cache = bool(get("refresh_cache", False))
        store = get("cache_store")
        if store is None:  # not `or`: an empty store is falsy (it has a __len__)
            store = DEFAULT_CACHE_STORE
        if not isinstance(store, CacheStore):
            raise TypeError(f"cache_store takes an object with get() and put(), got {store!r}")
        self.cache_store = store
        persist_result = get("persist_result")
        if persist_result is not None and not isinstance(persist_result, bool):
            raise TypeError(
                "persist_result is True, False (its results are never written to the store) "
                f"or None (as its flow says), got {persist_result!r}"
            )
        self.persist_result: bool | None = persist_result
        self.skip_on_upstream_skip = bool(get("skip_on_upstream_skip", True))
        self.trigger = get("trigger")
        revert = get("revert")
        if revert is not None and not callable(revert):
            raise TypeError(f"revert takes one function (result, *args, **kwargs), got {revert!r}")
        self.revert = revert
        self.hooks = {kind: check_callables(get(kind), kind) for kind in HOOK_KINDS}
        self.state_handlers = check_callables(
            get("state_handlers"), "state_handlers", "(task, old, new)", allow_async=False
        )

    def _until(self, retry_on: Any) -> Condition:
        # Fail, Pause, and a call whose arguments do not fit the signature, are never retried.
        until: Condition = (
            AttemptsExhausted(1 + self.retries)
            | ExceptionMatches((Fail, Pause))
            | ExceptionMatches(is_bad_call)
        )
        if retry_on is not None:
            types = check_exception_types(
                tuple(retry_on) if isinstance(retry_on, list) else retry_on, "retry_on"
            )
            if self.timeout_seconds is not None:
                types = (*types, AttemptTimeout)
            # a Retry signal, and a lost worker, are retried whatever retry_on says
            matches = ExceptionMatches((*types, RetrySignal)) | ExceptionMatches(is_crash)
            until = until | ~(NoException() | matches)
        return until

    @staticmethod
    def _cache_policy(policy: Any, key_fn: Any) -> CachePolicy | None:
        if key_fn is not None:
            if not callable(key_fn):
                raise TypeError(
                    f"cache_key_fn takes a function (context, args) -> str, got {key_fn!r}"
                )
            key_policy: CachePolicy = KeyFunction(key_fn)
            return key_policy if policy is None else policy + key_policy
        if policy is None:
            return None
        if not isinstance(policy, CachePolicy):
            raise TypeError(
                f"cache_policy takes INPUTS, TASK_SOURCE, NO_CACHE or a combination, got {policy!r}"
            )
        return policy
