"""`Effector`: the managed system's side of adaptation — one handler per action kind.

The server decides; only the managed system knows how to swap a model or start a retrain.
A handler that returns has applied the action, one that raises has failed it, and either way
the outcome goes back to the server so that its knowledge reflects what really happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeAlias, overload

from harmonia.sdk._messages import ActionMessage, ActionStatus

Handler: TypeAlias = Callable[[ActionMessage], str | None]
"""Carries out one action; its return string (if any) becomes the reported reason."""

logger = logging.getLogger("harmonia.sdk")


class Effector:
    """Dispatches actions to the handler registered for their kind.

    >>> effector = Effector()
    >>> @effector.on("switch_model")
    ... def switch(action):
    ...     return f"now serving {action.model}"
    >>> effector.handle(ActionMessage(id=1, kind="switch_model", model="svm"))
    ('applied', 'now serving svm')
    >>> effector.handle(ActionMessage(id=2, kind="retrain"))
    ('failed', 'no handler for retrain')
    """

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    @overload
    def on(self, kind: str) -> Callable[[Handler], Handler]: ...

    @overload
    def on(self, kind: str, handler: Handler) -> Handler: ...

    def on(
        self, kind: str, handler: Handler | None = None
    ) -> Handler | Callable[[Handler], Handler]:
        """Register ``handler`` for ``kind`` (replacing any earlier one); without a handler,
        a decorator that registers the function it decorates and returns it unchanged.
        """
        if handler is not None:
            self._handlers[kind] = handler
            return handler

        def register(function: Handler) -> Handler:
            self._handlers[kind] = function
            return function

        return register

    def handles(self, kind: str) -> bool:
        """Whether a handler is registered for ``kind``."""
        return kind in self._handlers

    def handle(self, action: ActionMessage) -> tuple[ActionStatus, str]:
        """Run the handler of ``action.kind``: ``("applied", its return text)`` or
        ``("failed", why)``. A ``"none"`` action is applied trivially; the probe never
        reports it.
        """
        handler = self._handlers.get(action.kind)
        if handler is None:
            if action.kind == "none":
                return "applied", "nothing to do"
            return "failed", f"no handler for {action.kind}"
        try:
            result = handler(action)
        except Exception as error:
            logger.warning("handler for %s action %d failed", action.kind, action.id, exc_info=True)
            return "failed", str(error) or type(error).__name__
        return "applied", "" if result is None else str(result)
