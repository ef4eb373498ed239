"""A Harmonia server on a background thread, for the demo and for embedding."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from harmonia.server.app import create_app
from harmonia.store import Store


class BackgroundServer:
    """``with BackgroundServer(store, token) as url: ...`` serves on loopback meanwhile."""

    def __init__(
        self,
        store: Store,
        admin_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path = Path(".harmonia"),
        **options: Any,
    ) -> None:
        """``options`` go to `create_app` (``amqp_url``, ``mqtt_url``, ``guards``...)."""
        config = uvicorn.Config(
            create_app(store, admin_token, data_dir=data_dir, **options),
            host=host,
            port=port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="harmonia-server", daemon=True)
        self.url = ""

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
