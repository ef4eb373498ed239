"""How a probe talks to the server: the `Transport` protocol and an in-process transport.

The probe needs three calls (send a batch, report an action's result, describe a model
version) and one bit of information about a failure: may it be retried? Keeping that behind
a protocol lets tests and in-process deployments skip HTTP entirely (`InMemoryTransport`)
while `HTTPTransport` speaks the real wire contract.

A batch travels with an *idempotency key*, the same for every retry of that batch: when a
reply is lost after the server stored the batch, the retry is answered with the stored reply
instead of being stored twice.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from harmonia.sdk._messages import ActionMessage, actions_from_reply

SendHandler = Callable[..., dict[str, Any]]
"""``(app, instance, samples, *, idempotency_key=None) -> reply body``: the server side of
the telemetry endpoint. A handler written before keys existed, ``(app, instance, samples)``,
still works: it is called without the key."""

ReportHandler = Callable[[str, int, dict[str, Any]], None]
"""``(app, action_id, {"status": ..., "reason": ...})``: the server side of action results."""

DescribeHandler = Callable[[str, str, int, dict[str, Any]], None]
"""``(app, model, version, {"fingerprint": [...], "details": {...}})``: the server side of
version descriptions."""


class TransportError(Exception):
    """A send or report failed.

    ``retryable`` is the one decision the probe needs: network errors and server errors
    (5xx) are worth retrying with the batch kept; a rejection (4xx) will fail the same way
    again, so the batch is dropped. ``status`` is the HTTP status when there was one.
    """

    def __init__(self, retryable: bool, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"TransportError(retryable={self.retryable}, {self.message!r})"


@runtime_checkable
class Transport(Protocol):
    """Delivers telemetry batches and action results to the server.

    Both calls run on the probe's background thread and raise `TransportError` on failure;
    a transport need not be thread-safe beyond that single caller.
    """

    def send(
        self,
        app: str,
        instance: str,
        samples: list[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[ActionMessage]:
        """Deliver ``samples`` (wire-format dicts) and return the actions of the reply.

        ``idempotency_key`` (1 to 128 characters of ``[A-Za-z0-9_.:-]``) names the batch: the
        probe passes the same key on every retry of one batch, and the transport must carry
        it to the server, which answers a key it has stored with the stored reply.
        """
        ...

    def report(self, app: str, action_id: int, status: str, reason: str) -> None:
        """Tell the server whether action ``action_id`` was ``"applied"`` or ``"failed"``."""
        ...

    def describe_version(
        self, app: str, model: str, version: int, description: dict[str, Any]
    ) -> None:
        """Tell the server what one model version is: ``{"fingerprint": [...], "details":
        {...}}`` (held-out quality, energy per inference, what it was trained for). Called
        from the managed system's own thread, so it must be safe beside ``send``."""
        ...


class InMemoryTransport:
    """A transport that calls Python functions implementing the server side of the contract.

    ``send`` receives ``(app, instance, samples)`` and returns the reply body (a dict with
    ``accepted`` and ``actions``); if it accepts an ``idempotency_key`` keyword (or
    ``**kwargs``) it gets the batch's key too, so a fake server can deduplicate retries as
    the real one does. ``report`` receives ``(app, action_id, body)`` and ``describe``
    ``(app, model, version, description)``; either is skipped when ``None``. A handler
    signals a rejection or an outage by raising `TransportError` itself; any other exception
    counts as a retryable server error (a 500), as an HTTP server answers a crash.
    """

    def __init__(
        self,
        send: SendHandler,
        report: ReportHandler | None = None,
        describe: DescribeHandler | None = None,
    ) -> None:
        self._send = send
        self._send_takes_key = accepts_keyword(send, "idempotency_key")
        self._report = report
        self._describe = describe

    def send(
        self,
        app: str,
        instance: str,
        samples: list[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[ActionMessage]:
        try:
            if self._send_takes_key:
                body = self._send(app, instance, samples, idempotency_key=idempotency_key)
            else:
                body = self._send(app, instance, samples)
        except TransportError:
            raise
        except Exception as error:
            raise TransportError(True, f"send handler failed: {error!r}") from error
        return actions_from_reply(body)

    def report(self, app: str, action_id: int, status: str, reason: str) -> None:
        if self._report is not None:
            _call("report", self._report, app, action_id, {"status": status, "reason": reason})

    def describe_version(
        self, app: str, model: str, version: int, description: dict[str, Any]
    ) -> None:
        if self._describe is not None:
            _call("describe", self._describe, app, model, version, description)


def _call(what: str, handler: Callable[..., None], *args: Any) -> None:
    """Run a handler; anything but a `TransportError` counts as a retryable server error."""
    try:
        handler(*args)
    except TransportError:
        raise
    except Exception as error:
        raise TransportError(True, f"{what} handler failed: {error!r}") from error


def accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function`` can be called with the keyword argument ``name``: it names it
    or takes ``**kwargs``. Lets callables written before a keyword existed keep working.

    >>> accepts_keyword(lambda app, instance, samples: None, "idempotency_key")
    False
    >>> accepts_keyword(lambda *args, **options: None, "idempotency_key")
    True
    """
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: assume the old form
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == name and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in parameters
    )
