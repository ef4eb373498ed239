"""Push delivery: POST each action to the application's effector URL, retried with backoff.

An application registered with an ``effector_url`` gets its actions pushed the moment they
are decided (none wait in a telemetry reply). The effector answers 2xx, optionally with
``{"status": "applied"|"failed", "reason": ...}``; a 2xx without a status leaves the action
``delivered`` for the system to report later. An effector that stays down past the last
attempt gets the action marked ``failed`` with the reason, and the loop goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from harmonia.store import App, Store, StoredAction

logger = logging.getLogger("harmonia.server.delivery")


@dataclass(frozen=True)
class _Job:
    app: App
    action: StoredAction


class Pusher:
    """One background thread that pushes actions in the order they were decided."""

    def __init__(
        self,
        store: Store,
        *,
        attempts: int = 5,
        backoff: float = 0.05,
        timeout: float = 2.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.store = store
        self.attempts = attempts
        self.backoff = backoff
        self._client = client or httpx.Client(timeout=timeout)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="harmonia-push", daemon=True)
        self._thread.start()

    def submit(self, app: App, actions: list[StoredAction]) -> None:
        for action in actions:
            if action.kind != "none":
                self._jobs.put(_Job(app, action))

    def close(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)
        self._client.close()

    def join(self) -> None:
        """Wait until every submitted action has been pushed or given up (tests)."""
        self._jobs.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._push(job)
            except Exception:  # one bad job must not stop delivery for everyone
                logger.exception("pushing an action failed unexpectedly")
            finally:
                self._jobs.task_done()

    def _push(self, job: _Job) -> None:
        app, action = job.app, job.action
        assert app.effector_url is not None
        body = orjson.dumps(action.message())
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                reply = self._client.post(
                    app.effector_url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                error = f"effector unreachable: {exc.__class__.__name__}: {exc}"
                continue
            if reply.status_code >= 500:
                error = f"effector answered {reply.status_code}"
                continue
            if reply.status_code >= 400:
                self._finish(app, action, "failed", f"effector refused it: {reply.status_code}")
                return
            self._settle(app, action, reply)
            return
        self._finish(app, action, "failed", f"{error} (after {self.attempts} attempts)")

    def _settle(self, app: App, action: StoredAction, reply: httpx.Response) -> None:
        self.store.mark_delivered(app, action.id)
        try:
            answer: Any = reply.json()
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("status") in ("applied", "failed"):
            self._finish(app, action, answer["status"], str(answer.get("reason", ""))[:2000])

    def _finish(self, app: App, action: StoredAction, status: str, reason: str) -> None:
        try:
            self.store.finish_action(app, action.id, status, reason)
        except Exception:
            logger.exception("recording the outcome of action %s failed", action.id)
