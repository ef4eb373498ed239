"""Fixtures of the browser tests: a real server process with a trained traffic registry, and
headless Chromium (Debian's, driven by Playwright) logged into its dashboard."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import free_port

CHROMIUM = Path(os.environ.get("HARMONIA_CHROMIUM", "/usr/bin/chromium"))
ADMIN = "browser-admin"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def _unavailable(reason: str) -> None:
    """Skip where the machine lacks a browser; CI must run these tests, so there it fails."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


class ServerProcess:
    """``harmonia serve`` in its own process on a free loopback port (as in test_live)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.admin = ADMIN
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "HARMONIA_DATA_DIR": str(self.data_dir), "HARMONIA_ADMIN_TOKEN": ADMIN}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.log.read_text()) from None
                time.sleep(0.1)
        raise RuntimeError("the server did not start in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGTERM lets the server stop the systems it started
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        reply = httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, **kwargs)
        reply.raise_for_status()
        return reply.json()


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def trained(chromium: Path, data_dir: Path) -> Path:
    """The session's trained traffic registry (tests/conftest.py), so that a live run
    started from the page serves at once instead of training first."""
    return data_dir


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, trained: Path) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("browser-server") / "data"
    # a run started by the server inherits HARMONIA_DATA_DIR and finds its registry here
    shutil.copytree(trained / "registry", data / "registry")
    process = ServerProcess(data)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where each page's screenshot goes, for people to look at (build/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="module")
def page(server: ServerProcess, chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=["--disable-gpu", "--no-sandbox"]
        )
        context = browser.new_context(
            base_url=server.url, viewport={"width": 1440, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(20_000)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.errors = errors
        yield tab
        context.close()
        browser.close()
