"""The messages of the wire contract: adaptation actions the server sends back to a probe.

Parsing is deliberately lenient about what it does not understand: a reply arrives only after
the server has *accepted* the samples, so a malformed action is logged and skipped rather than
failing the batch (retrying would store the samples twice). Unknown action kinds are kept, so
an older SDK still reports "no handler" for a kind a newer server invents.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harmonia.core.actions import ActionKind as ActionKind

# The kinds of action the server sends today (``ActionMessage.kind`` may hold others): the
# core's one list, re-exported (`harmonia.core.actions` is pure pydantic).
from harmonia.core.numbers import is_number

ActionStatus = Literal["applied", "failed"]
"""What a managed system reports about an action it was asked to carry out."""

logger = logging.getLogger("harmonia.sdk")


@dataclass(frozen=True)
class ActionMessage:
    """One adaptation action, exactly as the server sends it.

    ``model``/``version`` name the target (``None`` when the kind needs none), ``reason`` and
    ``trigger`` say why the server decided it, and ``values`` holds the numbers it decided on
    (the window's R², energy...), so a handler can log or check them.
    """

    id: int
    kind: str
    model: str | None = None
    version: int | None = None
    reason: str = ""
    trigger: str = ""
    values: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> ActionMessage:
        """The action a decoded JSON object describes, or a ValueError saying what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an action must be a JSON object, got {type(data).__name__}")
        action_id = data.get("id")
        kind = data.get("kind")
        model = data.get("model")
        version = data.get("version")
        values = data.get("values") or {}
        if not isinstance(action_id, int) or isinstance(action_id, bool):
            raise ValueError(f"action id must be an integer, got {action_id!r}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"action {action_id}: kind must be a non-empty string, got {kind!r}")
        if model is not None and not isinstance(model, str):
            raise ValueError(f"action {action_id}: model must be a string or null")
        if version is not None and not _is_int(version):
            raise ValueError(f"action {action_id}: version must be an integer or null")
        if not isinstance(values, Mapping) or not all(is_number(v) for v in values.values()):
            raise ValueError(f"action {action_id}: values must map names to numbers")
        return cls(
            id=action_id,
            kind=kind,
            model=model,
            version=version,
            reason=str(data.get("reason") or ""),
            trigger=str(data.get("trigger") or ""),
            values={str(k): float(v) for k, v in values.items() if math.isfinite(v)},
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def actions_from_reply(body: Any) -> list[ActionMessage]:
    """The actions of a telemetry reply body; malformed ones are logged and skipped."""
    if not isinstance(body, Mapping):
        logger.warning("telemetry reply is not a JSON object (%s); no actions", type(body).__name__)
        return []
    raw = body.get("actions") or []
    if not isinstance(raw, list):
        logger.warning("telemetry reply 'actions' is not a list; no actions")
        return []
    actions: list[ActionMessage] = []
    for item in raw:
        try:
            actions.append(ActionMessage.from_json(item))
        except ValueError as error:
            logger.warning("skipping a malformed action from the server: %s", error)
    return actions
