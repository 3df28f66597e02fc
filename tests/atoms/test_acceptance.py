"""The acceptance examples of issue 5, reproduced exactly: ForEach over a subflow, Times(5)
around a task that keeps failing, ParameterizedForEach over server IPs from the store, and a
linear flow whose last task fails reverting the others newest first."""

from __future__ import annotations

from typing import Any

import pytest

from reflow.atoms import (
    Failure,
    ForEach,
    LinearFlow,
    ParameterizedForEach,
    Task,
    Times,
    run,
)
from tests._support import Script

Log = list[tuple[Any, ...]]


# --- the ForEach example -----------------------------------------------------------------------


class Plain(Task):
    """Runs once, outside the retried subflow."""

    def __init__(self, name: str, log: Log) -> None:
        super().__init__(name=name)
        self.log = log

    def execute(self) -> None:
        self.log.append(("execute", self.name))

    def revert(self, result: Any, flow_failures: dict[str, Failure]) -> None:
        self.log.append(("revert", self.name))


class FailsOn(Task):
    """Takes the subflow's value (the controller provides it) and fails on some of them."""

    def __init__(self, name: str, log: Log, fails_on: set[str]) -> None:
        super().__init__(name=name)
        self.log = log
        self.fails_on = fails_on

    def execute(self, value: str) -> str:
        self.log.append(("execute", self.name, value))
        if value in self.fails_on:
            raise RuntimeError(f"{self.name} cannot use {value}")
        return f"{self.name}:{value}"

    def revert(self, value: str, result: Any, flow_failures: dict[str, Failure]) -> None:
        failed = isinstance(result, Failure)
        self.log.append(("revert", self.name, value, "failed" if failed else result))


def test_foreach_retries_the_subflow_with_each_value_and_runs_the_outer_tasks_once() -> None:
    log: Log = []
    f2 = LinearFlow("f2", retry=ForEach(["a", "b", "c"], name="r", provides="value"))
    f2.add(FailsOn("t2", log, fails_on={"a"}), FailsOn("t3", log, fails_on={"a", "b"}))
    f1 = LinearFlow("f1").add(Plain("t1", log), f2, Plain("t4", log))

    store = run(f1)

    assert log == [
        ("execute", "t1"),
        # value 'a': t2 fails; it is reverted (with its Failure) before the retry
        ("execute", "t2", "a"),
        ("revert", "t2", "a", "failed"),
        # value 'b': t2 succeeds, t3 fails; newest completion first: t3, then t2
        ("execute", "t2", "b"),
        ("execute", "t3", "b"),
        ("revert", "t3", "b", "failed"),
        ("revert", "t2", "b", "t2:b"),
        # value 'c': both succeed, and the flow goes on
        ("execute", "t2", "c"),
        ("execute", "t3", "c"),
        ("execute", "t4"),
    ]
    assert log.count(("execute", "t1")) == 1
    assert log.count(("execute", "t4")) == 1
    assert ("revert", "t1") not in log
    assert store["value"] == "c"


def test_reverts_before_a_retry_see_only_the_failures_of_the_try_being_undone() -> None:
    seen: list[tuple[str, str, list[str]]] = []

    class Watch(FailsOn):
        def revert(self, value: str, result: Any, flow_failures: dict[str, Failure]) -> None:
            seen.append((self.name, value, sorted(flow_failures)))

    f2 = LinearFlow("f2", retry=ForEach(["a", "b", "c"], name="r", provides="value"))
    f2.add(Watch("t2", [], fails_on={"a"}), Watch("t3", [], fails_on={"a", "b"}))

    run(f2)

    assert seen == [("t2", "a", ["t2"]), ("t3", "b", ["t3"]), ("t2", "b", ["t3"])]


def test_foreach_whose_values_all_fail_reverts_the_subflow_and_fails_the_flow() -> None:
    log: Log = []
    f2 = LinearFlow("f2", retry=ForEach(["a", "b"], name="r", provides="value"))
    f2.add(FailsOn("t2", log, fails_on=set()), FailsOn("t3", log, fails_on={"a", "b"}))
    f1 = LinearFlow("f1").add(Plain("t1", log), f2, Plain("t4", log))

    with pytest.raises(RuntimeError, match="t3 cannot use b"):
        run(f1)

    executed = [entry[1:] for entry in log if entry[0] == "execute"]
    assert executed == [("t1",), ("t2", "a"), ("t3", "a"), ("t2", "b"), ("t3", "b")]
    assert log[-2:] == [("revert", "t3", "b", "failed"), ("revert", "t2", "b", "t2:b")]
    assert ("execute", "t4") not in log


# --- Times(5) around a task failing six times ---------------------------------------------------


class Scripted(Task):
    def __init__(self, name: str, script: Script, log: Log) -> None:
        super().__init__(name=name)
        self.script = script
        self.log = log

    def execute(self) -> Any:
        self.log.append(("execute", self.name))
        return self.script.step()

    def revert(self, result: Any, flow_failures: dict[str, Failure]) -> None:
        self.log.append(("revert", self.name, result))


def test_times_five_around_a_task_failing_six_times_reverts_it_and_fails_the_flow() -> None:
    log: Log = []
    script = Script(*[ConnectionError] * 6, "never")
    flow = LinearFlow("f", retry=Times(5, name="five")).add(Scripted("flaky", script, log))

    with pytest.raises(ConnectionError, match="failure 5") as raised:
        run(flow)

    assert script.calls == 5
    assert raised.value is script.raised[-1]
    assert [entry[0] for entry in log] == ["execute", "revert"] * 5
    reverted_with = [entry[2] for entry in log if entry[0] == "revert"]
    assert all(isinstance(result, Failure) for result in reverted_with)
    assert [r.exception_str for r in reverted_with] == [f"failure {i}" for i in range(1, 6)]


def test_times_five_around_a_task_failing_four_times_succeeds_on_the_fifth() -> None:
    log: Log = []
    script = Script(*[ConnectionError] * 4, "done")
    flow = LinearFlow("f", retry=Times(5, name="five", provides="attempt"))
    flow.add(Scripted("flaky", script, log))

    store = run(flow)

    assert script.calls == 5
    assert store == {"attempt": 5}
    assert [entry[0] for entry in log] == ["execute", "revert"] * 4 + ["execute"]


# --- ParameterizedForEach over server IPs -------------------------------------------------------


class Connect(Task):
    default_provides = "connection"

    def __init__(self, reachable: set[str], tried: list[str]) -> None:
        super().__init__(name="connect")
        self.reachable = reachable
        self.tried = tried

    def execute(self, ip: str) -> str:
        self.tried.append(ip)
        if ip not in self.reachable:
            raise ConnectionError(f"{ip} is unreachable")
        return f"connected to {ip}"


IPS = ["192.168.1.1", "192.168.1.2", "192.168.1.3"]


def test_parameterized_foreach_tries_each_server_ip_in_turn_until_one_connects() -> None:
    tried: list[str] = []
    retry = ParameterizedForEach(name="ips", rebind=["server_ips"], provides="ip")
    flow = LinearFlow("connect", retry=retry).add(Connect({"192.168.1.2"}, tried))

    store = run(flow, store={"server_ips": IPS})

    assert tried == ["192.168.1.1", "192.168.1.2"]
    assert store == {
        "server_ips": IPS,
        "ip": "192.168.1.2",
        "connection": "connected to 192.168.1.2",
    }


def test_parameterized_foreach_with_no_reachable_server_fails_after_trying_each_once() -> None:
    tried: list[str] = []
    retry = ParameterizedForEach(name="ips", rebind=["server_ips"], provides="ip")
    flow = LinearFlow("connect", retry=retry).add(Connect(set(), tried))

    with pytest.raises(ConnectionError, match=r"192\.168\.1\.3 is unreachable"):
        run(flow, store={"server_ips": IPS})

    assert tried == IPS


# --- a 3-task linear flow whose last task fails -------------------------------------------------


class Step(Task):
    """execute(inputs) -> a value; revert records what it got."""

    def __init__(self, name: str, log: Log, fails: bool = False, **options: Any) -> None:
        super().__init__(name=name, **options)
        self.log = log
        self.fails = fails

    def execute(self, **inputs: Any) -> str:
        self.log.append(("execute", self.name, inputs))
        if self.fails:
            raise ValueError(f"{self.name} failed")
        return f"{self.name}-out"

    def revert(self, result: Any, flow_failures: dict[str, Failure], **inputs: Any) -> None:
        self.log.append(("revert", self.name, inputs, result, dict(flow_failures)))


def test_a_linear_flow_whose_last_task_fails_reverts_everything_newest_first() -> None:
    log: Log = []
    flow = LinearFlow("three").add(
        Step("t1", log, provides="one"),
        Step("t2", log, requires=["one"], provides="two"),
        Step("t3", log, fails=True, requires=["two"]),
    )

    with pytest.raises(ValueError, match="t3 failed"):
        run(flow, store={"start": 0})

    assert [entry[:2] for entry in log] == [
        ("execute", "t1"),
        ("execute", "t2"),
        ("execute", "t3"),
        ("revert", "t3"),
        ("revert", "t2"),
        ("revert", "t1"),
    ]
    reverts = {entry[1]: entry for entry in log if entry[0] == "revert"}
    # each revert gets the arguments its execute got ...
    assert reverts["t2"][2] == {"one": "t1-out"}
    assert reverts["t3"][2] == {"two": "t2-out"}
    # ... its own result (a Failure for the atom that failed) ...
    assert reverts["t1"][3] == "t1-out"
    assert reverts["t2"][3] == "t2-out"
    failed = reverts["t3"][3]
    assert isinstance(failed, Failure)
    assert failed.check(ValueError) is ValueError
    assert failed.exception_str == "t3 failed"
    # ... and the flow's failures by atom name
    for name in ("t1", "t2", "t3"):
        flow_failures = reverts[name][4]
        assert set(flow_failures) == {"t3"}
        assert flow_failures["t3"].matches(failed)
