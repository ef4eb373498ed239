"""Push delivery: POST each action to the application's effector URL, retried with backoff.

An application registered with an ``effector_url`` gets its actions pushed the moment they
are decided (none wait in a telemetry reply). The effector answers 2xx, optionally with
``{"status": "applied"|"failed", "reason": ...}``; a 2xx without a status leaves the action
``delivered`` for the system to report later. An effector that stays down past the last
attempt gets the action marked ``failed`` with the reason, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from harmonia.server.effector_client import EffectorClient, EffectorUnreachable
from harmonia.store import App, Store, StoredAction

logger = logging.getLogger("harmonia.server.delivery")


@dataclass(frozen=True)
class _Job:
    app: App
    action: StoredAction


class Pusher:
    """Pushes each application's actions in the order they were decided.

    It runs on the server's event loop, one worker task per application: an action decided
    on the loop goes out without a thread wake-up in between (the latency users wait on), and
    an effector that is down delays only its own application's actions.
    """

    def __init__(
        self,
        store: Store,
        *,
        attempts: int = 5,
        backoff: float = 0.05,
        timeout: float = 2.0,
        on_finish: Callable[[App, StoredAction], None] | None = None,
    ) -> None:
        self.store = store
        self.on_finish = on_finish
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, asyncio.Queue[_Job | None]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._pending = 0
        self._idle = threading.Condition()

    async def start(self) -> None:
        """Bind to the running event loop (the server's lifespan calls this)."""
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        """Let every worker finish what it holds, then stop."""
        for jobs in self._queues.values():
            jobs.put_nowait(None)
        await asyncio.gather(*self._workers, return_exceptions=True)

    def submit(self, app: App, actions: list[StoredAction]) -> None:
        """Queue actions for pushing; callable from the event loop or any thread."""
        jobs = [_Job(app, a) for a in actions if a.kind != "none"]
        if not jobs:
            return
        if self._loop is None:
            raise RuntimeError("Pusher.start() must run on the server's event loop first")
        with self._idle:
            self._pending += len(jobs)
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._enqueue(jobs)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, jobs)

    def join(self, timeout: float = 30.0) -> bool:
        """Wait (from another thread) until every submitted action was pushed or given up."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _enqueue(self, jobs: list[_Job]) -> None:
        for job in jobs:
            queue = self._queues.get(job.app.name)
            if queue is None:
                queue = self._queues[job.app.name] = asyncio.Queue()
                self._workers.append(asyncio.get_running_loop().create_task(self._run(queue)))
            queue.put_nowait(job)

    async def _run(self, jobs: asyncio.Queue[_Job | None]) -> None:
        client = EffectorClient(self.timeout)
        while (job := await jobs.get()) is not None:
            try:
                await self._push(client, job)
            except Exception:  # one bad job must not stop delivery
                logger.exception("pushing an action failed unexpectedly")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
        await client.close()

    async def _push(self, client: EffectorClient, job: _Job) -> None:
        app, action = job.app, job.action
        assert app.effector_url is not None
        body = orjson.dumps(action.message())
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, answer = await client.post(app.effector_url, body)
            except EffectorUnreachable as exc:
                error = f"effector unreachable: {exc}"
                continue
            if status >= 500:
                error = f"effector answered {status}"
                continue
            if status >= 400:
                await self._finish(app, action, "failed", f"effector refused it: {status}")
                return
            await self._settle(app, action, answer)
            return
        await self._finish(app, action, "failed", f"{error} (after {self.attempts} attempts)")

    async def _settle(self, app: App, action: StoredAction, body: bytes) -> None:
        await asyncio.to_thread(self.store.mark_delivered, app, action.id)
        try:
            answer: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(answer, dict) and answer.get("status") in ("applied", "failed"):
            await self._finish(app, action, answer["status"], str(answer.get("reason", ""))[:2000])

    async def _finish(self, app: App, action: StoredAction, status: str, reason: str) -> None:
        try:
            done = await asyncio.to_thread(self.store.finish_action, app, action.id, status, reason)
        except Exception:
            logger.exception("recording the outcome of action %s failed", action.id)
            return
        if self.on_finish is not None:
            self.on_finish(app, done)
