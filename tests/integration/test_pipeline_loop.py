"""The pipeline plays its scenario round and round with ``--loop``, as the demo's traffic
system does: its camera counts frames on past the scenario's end (each a new trace, the same
picture under the same condition every pass), the aggregate still pairs both services'
answers, and SIGTERM, how the server stops a run it started, stops every stage gently
instead of leaving a looping camera behind."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_pipeline_system import short

from harmonia.systems import reference_system
from harmonia.systems.pipeline.live import frame_numbers, run_live
from harmonia.systems.pipeline.stages import Camera

FRAMES = 12  # the scenario's length
TAKEN = 30  # two and a half passes


class Recorder(BaseHTTPRequestHandler):
    """A stand-in server that keeps every telemetry sample (rows or columns) and sends no
    action: what the stages send is the question here, not how the server adapts."""

    samples: list[dict[str, Any]]
    lock: threading.Lock

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        reply: dict[str, Any] = {}
        if self.path.endswith("/telemetry"):
            rows = body.get("samples") or _rows(body["columns"])
            with self.lock:
                self.samples.extend(rows)
            reply = {"accepted": len(rows), "actions": []}
        elif self.path.endswith("/instances"):
            reply = {"name": body["name"]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.do_POST()


def _rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    count = len(next(iter(columns.values()), []))
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"samples": [], "lock": threading.Lock()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_a_looping_camera_numbers_frames_on_and_shows_each_pass_the_same() -> None:
    camera = Camera(short(FRAMES, 6))
    assert list(frame_numbers(FRAMES, loop=False, limit=TAKEN)) == list(range(FRAMES))
    assert list(frame_numbers(FRAMES, loop=True, limit=TAKEN)) == list(range(TAKEN))
    assert list(frame_numbers(FRAMES, loop=False, limit=5)) == list(range(5))
    again = camera.frame(FRAMES + 7)
    first = camera.frame(7)
    assert again.index == FRAMES + 7  # unique: the aggregate pairs answers by it
    assert (again.label, again.condition) == (first.label, first.condition) == (again.label, "dark")
    assert np.array_equal(again.image, first.image)


def test_harmonia_run_pipeline_passes_loop_and_samples_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``harmonia run pipeline --loop --samples N`` calls (it used to refuse both)."""
    asked: dict[str, Any] = {}
    monkeypatch.setattr(
        "harmonia.systems.pipeline.live.run_live", lambda *args, **options: asked.update(options)
    )
    reference_system("pipeline").run_live(
        "http://x", "pipeline", "token", data_dir=tmp_path, loop=True, limit=TAKEN
    )
    assert (asked["loop"], asked["limit"]) == (True, TAKEN)


@pytest.mark.slow
def test_a_looping_pipeline_serves_past_its_scenario_through_every_stage(
    vision_data_dir: Path, recorder: tuple[str, type[Recorder]]
) -> None:
    url, recorded = recorder
    done = run_live(
        url, "pipeline", "token", short(FRAMES, 6), data_dir=vision_data_dir, loop=True, limit=TAKEN
    )
    assert done.served == TAKEN  # every frame judged, across passes
    per_service = Counter(s["service"] for s in recorded.samples)
    assert per_service == {"conditions": TAKEN, "fast": TAKEN, "accurate": TAKEN, "vote": TAKEN}
    camera = [s for s in recorded.samples if s["service"] == "conditions"]
    assert len({s["trace_id"] for s in camera}) == TAKEN  # a new trace per frame, every pass
    # the second pass shows the first's pictures: the same drift comes back
    drift = [s["drift_value"] for s in camera]
    assert drift[FRAMES : 2 * FRAMES] == pytest.approx(drift[:FRAMES])
    assert multiprocessing.active_children() == []


@pytest.mark.slow
def test_sigterm_stops_a_looping_pipeline_gently(
    vision_data_dir: Path, recorder: tuple[str, type[Recorder]]
) -> None:
    """Without end (``loop``, no limit), the run ends only when stopped: SIGTERM stops every
    stage, each flushes what it measured, and the run returns what was served."""
    url, recorded = recorder

    def terminate_once_serving() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with recorded.lock:
                votes = sum(s["service"] == "vote" for s in recorded.samples)
            if votes >= FRAMES + 2:  # past the end of the scenario
                break
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_serving, daemon=True)
    killer.start()
    before = signal.getsignal(signal.SIGTERM)
    done = run_live(url, "pipeline", "token", short(FRAMES, 6), data_dir=vision_data_dir, loop=True)
    killer.join(5)
    assert done.served > FRAMES
    assert signal.getsignal(signal.SIGTERM) == before  # put back
    assert multiprocessing.active_children() == []
    votes = sum(s["service"] == "vote" for s in recorded.samples)
    assert votes == done.served  # the aggregate flushed every verdict it reached
