"""Harmonica's management routes: off unless the operator names Harmonica's tool folder
(and, for uploaded MAPE files, turns custom MAPE on); on, they write and start there."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harmonia.compat.harmonica.tool import HarmonicaOptions
from harmonia.server.app import create_app
from harmonia.server.service import Guards
from harmonia.store import Store, sqlite_url

ADMIN = "admin-secret"
DASHBOARD = "http://localhost:8000"
MANAGEMENT: list[tuple[str, dict[str, str] | None]] = [
    ("/api/save-policy", {"policy_id": "reg_x", "quality_attribute": "score"}),
    ("/api/set-model", {"model": "svm", "system": "regression"}),
    ("/api/start-managed-system", None),
    ("/api/stop-managed-system", None),
]


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    folder = tmp_path / "tool"
    for base in ("managed_system_regression", "managed_system_cv"):
        (folder / base / "mape_logic").mkdir(parents=True)
        (folder / base / "mape_logic" / "monitor.py").write_text("# base\n")
    # a wrapper that says where it runs and waits, as Harmonica's keeps running
    (folder / "run_managed_system.py").write_text(
        "import os, time\nopen('started.txt', 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    return folder


def client(tmp_path: Path, options: HarmonicaOptions | None, **guards: object) -> TestClient:
    store = Store(sqlite_url(tmp_path))
    app = create_app(store, ADMIN, harmonica_options=options, guards=Guards(**guards))  # type: ignore[arg-type]
    return TestClient(app, base_url="http://127.0.0.1:5000", client=("127.0.0.1", 5000))


@pytest.mark.parametrize(("path", "body"), MANAGEMENT)
def test_management_routes_are_off_by_default_and_say_how_to_turn_them_on(
    tmp_path: Path, path: str, body: dict[str, str] | None
) -> None:
    with client(tmp_path, None) as harmonica:
        reply = harmonica.post(path, json=body) if body else harmonica.post(path)
    assert reply.status_code == 403
    assert "HARMONIA_HARMONICA_TOOL_DIR" in reply.json()["error"]


def test_upload_is_off_without_custom_mape(tmp_path: Path, tool: Path) -> None:
    with client(tmp_path, HarmonicaOptions(tool_dir=tool)) as harmonica:
        reply = harmonica.post(
            "/api/upload-custom-mape",
            data={"base_system": "regression"},
            files=[("files[]", ("monitor.py", b"print('x')"))],
        )
    assert reply.status_code == 403
    assert "HARMONIA_HARMONICA_CUSTOM_MAPE" in reply.json()["error"]
    assert not (tool / "managed_system_custom").exists()


def test_write_approach_without_a_tool_folder_forgets_and_says_what_it_did_not(
    tmp_path: Path,
) -> None:
    with client(tmp_path, None) as harmonica:
        harmonica.post(
            "/api/policy",
            json={
                "policy_id": "p",
                "quality_attribute": "s",
                "adaptation_boundary": {"condition": "LESS_THAN", "threshold": 1},
            },
        )
        reply = harmonica.post("/api/write-approach", json={"approach": "reg_single"})
        assert reply.status_code == 200
        assert "HARMONIA_HARMONICA_TOOL_DIR" in reply.json()["message"]
        assert harmonica.get("/api/knowledge/p").json()["policy"] is None


def test_the_tool_folder_is_written_and_the_system_started_and_stopped(
    tmp_path: Path, tool: Path
) -> None:
    with client(tmp_path, HarmonicaOptions(tool_dir=tool)) as harmonica:
        assert (
            harmonica.post("/api/write-approach", json={"approach": "cv_switch_conf"}).json()[
                "message"
            ]
            == "Approach written and system cleaned"
        )
        assert (tool / "approach.conf").read_text() == "cv_switch"
        policy = {"policy_id": "reg_harmone_score", "quality_attribute": "score"}
        assert harmonica.post("/api/save-policy", json=policy).json() == {"message": "Policy saved"}
        assert (
            '"quality_attribute": "score"' in (tool / "policies/reg_harmone_score.json").read_text()
        )
        for bad in ("../evil", "/etc/x", ".hidden"):
            refused = harmonica.post("/api/save-policy", json={"policy_id": bad})
            assert refused.status_code == 400, bad
        assert not (tool.parent / "evil.json").exists()
        harmonica.post("/api/set-model", json={"model": "yolo_n", "system": "cv"})
        assert (tool / "managed_system_cv/knowledge/model.csv").read_text() == "yolo_n"
        started = harmonica.post("/api/start-managed-system")
        assert started.json() == {"status": "ok", "message": "Managed system started"}
        deadline = time.monotonic() + 10
        while not (tool / "started.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int((tool / "started.txt").read_text())
        stopped = harmonica.post("/api/stop-managed-system")
        assert stopped.json() == {"status": "ok", "message": "Managed system stopped"}
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../../escaped.jpg": b"x"}, "outside its folder"),
        ({"/abs/escaped.jpg": b"x"}, "outside its folder"),
        ({"bomb.jpg": b"\0" * 5_000_000}, "inflates"),
    ],
)
def test_zip_datasets_are_refused_before_anything_is_written(
    tmp_path: Path, tool: Path, members: dict[str, bytes], reason: str
) -> None:
    options = HarmonicaOptions(tool_dir=tool, custom_mape=True)
    with client(tmp_path, options) as harmonica:
        reply = harmonica.post(
            "/api/upload-custom-mape",
            data={"base_system": "cv"},
            files=[
                ("files[]", ("monitor.py", b"# mine\n")),
                ("dataset", ("images.zip", _zip(members))),
            ],
        )
    assert reply.status_code == 400 and reason in reply.json()["error"]
    assert not (tool / "managed_system_custom").exists()
    assert not list(tmp_path.rglob("escaped.jpg"))


def test_a_zip_with_too_many_files_is_refused(tmp_path: Path, tool: Path) -> None:
    from harmonia.compat.harmonica.uploads import ZipLimits

    options = HarmonicaOptions(tool_dir=tool, custom_mape=True, zip_limits=ZipLimits(max_files=3))
    with client(tmp_path, options) as harmonica:
        reply = harmonica.post(
            "/api/upload-custom-mape",
            data={"base_system": "cv"},
            files=[
                ("files[]", ("monitor.py", b"# mine\n")),
                ("dataset", ("images.zip", _zip({f"{i}.jpg": b"x" for i in range(4)}))),
            ],
        )
    assert reply.status_code == 400 and "at most 3" in reply.json()["error"]


def test_a_zip_dataset_is_extracted_for_a_cv_system(tmp_path: Path, tool: Path) -> None:
    options = HarmonicaOptions(tool_dir=tool, custom_mape=True)
    with client(tmp_path, options) as harmonica:
        reply = harmonica.post(
            "/api/upload-custom-mape",
            data={"base_system": "cv"},
            files=[
                ("files[]", ("plan.py", b"# mine\n")),
                ("dataset", ("images.zip", _zip({"a/b.jpg": b"jpeg"}))),
            ],
        )
    assert reply.json() == {
        "message": "Custom system built with 1 MAPE files.",
        "approach": "custom_cv",
    }
    images = tool / "managed_system_custom/data/bdd100k/images/test"
    assert (images / "a/b.jpg").read_bytes() == b"jpeg"
    assert (tool / "approach.conf").read_text() == "custom_cv"


def test_preflight_from_an_origin_not_allowed_says_which_setting_allows_it(
    tmp_path: Path,
) -> None:
    """Without an allow-list (the default) the dashboard's preflight got a bare 405, and the
    dashboard stayed blank without a reason; allowed, every Harmonica route answers it."""
    preflight = {
        "Origin": DASHBOARD,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with client(tmp_path, None) as harmonica:
        refused = harmonica.options("/api/policy", headers=preflight)
    assert refused.status_code == 403
    assert "HARMONIA_CORS_ORIGINS" in refused.json()["error"]
    assert "access-control-allow-origin" not in refused.headers
    routes = [
        "policy",
        "telemetry",
        "reset",
        "write-approach",
        "save-policy",
        "set-model",
        "start-managed-system",
        "stop-managed-system",
        "upload-custom-mape",
        "knowledge/reg_harmone_score",
    ]
    with client(tmp_path / "allowed", None, cors_origins=(DASHBOARD,)) as harmonica:
        for route in routes:
            reply = harmonica.options(f"/api/{route}", headers=preflight)
            assert reply.status_code == 200, route
            assert reply.headers["access-control-allow-origin"] == DASHBOARD, route
            assert "POST" in reply.headers["access-control-allow-methods"], route


UPLOADED_MONITOR = b"""
import socket
results = []
try:
    open("escaped.txt", "w").write("x")  # the tool folder: outside the custom system's
    results.append("wrote outside")
except OSError:
    results.append("outside refused")
try:
    socket.create_connection(("127.0.0.1", 9), 2)
    results.append("connected")
except OSError as error:
    results.append("network refused" if isinstance(error, PermissionError) else repr(error))
open("managed_system_custom/result.txt", "w").write(",".join(results))
"""


def test_an_uploaded_custom_system_runs_sandboxed(tmp_path: Path, tool: Path) -> None:
    from harmonia.compat.harmonica import landlock

    if landlock.abi_version() < 4:
        pytest.skip("needs Landlock ABI 4+")
    (tool / "run_managed_system.py").write_text(
        "import runpy\nrunpy.run_path('managed_system_custom/mape_logic/monitor.py')\n"
    )
    options = HarmonicaOptions(tool_dir=tool, custom_mape=True, python=sys.executable)
    with client(tmp_path, options) as harmonica:
        built = harmonica.post(
            "/api/upload-custom-mape",
            data={"base_system": "regression"},
            files=[("files[]", ("monitor.py", UPLOADED_MONITOR))],
        )
        assert built.json()["approach"] == "custom_regression"
        started = harmonica.post("/api/start-managed-system").json()
        assert started["message"] == "Managed system started (sandboxed)"
        result = tool / "managed_system_custom" / "result.txt"
        deadline = time.monotonic() + 20
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert result.read_text() == "outside refused,network refused"
    assert not (tool / "escaped.txt").exists()


def test_a_custom_approach_does_not_start_without_custom_mape(tmp_path: Path, tool: Path) -> None:
    (tool / "approach.conf").write_text("custom_regression")
    with client(tmp_path, HarmonicaOptions(tool_dir=tool)) as harmonica:
        reply = harmonica.post("/api/start-managed-system")
    assert reply.status_code == 403 and "CUSTOM_MAPE" in reply.json()["error"]
    assert not (tool / "started.txt").exists()
