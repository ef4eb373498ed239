"""Issue 10's findings, each as the request that broke the server, on SQLite and PostgreSQL:
what a careless client or an attacker sends gets a 4xx that names the field, and nothing it
sends changes an application's loop unless it was stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import BACKENDS, database
from fastapi.testclient import TestClient
from test_push_delivery import Effector
from test_server_api import ADMIN, POLICY, auth, samples

from harmonia.core.application import Application
from harmonia.server.app import MAX_BODY_BYTES, create_app
from harmonia.server.background import BackgroundServer
from harmonia.server.service import Guards
from harmonia.server.validation import BIG_BODY_BYTES
from harmonia.store import Store, sqlite_url

MODELS = ["linear", "svm", "lstm"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with database(request.param, tmp_path) as url:
        instance = Store(url)
        yield instance
        instance.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, ADMIN)) as test_client:
        yield test_client


def register(client: TestClient, **extra: Any) -> str:
    body = {"name": "traffic", "owner": "team", "models": MODELS, **extra}
    reply = client.post("/api/v1/apps", json=body, headers=auth(ADMIN))
    assert reply.status_code == 201, reply.text
    return str(reply.json()["token"])


def send(client: TestClient, token: str, rows: list[dict[str, Any]], **headers: str) -> Any:
    return client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"instance": "i-1", "samples": rows},
        headers={**auth(token), **headers},
    )


def with_policy(client: TestClient) -> str:
    token = register(client)
    reply = client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    assert reply.status_code == 201, reply.text
    return token


def current(client: TestClient, model: str) -> Any:
    [view] = [m for m in client.get("/api/v1/apps/traffic/models").json() if m["model"] == model]
    return view["current_version"]


# -- 1, 2: the loop changes only with what was stored --------------------------------------------
@pytest.mark.parametrize("version", [2**31, 2**63, 2**64 + 1])
def test_a_version_the_store_cannot_hold_is_refused_and_poisons_nothing(
    client: TestClient, version: int
) -> None:
    token = with_policy(client)
    assert send(client, token, samples("lstm", 10, r2=0.95)).status_code == 200
    bad = send(client, token, samples("lstm", 1, r2=0.95, start=10, model_version=version))
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "samples[0].model_version"
    assert current(client, "lstm") == 1
    # batches that close windows go on being answered, and decide
    reply = send(client, token, samples("lstm", 100, r2=0.2, start=20))
    assert reply.status_code == 200 and reply.json()["actions"], reply.text


def test_when_the_store_fails_the_loop_forgets_the_batch(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch that decides fails to store: its decision is not kept as in flight, nor its
    version as current; the same violation is decided again on the next batch."""
    token = with_policy(client)
    assert send(client, token, samples("lstm", 40, r2=0.95)).status_code == 200
    real = store.ingest

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "ingest", failing)
    broken = samples("lstm", 60, r2=0.1, start=40, model_version=7)
    with pytest.raises(RuntimeError, match="disk full"):
        send(client, token, broken)
    monkeypatch.setattr(store, "ingest", real)
    assert current(client, "lstm") == 1  # version 7 was never stored
    assert store.count_telemetry(store.app("traffic")) == 40
    retried = send(client, token, samples("lstm", 100, r2=0.1, start=40))
    assert retried.status_code == 200
    [action] = retried.json()["actions"]
    assert action["kind"] == "switch_model"


@pytest.mark.parametrize(
    "sample",
    [
        {"instance": "a\x00b"},
        {"model": "ls\x00tm"},
        {"model": ""},
        {"service": "x" * 129},
        {"energy_source": "est\x00"},
        {"metrics": {"bad\x00key": 1.0}},
    ],
)
def test_names_and_text_follow_one_character_set(
    client: TestClient, sample: dict[str, Any]
) -> None:
    token = with_policy(client)
    body: dict[str, Any] = {"instance": "i-1", "samples": samples("lstm", 1, r2=0.9)}
    if "instance" in sample:
        body["instance"] = sample["instance"]
    else:
        body["samples"][0].update(sample)
    reply = client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token))
    assert reply.status_code == 422, reply.text
    field = reply.json()["detail"][0]["field"]
    [name] = sample
    assert field == "instance" if name == "instance" else field.startswith(f"samples[0].{name}")


def test_a_decision_that_failed_to_store_is_decided_again_on_the_next_batch(
    client: TestClient, store: Store
) -> None:
    """Finding 2 as it was found: the batch with a NUL in ``instance`` is refused before the
    loop sees it, so the violation it carried is decided when the batch comes back clean."""
    token = with_policy(client)
    send(client, token, samples("lstm", 40, r2=0.95))
    poisoned = client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"instance": "i\x00", "samples": samples("lstm", 60, r2=0.1, start=40)},
        headers=auth(token),
    )
    assert poisoned.status_code == 422
    clean = send(client, token, samples("lstm", 60, r2=0.1, start=40))
    assert [a["kind"] for a in clean.json()["actions"]] == ["switch_model"]


# -- 3: other 500s ---------------------------------------------------------------------------
def test_huge_ids_in_paths_are_422_naming_the_parameter(client: TestClient) -> None:
    token = register(client)
    result = client.post(
        "/api/v1/apps/traffic/actions/18446744073709551617/result",
        json={"status": "applied"},
        headers=auth(token),
    )
    assert result.status_code == 422 and result.json()["detail"][0]["field"] == "path.action_id"
    version = client.put(
        "/api/v1/apps/traffic/models/linear/versions/9223372036854775808",
        json={},
        headers=auth(token),
    )
    assert version.status_code == 422 and version.json()["detail"][0]["field"] == "path.version"
    nul = client.get("/api/v1/apps/tr%00affic")
    assert nul.status_code == 404


def test_deep_nesting_is_refused_with_a_4xx(client: TestClient) -> None:
    token = register(client)
    deep_json = b'{"samples":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    telemetry = client.post(
        "/api/v1/apps/traffic/telemetry",
        content=deep_json,
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert 400 <= telemetry.status_code < 500 and "detail" in telemetry.json()
    deep_yaml = "a: " + "[" * 50_000 + "]" * 50_000
    policy = client.put("/api/v1/apps/traffic/policy", content=deep_yaml, headers=auth(token))
    assert policy.status_code == 422 and "detail" in policy.json()
    laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n"
    refused = client.put("/api/v1/apps/traffic/policy", content=laughs, headers=auth(token))
    assert refused.status_code == 422 and "aliases" in refused.text


# -- 4: unauthenticated parsing is bounded -----------------------------------------------------
def test_a_huge_yaml_to_validate_is_refused_on_its_size_or_node_count(client: TestClient) -> None:
    million = "a:\n" + "".join(f"- {i}\n" for i in range(1_000_000))
    big = client.post("/api/v1/policy/validate", content=million)
    assert big.status_code == 413
    many = "a: [" + ",".join("1" for _ in range(100_000)) + "]"  # 200 kB, 100k values
    count = client.post("/api/v1/policy/validate", content=many)
    assert count.status_code == 200 and not count.json()["valid"]
    assert "more than" in count.json()["issues"][0]["reason"]


# -- 5: the body limit counts streamed bytes -----------------------------------------------------
def test_a_chunked_body_over_the_limit_is_cut_off_with_413(store: Store, tmp_path: Path) -> None:
    with BackgroundServer(store, ADMIN, data_dir=tmp_path) as url:
        token = httpx.post(
            f"{url}/api/v1/apps",
            json={"name": "traffic", "owner": "t", "models": MODELS},
            headers=auth(ADMIN),
        ).json()["token"]
        sent = 0

        def chunks() -> Iterator[bytes]:
            nonlocal sent
            piece = b" " * 65536
            while sent < 100 * 1024 * 1024:
                sent += len(piece)
                yield piece

        try:
            reply = httpx.post(
                f"{url}/api/v1/apps/traffic/telemetry",
                content=chunks(),
                headers=auth(token),
                timeout=30,
            )
            status = reply.status_code
        except httpx.HTTPError:  # the server answered and closed while we still sent
            status = 413
        assert status == 413
        assert sent < 2 * MAX_BODY_BYTES  # it stopped reading near the limit
        assert httpx.get(f"{url}/healthz").status_code == 200


# -- 8: future timestamps ----------------------------------------------------------------------
def test_samples_from_the_future_are_refused(store: Store) -> None:
    now = 1_000_000.0
    with TestClient(create_app(store, ADMIN, clock=lambda: now)) as client:
        token = with_policy(client)
        late = samples("lstm", 3, r2=0.9, start=int(now) + 3600)
        reply = send(client, token, late)
        assert reply.status_code == 422
        assert reply.json()["detail"][0]["field"] == "samples[0].ts"
        assert "ahead" in reply.json()["detail"][0]["reason"]
        ok = samples("lstm", 3, r2=0.9, start=int(now) + 60)  # within the tolerance
        assert send(client, token, ok).status_code == 200
    strict = Guards(max_clock_skew_s=10)
    with TestClient(create_app(store, ADMIN, clock=lambda: now, guards=strict)) as client:
        assert (
            send(client, token, samples("lstm", 1, r2=0.9, start=int(now) + 60)).status_code == 422
        )


# -- 9: the event stream ---------------------------------------------------------------------
def _events(url: str, app: str, token: str | None, seen: list[str], ready: threading.Event) -> None:
    headers = {} if token is None else auth(token)
    with httpx.stream("GET", f"{url}/api/v1/apps/{app}/stream", headers=headers, timeout=10) as r:
        for line in r.iter_lines():
            ready.set()
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
            if "window" in seen and len(seen) > 3:
                return


def test_raw_telemetry_on_the_stream_needs_a_token_and_subscribers_are_capped(
    store: Store, tmp_path: Path
) -> None:
    guards = Guards(max_subscribers_per_app=3, max_subscribers=10)
    with TestClient(create_app(store, ADMIN, guards=guards)) as client:
        token = with_policy(client)
    with BackgroundServer(store, ADMIN, data_dir=tmp_path) as url:
        anonymous: list[str] = []
        with_token: list[str] = []
        listeners = []
        for seen, credential in ((anonymous, None), (with_token, token)):
            ready = threading.Event()
            thread = threading.Thread(
                target=_events, args=(url, "traffic", credential, seen, ready)
            )
            thread.start()
            assert ready.wait(5)
            listeners.append(thread)
        for start in range(0, 200, 50):
            httpx.post(
                f"{url}/api/v1/apps/traffic/telemetry",
                json={"samples": samples("lstm", 50, r2=0.9, start=start)},
                headers=auth(token),
            )
        for thread in listeners:
            thread.join(10)
        wrong = httpx.get(f"{url}/api/v1/apps/traffic/stream", headers=auth("nope"), timeout=5)
        assert wrong.status_code == 403
    assert "window" in anonymous and "telemetry" not in anonymous
    assert "window" in with_token and "telemetry" in with_token


def test_subscribers_beyond_the_cap_get_503(store: Store) -> None:
    guards = Guards(max_subscribers_per_app=2, max_subscribers=10)
    app = create_app(store, ADMIN, guards=guards)
    with TestClient(app) as client:
        register(client)
        server = app.state.server

        async def subscribe_three() -> list[str]:
            outcomes = []
            for _ in range(3):
                try:
                    server.events.subscribe("traffic")
                    outcomes.append("ok")
                except Exception as error:
                    outcomes.append(type(error).__name__)
            return outcomes

        outcomes = client.portal.call(subscribe_three)  # type: ignore[union-attr]
        assert outcomes == ["ok", "ok", "TooManySubscribers"]
        refused = client.get("/api/v1/apps/traffic/stream")
        assert refused.status_code == 503 and "subscribers" in refused.json()["detail"]


# -- 10: runs talk to the server's own address with their app's token ------------------------
def _run_processes() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\x00")
            except OSError:
                continue
            if b"harmonia.cli" in cmdline and b"run" in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_run_never_follows_a_forged_host_nor_gets_the_admin_token(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    before = set(_run_processes())
    with BackgroundServer(store, ADMIN, data_dir=tmp_path) as url:
        httpx.post(
            f"{url}/api/v1/apps",
            json={"name": "traffic-live", "owner": "t", "models": MODELS},
            headers=auth(ADMIN),
        )
        started = httpx.post(
            f"{url}/api/v1/runs",
            json={"system": "traffic", "rate": 1},
            headers={**auth(ADMIN), "Host": "evil.example:8000"},
            timeout=30,
        )
        assert started.status_code == 201, started.text
        try:
            [pid] = set(_run_processes()) - before
            argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")]
            env = dict(
                item.decode().split("=", 1)
                for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\x00")
                if b"=" in item
            )
        finally:
            httpx.delete(f"{url}/api/v1/runs/{started.json()['id']}", headers=auth(ADMIN))
    store.close()
    assert argv[argv.index("--server") + 1] == url
    assert env["HARMONIA_APP_TOKEN"] != ADMIN and env["HARMONIA_APP_TOKEN"]


# -- 11: pending pushes after a restart ----------------------------------------------------------
def test_pending_pushes_resume_at_start_and_stale_ones_fail(store: Store) -> None:
    effector = Effector({"status": "applied", "reason": "switched"})
    try:
        structure = Application.single("traffic", MODELS, owner="team", effector_url=effector.url)
        app, _ = store.create_app(structure)
        now = time.time()
        fresh, stale = store.add_actions(
            app,
            [
                _action("switch_model", "svm", now - 5),
                _action("switch_model", "linear", now - 3600),
            ],
        )
        with TestClient(create_app(store, ADMIN)) as client:
            assert client.app.state.server.pusher.join(10)  # type: ignore[attr-defined]
        assert store.action(app, fresh.id).status == "applied"
        failed = store.action(app, stale.id)
        assert failed.status == "failed" and "too old" in failed.detail
        assert [m["model"] for m in effector.received] == ["svm"]
    finally:
        effector.close()


def _action(kind: str, model: str, ts: float) -> dict[str, Any]:
    return {
        "service": "default",
        "instance": None,
        "kind": kind,
        "model": model,
        "version": None,
        "ts": ts,
        "strategy": "switch",
        "reason": "test",
        "trigger": "quality < 0.8",
        "values": {},
        "context": {},
    }


# -- 12: a retried batch is stored once ----------------------------------------------------------
def test_a_replayed_idempotency_key_is_answered_without_storing_again(
    client: TestClient, store: Store
) -> None:
    token = with_policy(client)
    send(client, token, samples("lstm", 40, r2=0.95))
    batch = samples("lstm", 60, r2=0.1, start=40)
    first = send(client, token, batch, **{"Idempotency-Key": "batch-7"})
    again = send(client, token, batch, **{"Idempotency-Key": "batch-7"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()["actions"]
    assert store.count_telemetry(store.app("traffic")) == 100
    other = send(client, token, batch, **{"Idempotency-Key": "batch-8"})
    assert other.status_code == 200 and store.count_telemetry(store.app("traffic")) == 160
    bad = send(client, token, batch, **{"Idempotency-Key": "no spaces"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "Idempotency-Key"


# -- 13: registration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"effector_url": "http://"}, "effector_url"),
        ({"effector_url": "ftp://host/x"}, "effector_url"),
        ({"effector_url": "http://169.254.169.254/latest"}, "effector_url"),
        ({"models": [""]}, "models[0]"),
        ({"models": ["ls\x00tm"]}, "models[0]"),
        ({"owner": "te\x00am"}, "owner"),
        ({"services": [{"name": "s", "instances": ["i\x00"]}]}, "services[0].instances[0]"),
    ],
)
def test_registration_refuses_junk_naming_the_field(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    body = {"name": "traffic", "owner": "team", "models": MODELS, **extra}
    reply = client.post("/api/v1/apps", json=body, headers=auth(ADMIN))
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["field"] == field


def test_a_key_reused_for_another_batch_is_refused(client: TestClient, store: Store) -> None:
    token = with_policy(client)
    first = send(client, token, samples("lstm", 5, r2=0.9), **{"Idempotency-Key": "k1"})
    assert first.status_code == 200
    other = send(client, token, samples("lstm", 3, r2=0.9, start=5), **{"Idempotency-Key": "k1"})
    assert other.status_code == 422
    assert other.json()["detail"][0]["field"] == "Idempotency-Key"
    assert store.count_telemetry(store.app("traffic")) == 5


@pytest.mark.parametrize(
    "sample",
    [{"ts": "1767225600"}, {"energy_j": True}, {"latency_ms": "2"}, {"model_version": True}],
)
def test_numbers_are_numbers(client: TestClient, sample: dict[str, Any]) -> None:
    """The schema says number: a string or a boolean is refused, not converted."""
    token = with_policy(client)
    row = {**samples("lstm", 1, r2=0.9)[0], **sample}
    reply = send(client, token, [row])
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["field"] == f"samples[0].{next(iter(sample))}"


# -- big batches are validated in a worker process (no long hold of the GIL) ----------------------
def test_a_big_batch_is_validated_aside_with_the_same_answers(
    client: TestClient, store: Store
) -> None:
    token = with_policy(client)
    rows = samples("lstm", 5000, r2=0.9, metrics={"confidence": 0.5})
    assert len(json.dumps({"samples": rows})) > BIG_BODY_BYTES
    assert send(client, token, rows).json()["accepted"] == 5000
    rows[4321]["energy_j"] = -1.0
    bad = send(client, token, rows)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "samples[4321].energy_j"
    assert store.count_telemetry(store.app("traffic")) == 5000
