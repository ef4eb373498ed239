"""The SDK's action messages and the `Effector` that dispatches them to handlers."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from harmonia.sdk import ActionMessage, Effector
from harmonia.sdk._messages import actions_from_reply

SWITCH = {
    "id": 7,
    "kind": "switch_model",
    "model": "svm",
    "version": 2,
    "reason": "r2 below 0.8",
    "trigger": "r2<0.8",
    "values": {"r2": 0.71, "energy_j": 3},
}


def test_action_from_json_keeps_every_field() -> None:
    action = ActionMessage.from_json(SWITCH)
    assert action == ActionMessage(
        id=7,
        kind="switch_model",
        model="svm",
        version=2,
        reason="r2 below 0.8",
        trigger="r2<0.8",
        values={"r2": 0.71, "energy_j": 3.0},
    )
    assert isinstance(action.values["energy_j"], float)


def test_action_from_json_fills_optional_fields() -> None:
    action = ActionMessage.from_json({"id": 1, "kind": "none", "model": None, "version": None})
    assert (action.model, action.version, action.reason, action.trigger) == (None, None, "", "")
    assert action.values == {}


def test_unknown_kinds_are_kept_for_the_effector_to_refuse() -> None:
    assert ActionMessage.from_json({"id": 1, "kind": "scale_out"}).kind == "scale_out"


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"kind": "retrain"},
        {"id": True, "kind": "retrain"},
        {"id": "3", "kind": "retrain"},
        {"id": 3, "kind": ""},
        {"id": 3, "kind": "retrain", "model": 5},
        {"id": 3, "kind": "retrain", "version": 1.5},
        {"id": 3, "kind": "retrain", "values": {"r2": "high"}},
        {"id": 3, "kind": "retrain", "values": [1.0]},
    ],
)
def test_malformed_actions_are_refused(data: Any) -> None:
    with pytest.raises(ValueError):
        ActionMessage.from_json(data)


def test_reply_parsing_skips_malformed_actions(caplog: pytest.LogCaptureFixture) -> None:
    reply = {"accepted": 3, "actions": [SWITCH, {"id": "x"}, {"id": 8, "kind": "retrain"}]}
    assert [a.id for a in actions_from_reply(reply)] == [7, 8]
    assert "malformed action" in caplog.text


@pytest.mark.parametrize(
    "reply", [None, [], "ok", {"accepted": 1}, {"actions": None}, {"actions": 3}]
)
def test_replies_without_usable_actions_yield_none(reply: Any) -> None:
    assert actions_from_reply(reply) == []


def test_handlers_register_directly_or_as_decorators() -> None:
    effector = Effector()
    calls: list[str] = []

    def switch(action: ActionMessage) -> str:
        calls.append(f"switch {action.model}")
        return "swapped"

    assert effector.on("switch_model", switch) is switch

    @effector.on("retrain")
    def retrain(action: ActionMessage) -> None:
        calls.append("retrain")

    assert effector.handles("switch_model") and effector.handles("retrain")
    assert effector.handle(ActionMessage.from_json(SWITCH)) == ("applied", "swapped")
    assert effector.handle(ActionMessage(id=2, kind="retrain")) == ("applied", "")
    assert calls == ["switch svm", "retrain"]


def test_a_raising_handler_fails_the_action_with_its_message() -> None:
    effector = Effector()

    @effector.on("retrain")
    def retrain(action: ActionMessage) -> None:
        raise RuntimeError("disk full")

    @effector.on("reuse_version")
    def reuse(action: ActionMessage) -> None:
        raise KeyError

    assert effector.handle(ActionMessage(id=1, kind="retrain")) == ("failed", "disk full")
    assert effector.handle(ActionMessage(id=2, kind="reuse_version")) == ("failed", "KeyError")


def test_missing_handlers_fail_and_none_needs_none() -> None:
    effector = Effector()
    assert effector.handle(ActionMessage(id=1, kind="retrain")) == (
        "failed",
        "no handler for retrain",
    )
    assert effector.handle(ActionMessage(id=2, kind="none"))[0] == "applied"


def test_a_later_registration_replaces_the_handler() -> None:
    effector = Effector()
    effector.on("retrain", lambda action: "first")
    effector.on("retrain", lambda action: "second")
    assert effector.handle(ActionMessage(id=1, kind="retrain")) == ("applied", "second")


def test_the_sdk_loads_no_server_store_or_http_code() -> None:
    unwanted = ("harmonia.server", "harmonia.store", "httpx")
    code = f"import sys, harmonia.sdk; print(sorted(m for m in {unwanted} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
