"""The server's guards as pure logic: bounded documents, the URLs it may call, the window
bound, and the event stream dropping a reader that falls behind."""

from __future__ import annotations

import asyncio

import pytest

from harmonia.bounded import DocumentTooComplex, load_json, load_yaml
from harmonia.core.knowledge import Knowledge
from harmonia.core.policy import MAX_WINDOW_SAMPLES, Window
from harmonia.core.telemetry import TelemetrySample
from harmonia.server.observe import Broadcaster
from harmonia.server.targets import TargetRefused, check_target, forbidden_address


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: &x [1]\nb: *x", "aliases"),
        ("a: " + "[" * 70 + "]" * 70, "deeper"),
        ("[" + ",".join(["1"] * 30_000) + "]", "more than"),
        ("x" * 2_000_001, "larger"),
    ],
)
def test_yaml_beyond_a_bound_is_refused_naming_it(text: str, reason: str) -> None:
    with pytest.raises(DocumentTooComplex, match=reason):
        load_yaml(text)


def test_json_within_bounds_loads_and_beyond_is_refused() -> None:
    assert load_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    with pytest.raises(DocumentTooComplex, match="deeper"):
        load_json(b"[" * 100 + b"]" * 100)
    with pytest.raises(ValueError):
        load_json(b"[" * 5000 + b"]" * 5000)  # orjson's own limit: not JSON to us


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1%25eth0]/x",
        "http://[::ffff:169.254.169.254]/x",
        "http://metadata.google.internal/",
        "http://0.0.0.0:80/",
        "gopher://host/",
        "http:///path",
        "http://host:99999/",
    ],
)
def test_urls_the_server_will_not_call(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(url)


def test_ordinary_and_allowed_urls_pass() -> None:
    assert check_target("http://127.0.0.1:8080/effector")
    assert check_target("https://effector.example/x")
    assert check_target("http://169.254.169.254/x", allow_link_local=True)
    assert forbidden_address("10.0.0.5") is None


def test_a_time_window_closes_once_it_holds_the_most_samples() -> None:
    knowledge = Knowledge(["m"], "m")
    window = Window(seconds=3600)
    sample = TelemetrySample(app="a", model="m", ts=0.0)
    for _ in range(MAX_WINDOW_SAMPLES - 1):
        knowledge.observe(sample)
    assert not knowledge.window_due(window, now=1.0)
    knowledge.observe(sample)
    assert knowledge.window_due(window, now=1.0)


def test_a_reader_that_falls_behind_is_dropped_not_waited_for() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        events = Broadcaster(limit=5)
        slow = events.subscribe("app")
        for i in range(10):  # nobody reads
            events.publish("app", "window", {"i": i})
        got = [chunk async for chunk in events.stream(slow)]
        return got, events.count()

    got, left = asyncio.run(scenario())
    assert got[0] == b": connected\n\n"
    assert 1 < len(got) <= 5  # what was queued before it fell behind, then the end
    assert left == 0
