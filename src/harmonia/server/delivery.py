"""Push delivery: POST each action to its service's effector URL, retried with backoff.

A service with an ``effector_url`` (its own, or its application's) gets its actions pushed
the moment they are decided (none wait in a telemetry reply). The effector answers 2xx,
optionally with ``{"status": "applied"|"failed", "reason": ...}``; a 2xx without a status
leaves the action ``delivered`` for the system to report later. An effector that stays down
past the last attempt gets the action marked ``failed`` with the reason, and the loop goes
on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from harmonia.server.effector_client import EffectorClient, EffectorUnreachable
from harmonia.server.targets import TargetRefused
from harmonia.store import App, Store, StoredAction

logger = logging.getLogger("harmonia.server.delivery")

#: jobs waiting per destination; beyond it a job is refused (`Job.drop`), never waited for
QUEUE_LIMIT = 1000


class Job(Protocol):
    """One outgoing call, run in order with the others of its queue."""

    def run(self, client: EffectorClient) -> Awaitable[None]: ...

    def drop(self, reason: str) -> Awaitable[None]:
        """The job will not run (its queue is full, or the server is closing)."""
        ...


class Outbox:
    """Calls the server makes to URLs of its users, off the request path.

    It runs on the server's event loop, one worker task per queue (an application's
    effector, a Harmonica policy's tactics): a call decided on the loop goes out without a
    thread wake-up in between, and a destination that is down or never answers delays only
    its own queue, whose length is bounded.
    """

    def __init__(self, *, timeout: float = 2.0, allow_link_local: bool = False) -> None:
        self.timeout = timeout
        self.allow_link_local = allow_link_local
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, asyncio.Queue[Job | None]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._dropping: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = threading.Condition()

    async def start(self) -> None:
        """Bind to the running event loop (the server's lifespan calls this)."""
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        """Let every worker finish what it holds, then stop."""
        for jobs in self._queues.values():
            await jobs.put(None)  # after what it holds: waits while the queue is full
        await asyncio.gather(*self._workers, return_exceptions=True)

    def submit(self, queue: str, jobs: list[Job]) -> None:
        """Queue ``jobs`` on ``queue``; callable from the event loop or any thread."""
        if not jobs:
            return
        if self._loop is None:
            raise RuntimeError("Outbox.start() must run on the server's event loop first")
        with self._idle:
            self._pending += len(jobs)
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._enqueue(queue, jobs)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, queue, jobs)

    def join(self, timeout: float = 30.0) -> bool:
        """Wait (from another thread) until every submitted job ran or was dropped."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _enqueue(self, name: str, jobs: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = asyncio.Queue(QUEUE_LIMIT)
            self._workers.append(loop.create_task(self._run(queue)))
        for job in jobs:
            try:
                queue.put_nowait(job)
            except asyncio.QueueFull:
                task = loop.create_task(self._settle(job.drop(f"{QUEUE_LIMIT} calls wait")))
                self._dropping.add(task)
                task.add_done_callback(self._dropping.discard)

    async def _settle(self, done: Awaitable[None]) -> None:
        try:
            await done
        except Exception:
            logger.exception("settling an outgoing call failed")
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    async def _run(self, jobs: asyncio.Queue[Job | None]) -> None:
        client = EffectorClient(self.timeout, allow_link_local=self.allow_link_local)
        while (job := await jobs.get()) is not None:
            await self._settle(job.run(client))
        await client.close()


@dataclass(frozen=True)
class ActionPush:
    """POST one action to its service's effector URL (else its application's), retried
    with backoff."""

    pusher: Pusher
    app: App
    action: StoredAction
    #: where to POST it instead of the service's effector (a contract's alert webhook)
    url: str | None = None

    async def run(self, client: EffectorClient) -> None:
        pusher, app, action = self.pusher, self.app, self.action
        url = self.url or app.effector_url_of(action.service)
        assert url is not None
        body = orjson.dumps(action.message())
        error = ""
        for attempt in range(pusher.attempts):
            if attempt:
                await asyncio.sleep(pusher.backoff * 2 ** (attempt - 1))
            try:
                status, answer = await client.post(url, body)
            except EffectorUnreachable as exc:
                error = f"effector unreachable: {exc}"
                continue
            except TargetRefused as exc:
                await pusher.finish(app, action, "failed", f"effector URL refused: {exc}")
                return
            if status >= 500:
                error = f"effector answered {status}"
                continue
            if status >= 400:
                await pusher.finish(app, action, "failed", f"effector refused it: {status}")
                return
            await pusher.settle(app, action, answer)
            return
        await pusher.finish(app, action, "failed", f"{error} (after {pusher.attempts} attempts)")

    async def drop(self, reason: str) -> None:
        await self.pusher.finish(self.app, self.action, "failed", f"not pushed: {reason}")


class Pusher:
    """Pushes each service's actions in the order they were decided, through the
    server's `Outbox` (one queue per service)."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        *,
        attempts: int = 5,
        backoff: float = 0.05,
        on_finish: Callable[[App, StoredAction], None] | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.on_finish = on_finish
        self.attempts = attempts
        self.backoff = backoff

    def submit(self, app: App, actions: list[StoredAction], *, url: str | None = None) -> None:
        """Queue actions for pushing, in order per service (each service's effector has a
        queue of its own), or to ``url`` (one queue); callable from any thread."""
        by_queue: dict[str, list[Job]] = {}
        for action in actions:
            if action.kind != "none":
                queue = f"url:{url}" if url else f"effector:{app.name}/{action.service}"
                by_queue.setdefault(queue, []).append(ActionPush(self, app, action, url))
        for queue, jobs in by_queue.items():
            self.outbox.submit(queue, jobs)

    def join(self, timeout: float = 30.0) -> bool:
        return self.outbox.join(timeout)

    async def settle(self, app: App, action: StoredAction, body: bytes) -> None:
        await asyncio.to_thread(self.store.mark_delivered, app, action.id)
        try:
            answer: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(answer, dict) and answer.get("status") in ("applied", "failed"):
            await self.finish(app, action, answer["status"], str(answer.get("reason", ""))[:2000])

    async def finish(self, app: App, action: StoredAction, status: str, reason: str) -> None:
        try:
            done = await asyncio.to_thread(self.store.finish_action, app, action.id, status, reason)
        except Exception:
            logger.exception("recording the outcome of action %s failed", action.id)
            return
        if self.on_finish is not None:
            self.on_finish(app, done)
