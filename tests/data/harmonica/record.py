"""Record what Harmonica's own server answers to the requests its dashboard and its
managed-system wrapper send, so that Harmonia's tests replay them (`sequences.json`).

Run it with a Python that has Flask, flask-cors, requests and psutil, on a copy of
Harmonica's ``tool/`` folder (sa4s-serc/HarmonE-tool, MIT licence), never on this repository:

    build/harmonica-venv/bin/python tests/data/harmonica/record.py build/harmonica-tool \\
        tests/data/harmonica/sequences.json

Harmonica's ``app.py`` is loaded as it is; only its process handling is replaced while
recording (``psutil.process_iter`` sees no process, ``subprocess.Popen`` starts nothing), so
that recording kills and starts nothing on this machine. Its tactic calls and its shutdown
call go to a recorder listening where Harmonica's presets point (``localhost:8080``). The
secondary checker runs every 2 s here instead of 30 s: the requests it makes are the same.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import requests  # type: ignore[import-untyped]

DASHBOARD = "http://localhost:8000"
TACTIC = "http://localhost:8080/adaptor/tactic"
CHECK_EVERY_S = 2


class Effector(BaseHTTPRequestHandler):
    """The managed-system wrapper's adaptor API as Harmonica calls it: records each POST."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append({"path": self.path, "json": json.loads(body or b"null")})
        reply = b'{"message": "Command queued."}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: Any) -> None:
        pass


def _load_harmonica(tool: Path) -> types.ModuleType:
    os.chdir(tool)
    spec = importlib.util.spec_from_file_location("harmonica_app", tool / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.psutil = types.SimpleNamespace(  # type: ignore[attr-defined]
        process_iter=lambda *_a, **_k: iter(()),
        NoSuchProcess=Exception,
        AccessDenied=Exception,
        ZombieProcess=Exception,
    )
    started: list[list[str]] = []
    module.subprocess = types.SimpleNamespace(  # type: ignore[attr-defined]
        Popen=lambda args, **_: started.append(list(args))
    )
    module.STARTED = started  # type: ignore[attr-defined]
    return module


class Recorder:
    """Sends requests to Harmonica's server and writes down each exchange."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.exchanges: list[dict[str, Any]] = []

    def send(self, step: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        content = kwargs.pop("content", None)
        if content is not None:
            kwargs["data"] = content
        reply = requests.request(method, self.base + path, timeout=10, **kwargs)
        if content is not None:
            del kwargs["data"]
            kwargs["content"] = content.decode()
        kind = reply.headers.get("Content-Type", "")
        body: Any = reply.json() if kind.startswith("application/json") else reply.text[:200]
        request: dict[str, Any] = {"method": method, "path": path}
        for key in ("json", "headers", "data"):
            if key in kwargs:
                request[key] = kwargs[key]
        if "content" in kwargs:
            request["content"] = kwargs["content"]
        if "files" in kwargs:
            request["files"] = [[f, n, c.decode()] for f, (n, c) in kwargs["files"]]
        cors = {k: v for k, v in reply.headers.items() if k.lower().startswith("access-control")}
        self.exchanges.append(
            {
                "step": step,
                "request": request,
                "response": {
                    "status": reply.status_code,
                    "content_type": kind.split(";")[0],
                    "body": body,
                    "cors": cors,
                },
            }
        )
        return reply


def _policy_file(tool: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((tool / "policies" / f"{name}.json").read_text())
    return loaded


def record(tool: Path) -> dict[str, Any]:
    effector = ThreadingHTTPServer(("127.0.0.1", 8080), Effector)
    threading.Thread(target=effector.serve_forever, daemon=True).start()
    harmonica = _load_harmonica(tool)
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, harmonica.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    checker = threading.Thread(
        target=harmonica.periodic_secondary_checks, args=(CHECK_EVERY_S,), daemon=True
    )
    checker.start()
    http = Recorder(f"http://127.0.0.1:{server.server_port}")
    origin = {"Origin": DASHBOARD}
    json_post = {**origin, "Content-Type": "application/json"}
    preflight = {
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    score = _policy_file(tool, "reg_harmone_score")

    # the dashboard: "REG: HarmonE" then Start
    http.send("dashboard.preflight", "OPTIONS", "/api/policy", headers=preflight)
    http.send("dashboard.reset", "POST", "/api/reset", headers=origin)
    http.send("dashboard.preflight", "OPTIONS", "/api/write-approach", headers=preflight)
    http.send(
        "dashboard.write_approach",
        "POST",
        "/api/write-approach",
        headers=json_post,
        json={"approach": "reg_harmone_score"},
    )
    approach_written = (tool / "approach.conf").read_text()
    form = {**score, "secondary_boundaries": score["secondary_boundaries"]}
    http.send("dashboard.save_policy", "POST", "/api/save-policy", headers=json_post, json=form)
    http.send("dashboard.start", "POST", "/api/start-managed-system", headers=origin)
    http.send("dashboard.knowledge_before", "GET", "/api/knowledge/reg_harmone_score?t=1")

    # the wrapper: its policy file, then a telemetry message every 5 s
    http.send("wrapper.policy", "POST", "/api/policy", json=score)
    telemetry = [
        {"score": 0.91, "kl_div": 0.04, "model_switches": 0},
        {"score": 0.62, "kl_div": 0.3, "model_switches": 5},
    ]
    for index, metrics in enumerate(telemetry):
        message = {
            "timestamp": 1_700_000_000.0 + 5 * index,
            "r2_score": 0.9,
            "energy": 3.5,
            "normalized_energy": 0.4,
            "model_used": "lstm",
            "retrains": 0,
            "vmr_events": 0,
            "mape_k_energy_uJ": 12.5,
            "simple_switches": 0,
            **metrics,
        }
        http.send("wrapper.telemetry", "POST", "/api/telemetry", json=message)
    time.sleep(CHECK_EVERY_S * 1.5)  # one secondary check on the latest message
    http.send("dashboard.knowledge", "GET", "/api/knowledge/reg_harmone_score?t=2")
    http.send("dashboard.knowledge_unknown", "GET", "/api/knowledge/nope?t=3")
    http.send("dashboard.knowledge_unassigned", "GET", "/api/knowledge/unassigned")
    tactics_harmone = list(Effector.received)

    # "REG: Single model" (SVM): its policy has no tactics; the file's has tactic_id ""
    Effector.received.clear()
    http.send("single.reset", "POST", "/api/reset", headers=origin)
    http.send(
        "single.write_approach",
        "POST",
        "/api/write-approach",
        headers=json_post,
        json={"approach": "reg_single"},
    )
    http.send(
        "single.set_model",
        "POST",
        "/api/set-model",
        headers=json_post,
        json={"model": "svm", "system": "regression"},
    )
    model_written = (tool / "managed_system_regression/knowledge/model.csv").read_text()
    single = {
        "policy_id": "reg_single_svm",
        "quality_attribute": "r2_score",
        "adaptation_boundary": {"condition": "LESS_THAN", "threshold": 0.0},
        "tactics": [],
        "secondary_boundaries": [],
        "associated_qas": ["r2_score", "energy", "model_used"],
    }
    http.send("single.policy", "POST", "/api/policy", headers=json_post, json=single)
    http.send("single.telemetry", "POST", "/api/telemetry", json={"timestamp": 1.0, "r2_score": -1})
    http.send(
        "single.file_policy", "POST", "/api/policy", json=_policy_file(tool, "reg_single_svm")
    )
    http.send("single.telemetry", "POST", "/api/telemetry", json={"timestamp": 2.0, "r2_score": -2})
    time.sleep(0.5)
    http.send("single.knowledge", "GET", "/api/knowledge/reg_single_svm")
    tactics_single = list(Effector.received)

    # a custom tactic id and a dynamic boundary
    Effector.received.clear()
    http.send("custom.reset", "POST", "/api/reset")
    dynamic = {
        "policy_id": "reg_dynamic",
        "quality_attribute": "latency",
        "adaptation_boundary": {
            "condition": "GREATER_THAN",
            "threshold": 10,
            "dynamic_logic": "historic_avg * 1.3",
        },
        "tactics": [{"tactic_id": "my_own_tactic", "priority": 1, "tactic_endpoint": TACTIC}],
    }
    http.send("custom.policy", "POST", "/api/policy", json=dynamic)
    for latency in (20, 21, 22, 40):  # means with each: 20, 20.5, 21, 25.75 (x1.3: 33.5)
        http.send("custom.telemetry", "POST", "/api/telemetry", json={"latency": latency})
    time.sleep(0.5)
    http.send("custom.knowledge", "GET", "/api/knowledge/reg_dynamic")
    tactics_custom = list(Effector.received)

    # what Harmonica refuses
    http.send(
        "errors.text_plain",
        "POST",
        "/api/telemetry",
        content=b'{"score": 0.5}',
        headers={"Content-Type": "text/plain"},
    )
    http.send(
        "errors.not_json",
        "POST",
        "/api/policy",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    http.send("errors.shutdown_system", "POST", "/api/shutdown-system", headers=json_post)

    # the custom MAPE upload, then stop
    mape = [("files[]", (name, b"# ours\n")) for name in ("monitor.py", "plan.py", "notes.txt")]
    dataset = ("dataset", ("dataset.csv", b"a,b\n1,2\n"))
    http.send(
        "upload.custom",
        "POST",
        "/api/upload-custom-mape",
        data={"base_system": "regression"},
        files=[*mape, dataset],
    )
    uploaded = sorted(
        str(p.relative_to(tool / "managed_system_custom" / "mape_logic"))
        for p in (tool / "managed_system_custom" / "mape_logic").iterdir()
    )
    http.send("upload.no_base", "POST", "/api/upload-custom-mape", data={}, files=mape)
    http.send(
        "upload.bad_base", "POST", "/api/upload-custom-mape", data={"base_system": "x"}, files=mape
    )
    http.send("stop", "POST", "/api/stop-managed-system", headers=origin)
    shutdowns = [r for r in Effector.received if r["path"] == "/adaptor/shutdown"]
    server.shutdown()
    effector.shutdown()
    return {
        "origin": "Recorded from Harmonica's own server (sa4s-serc/HarmonE-tool, tool/app.py, "
        "MIT licence, Copyright (c) 2025 The Authors) by tests/data/harmonica/record.py; "
        "request shapes follow its tool/frontend/dashboard.html and tool/run_managed_system.py.",
        "exchanges": http.exchanges,
        "tactics": {
            "harmone": tactics_harmone,
            "single": tactics_single,
            "custom": [t for t in tactics_custom if t["path"] != "/adaptor/shutdown"],
        },
        "effects": {
            "approach_conf": approach_written,
            "model_csv": model_written,
            "uploaded_mape_files": uploaded,
            "started": harmonica.STARTED,
            "shutdown_calls": len(shutdowns),
        },
    }


if __name__ == "__main__":
    tool_dir, output = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    output.write_text(json.dumps(record(tool_dir), indent=1, sort_keys=False) + "\n")
    print(f"wrote {output}")
