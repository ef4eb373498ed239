"""``GET /apps/{app}/windows?points=N`` on SQLite and PostgreSQL: a range of more windows
than N comes back as at most N points per app, each aggregating the windows of a span of
time; a range of no more comes back as its windows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import BACKENDS, database
from fastapi.testclient import TestClient
from test_server_api import ADMIN, auth

from harmonia.core.application import Application
from harmonia.server.app import create_app
from harmonia.store import Store
from harmonia.store.windows import _INSERT_WINDOW

URL = "/api/v1/apps/charted/windows"
#: a day of windows of a minute each
DAY = 1440


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with database(request.param, tmp_path) as url:
        store = Store(url)
        with TestClient(create_app(store, ADMIN)) as test_client:
            structure = Application.single(
                "charted", ["linear", "svm"], services=[{"name": "default"}, {"name": "vote"}]
            )
            app, _ = store.create_app(structure)
            rows: list[dict[str, Any]] = []
            for i in range(DAY):
                # the quality dips at minute 600 for 10 minutes; latency spikes once
                rows.append(
                    {
                        "app_id": app.id,
                        "service": "default",
                        "start": i * 60.0,
                        "end": i * 60.0 + 59,
                        "model": "svm" if i % 4 else "linear",
                        "version": 1,
                        "count": 10,
                        "signals": {
                            "count": 10.0,
                            "quality": 0.5 if 600 <= i < 610 else 0.9,
                            "p95(latency_ms)": 900.0 if i == 605 else 50.0,
                            "drift.ks": None,
                        },
                    }
                )
            for i in range(0, DAY, 10):  # a second service, a window every 10 minutes
                rows.append({**rows[i], "service": "vote", "count": 5})
            with store.engine.begin() as tx:
                tx.execute(_INSERT_WINDOW, rows)
            yield test_client
        store.close()


def test_a_long_range_comes_back_as_at_most_the_points_asked(client: TestClient) -> None:
    reply = client.get(URL, params={"service": "default", "points": 144})
    assert reply.status_code == 200, reply.text
    points = reply.json()
    assert len(points) == 144
    assert all(p["downsampled"] and p["service"] == "default" for p in points)
    assert sum(p["windows"] for p in points) == DAY  # every window in exactly one point
    assert sum(p["count"] for p in points) == DAY * 10
    assert [p["end"] for p in points] == sorted(p["end"] for p in points)
    assert points[0]["start"] == 0 and points[-1]["end"] == (DAY - 1) * 60 + 59
    # the dip (10 windows from minute 600) is averaged into its point, the spike kept
    dipped = next(p for p in points if p["start"] <= 600 * 60 < p["end"])
    assert 0.5 <= dipped["signals"]["quality"] < 0.9
    assert max(p["signals"]["p95(latency_ms)"] for p in points) == 900.0
    assert dipped["signals"]["drift.ks"] is None
    # svm serves three windows of four: 7 or 8 of a point's 10
    assert dipped["model"] == "svm" and dipped["model_count"] in (70, 80)
    assert sum(p["signals"]["count"] for p in points) == DAY * 10


def test_points_are_shared_between_services_and_follow_the_range(client: TestClient) -> None:
    points = client.get(URL, params={"points": 100}).json()
    assert len(points) <= 100
    assert {p["service"] for p in points} == {"default", "vote"}
    assert sum(p["windows"] for p in points if p["service"] == "vote") == DAY // 10
    # the last six hours: 360 windows of default, 36 of vote
    start = (DAY - 360) * 60.0
    ranged = client.get(URL, params={"points": 60, "start": start}).json()
    assert sum(p["windows"] for p in ranged) == 360 + 36
    assert min(p["end"] for p in ranged) >= start


def test_a_range_of_no_more_windows_than_points_comes_back_as_its_windows(
    client: TestClient,
) -> None:
    start = (DAY - 100) * 60.0
    windows = client.get(URL, params={"points": 1500, "start": start}).json()
    assert len(windows) == 100 + 10
    assert not any(w["downsampled"] for w in windows)
    assert all(w["windows"] == 1 and w["model_count"] is None for w in windows)
    # without points, as before: the latest ``limit``
    raw = client.get(URL, params={"limit": 5, "service": "default"}).json()
    assert [w["end"] for w in raw] == [(DAY - 5 + i) * 60.0 + 59 for i in range(5)]


@pytest.mark.parametrize("points", [0, 5001, -1])
def test_points_out_of_bounds_are_refused(client: TestClient, points: int) -> None:
    reply = client.get(URL, params={"points": points}, headers=auth(ADMIN))
    assert reply.status_code == 422
