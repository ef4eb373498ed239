"""What the CLI says when something is wrong: one line and exit 2, never a traceback —
a server that is down (a closed port), a wrong token, an unknown app, field errors, a
missing file; and the registration `curl` of the README."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from harmonia.cli import app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin"
TRAFFIC = ROOT / "examples" / "apps" / "traffic.yaml"
POLICY = ROOT / "src" / "harmonia" / "presets" / "traffic-live.yaml"


def _harmonia(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def _one_line_error(result: Result, *expected: str) -> None:
    """Exit 2 with one line starting ``error:`` that says each of ``expected``."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for text in expected:
        assert text in lines[0], result.output


@pytest.fixture(scope="module")
def closed_port() -> str:
    """A server that is down: a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


DOWN_COMMANDS = [
    ["run", "traffic", "--token", "x"],
    ["apps"],
    ["apps", "register", str(TRAFFIC), "--token", "x"],
    ["policy", "put", "traffic", str(POLICY), "--token", "x"],
    ["policies", "traffic"],
    ["actions", "traffic"],
    ["domains", "list", "--token", "x"],
    ["domains", "add", "d", "--org", "o", "--token", "x"],
    ["keys", "list", "d", "--token", "x"],
    ["nodes", "list"],
    ["nodes", "remove", "n", "--token", "x"],
    ["models", "list", "--token", "x"],
    ["models", "pull", "m", "--domain", "d", "--token", "x"],
    ["datasets", "list", "--token", "x"],
]


@pytest.mark.parametrize("command", DOWN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_server_that_is_down_is_one_line(closed_port: str, command: list[str]) -> None:
    result = _harmonia(*command, "--server", closed_port)
    _one_line_error(result, f"cannot reach {closed_port}", "Connection refused")


MISSING = "/no/such/file.yaml"


@pytest.mark.parametrize(
    "command",
    [
        ["policy", "validate", MISSING],
        ["policy", "show", MISSING],
        ["policy", "put", "traffic", MISSING, "--token", "x"],
        ["apps", "register", MISSING, "--token", "x"],
        ["nodes", "put", MISSING, "--token", "x"],
        ["replay", "traffic", "--data", MISSING],
        ["run", "traffic", "--data", MISSING, "--token", "x"],
        ["deploy", "plan", "--nodes", MISSING, "--services", MISSING, "--placer", "best-fit"],
        [
            "models",
            "push",
            str(POLICY),
            "--name",
            "m",
            "--domain",
            "d",
            "--metadata",
            f"@{MISSING}",
            "--token",
            "x",
        ],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_missing_file_says_so(command: list[str], closed_port: str) -> None:
    server = ["--server", closed_port] if command[0] in {"policy", "apps", "nodes", "run"} else []
    if command[:2] in (["policy", "validate"], ["policy", "show"]):
        server = []
    result = _harmonia(*command, *server)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert MISSING in result.output
    assert re.search(r"No such file|cannot read|does not exist", result.output), result.output


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("cli-errors")
    store = Store(sqlite_url(root))
    try:
        with BackgroundServer(store, ADMIN, data_dir=root) as url:
            yield url
    finally:
        store.close()


@pytest.fixture(scope="module")
def app_token(server: str) -> str:
    result = _harmonia("apps", "register", str(TRAFFIC), "--server", server, "--token", ADMIN)
    assert result.exit_code == 0, result.output
    found = re.search(r"token \(shown once\): (\S+)", result.output)
    assert found is not None
    return found[1]


def test_run_with_a_wrong_token_or_an_unknown_app_is_one_line(server: str, app_token: str) -> None:
    wrong = _harmonia("run", "traffic", "--server", server, "--token", "wrong")
    _one_line_error(wrong, "403", "not valid for 'traffic'", "HARMONIA_APP_TOKEN")
    unknown = _harmonia("run", "traffic", "--app", "nope", "--server", server, "--token", app_token)
    _one_line_error(unknown, "404", "no application named 'nope'", "harmonia apps register")


def test_field_errors_are_printed_readably(server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad-app.yaml"
    bad.write_text("name: Bad Name\nowner: me\nmodels: []\n")
    result = _harmonia("apps", "register", str(bad), "--server", server, "--token", ADMIN)
    _one_line_error(result, "422", "name: ")
    assert "[{" not in result.output and "'field'" not in result.output


def test_policy_put_sets_the_policy_and_names_bad_fields(
    server: str, app_token: str, tmp_path: Path
) -> None:
    done = _harmonia(
        "policy", "put", "traffic", str(POLICY), "--server", server, "--token", app_token
    )
    assert done.exit_code == 0, done.output
    assert re.match(r"policy of traffic/forecast: version \d+$", done.output.strip())
    shown = _harmonia("policies", "traffic", "--server", server)
    assert shown.exit_code == 0 and "strategy: harmonia" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        POLICY.read_text().replace(
            "models: [linear, svm, lstm]", "models: [linear, svm, lstm, gpt]"
        )
    )
    refused = _harmonia(
        "policy", "put", "traffic", str(bad), "--server", server, "--token", app_token
    )
    _one_line_error(refused, "422", "models: traffic/forecast cannot serve gpt")
    wrong = _harmonia("policy", "put", "traffic", str(POLICY), "--server", server, "--token", "no")
    _one_line_error(wrong, "403")


# -- the README's registration curl --------------------------------------------------------------
def _readme_curl() -> tuple[list[str], str]:
    """The headers (-H) and the body (-d) of the README's registration command."""
    text = (ROOT / "README.md").read_text()
    command = re.search(r"curl -s -X POST localhost:8000/api/v1/apps(.*?)# → token", text, re.S)
    assert command is not None
    headers = re.findall(r"-H '([^']+)'", command[1])
    body = re.search(r"-d '([^']+)'", command[1])
    assert body is not None
    return headers, body[1]


def test_the_readme_registration_curl_works(server: str) -> None:
    headers, body = _readme_curl()
    sent = dict(h.split(": ", 1) for h in headers)
    sent["Authorization"] = f"Bearer {ADMIN}"  # the README's token is 'secret'
    assert sent.get("Content-Type") == "application/json"
    reply = httpx.post(
        f"{server}/api/v1/apps", content=body.replace('"traffic"', '"readme"'), headers=sent
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["token"]


def test_a_json_body_sent_as_a_form_is_told_to_send_json(server: str) -> None:
    """What ``curl -d`` without the header gets: a reason that says what to do."""
    _, body = _readme_curl()
    for content_type in ("application/x-www-form-urlencoded", None):
        headers = {"Authorization": f"Bearer {ADMIN}"}
        if content_type:
            headers["Content-Type"] = content_type
        reply = httpx.post(f"{server}/api/v1/apps", content=body, headers=headers)
        assert reply.status_code == 422, reply.text
        (issue,) = reply.json()["detail"]
        assert "send Content-Type: application/json" in issue["reason"], issue
