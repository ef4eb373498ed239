"""A live loop does not decide again an action still on its way, even when another action
was decided in between: windows close faster than a system applies actions, and until its
telemetry shows it serving something else every decision is made on the old model's data."""

from __future__ import annotations

from harmonia.core.actions import Action, ActionKind
from harmonia.server.loop import LiveLoop
from support import policy


def action(kind: ActionKind, model: str) -> Action:
    return Action(kind=kind, model=model, ts=0.0, strategy="harmonia", reason="t", trigger="t")


def test_an_action_on_its_way_is_not_decided_again_after_another() -> None:
    loop = LiveLoop("a/default", policy(strategy="harmonia"))
    switch = action(ActionKind.SWITCH_MODEL, "svm")
    retrain = action(ActionKind.RETRAIN, "lstm")
    assert loop._new(switch)
    assert loop._new(retrain)  # another action, decided while the switch is on its way
    assert not loop._new(switch)  # the switch again: a duplicate
    assert not loop._new(retrain)
    # once the telemetry shows the system serving something else, decisions are fresh
    loop.knowledge.activate("svm")
    assert loop._new(switch)


def test_a_failed_action_may_be_decided_again() -> None:
    loop = LiveLoop("a/default", policy(strategy="harmonia"))
    switch = action(ActionKind.SWITCH_MODEL, "svm")
    assert loop._new(switch)
    loop.action_failed()
    assert loop._new(switch)
