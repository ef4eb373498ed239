"""The Live page's chart data for a long range: 30 days of closed windows of one service (a
window a minute: 43,200 of them), fetched raw (every window, paging 1,000 per request as
the API allows) against downsampled (one request, ``points=1500``), on SQLite.

Measured in one process, through the ASGI app (`TestClient`: routing, validation of the
reply, JSON; no socket) and straight from the store; each figure the median of ``--runs``
runs after one warm-up. Also the reply's bytes and the peak memory Python allocated while
the store answered (`tracemalloc`): downsampling streams the windows and keeps the buckets
only, so its peak should not grow with the range. Prints the figures and writes
``build/bench/windows.json``.

    .venv/bin/python bench/bench_windows.py [--days 30] [--every 60] [--points 1500] \\
        [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from harmonia.core.application import Application
from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url
from harmonia.store.apps import App
from harmonia.store.windows import _INSERT_WINDOW

ADMIN = "bench-admin"
APP = "charted"
PAGE = 1000


def fill(store: Store, app: App, days: float, every: float, end: float) -> int:
    """Windows of ``every`` seconds over ``days`` ending at ``end``, with the signals a
    HarmonE window carries (quality, energy, latency percentiles, a drift statistic)."""
    rng = random.Random(7)
    count = int(days * 86400 / every)
    start = end - count * every
    batch: list[dict[str, Any]] = []
    for i in range(count):
        t = start + i * every
        batch.append(
            {
                "app_id": app.id,
                "service": "default",
                "start": t,
                "end": t + every - 1,
                "model": rng.choice(["linear", "svm", "lstm"]),
                "version": 1,
                "count": 200,
                "signals": {
                    "count": 200.0,
                    "quality": rng.uniform(0.6, 0.95),
                    "r2": rng.uniform(0.6, 0.95),
                    "mae": rng.uniform(1, 5),
                    "energy_j": rng.uniform(0.001, 0.01),
                    "energy_norm": rng.uniform(0, 1),
                    "score": rng.uniform(0, 1),
                    "mean(latency_ms)": rng.uniform(5, 20),
                    "p50(latency_ms)": rng.uniform(5, 20),
                    "p95(latency_ms)": rng.uniform(20, 60),
                    "p99(latency_ms)": rng.uniform(40, 120),
                    "drift.ks": rng.uniform(0, 0.3),
                },
            }
        )
        if len(batch) == 5000:
            with store.engine.begin() as tx:
                tx.execute(_INSERT_WINDOW, batch)
            batch = []
    if batch:
        with store.engine.begin() as tx:
            tx.execute(_INSERT_WINDOW, batch)
    return count


def raw_api(client: TestClient, start: float, end: float) -> tuple[int, int]:
    """Every window of [start, end), 1,000 per request from the latest back (what the
    dashboard did, without its cap of five pages): (windows, bytes)."""
    windows = size = 0
    upper = end
    while True:
        reply = client.get(
            f"/api/v1/apps/{APP}/windows",
            params={"start": start, "end": upper, "limit": PAGE, "service": "default"},
        )
        page = reply.json()
        windows += len(page)
        size += len(reply.content)
        if len(page) < PAGE:
            return windows, size
        upper = page[0]["end"]


def downsampled_api(client: TestClient, start: float, end: float, points: int) -> tuple[int, int]:
    reply = client.get(
        f"/api/v1/apps/{APP}/windows",
        params={"start": start, "end": end, "service": "default", "points": points},
    )
    return len(reply.json()), len(reply.content)


def raw_store(store: Store, app: App, start: float, end: float) -> int:
    windows, upper = 0, end
    while True:
        page = store.windows(app, start, upper, PAGE, service="default")
        windows += len(page)
        if len(page) < PAGE:
            return windows
        upper = page[0]["end"]


def timed(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The median seconds of ``runs`` calls after a warm-up, and the last call's result."""
    result = call()
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), result


def peak_bytes(call: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--every", type=float, default=60, help="seconds per window")
    parser.add_argument("--points", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (the median)")
    parser.add_argument("--out", type=Path, default=Path("build/bench/windows.json"))
    args = parser.parse_args()

    end = float(int(time.time()))
    start = end - args.days * 86400
    with tempfile.TemporaryDirectory(prefix="harmonia-bench-windows-") as folder:
        store = Store(sqlite_url(Path(folder)))
        try:
            app, _ = store.create_app(Application.single(APP, ["linear", "svm", "lstm"]))
            began = time.perf_counter()
            count = fill(store, app, args.days, args.every, end)
            print(f"{count:,} windows written in {time.perf_counter() - began:.1f} s", flush=True)
            with TestClient(create_app(store, ADMIN, contract_check_s=0)) as client:
                raw_s, (raw_n, raw_bytes) = timed(lambda: raw_api(client, start, end), args.runs)
                down_s, (down_n, down_bytes) = timed(
                    lambda: downsampled_api(client, start, end, args.points), args.runs
                )
            store_raw_s, _ = timed(lambda: raw_store(store, app, start, end), args.runs)
            # the same windows in one call (no page limit): the query without the paging
            store_once_s, _ = timed(
                lambda: store.windows(app, start, end, count + 1, service="default"), args.runs
            )
            store_down_s, _ = timed(
                lambda: store.downsampled_windows(app, start, end, args.points, service="default"),
                args.runs,
            )
            raw_peak = peak_bytes(lambda: raw_store(store, app, start, end))
            down_peak = peak_bytes(
                lambda: store.downsampled_windows(app, start, end, args.points, service="default")
            )
            # a 4x longer range than shown, same points: the peak should stay put
            half = start + (end - start) * 0.75
            down_peak_quarter = peak_bytes(
                lambda: store.downsampled_windows(app, half, end, args.points, service="default")
            )
        finally:
            store.close()

    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "backend": "sqlite",
        "days": args.days,
        "window_s": args.every,
        "windows_in_range": count,
        "points": args.points,
        "runs": args.runs,
        "api": {
            "raw": {
                "median_s": raw_s,
                "requests": -(-raw_n // PAGE),
                "windows": raw_n,
                "bytes": raw_bytes,
            },
            "downsampled": {
                "median_s": down_s,
                "requests": 1,
                "points": down_n,
                "bytes": down_bytes,
            },
            "speedup": raw_s / down_s,
        },
        "store": {
            "raw_median_s": store_raw_s,
            "raw_one_call_median_s": store_once_s,
            "downsampled_median_s": store_down_s,
            "raw_peak_bytes": raw_peak,
            "downsampled_peak_bytes": down_peak,
            "downsampled_peak_bytes_quarter_range": down_peak_quarter,
        },
    }
    print(json.dumps(result, indent=2))
    print(
        f"API   raw {raw_s * 1000:8.0f} ms  {raw_n:,} windows in {result['api']['raw']['requests']}"
        f" requests, {raw_bytes / 1e6:.1f} MB\n"
        f"API   downsampled {down_s * 1000:8.0f} ms  {down_n:,} points in 1 request, "
        f"{down_bytes / 1e6:.2f} MB  ({raw_s / down_s:.1f}x faster)\n"
        f"store raw {store_raw_s * 1000:.0f} ms paged, {store_once_s * 1000:.0f} ms in one call "
        f"(peak {raw_peak / 1e6:.1f} MB a page), downsampled "
        f"{store_down_s * 1000:.0f} ms (peak {down_peak / 1e6:.2f} MB; a quarter of the range "
        f"{down_peak_quarter / 1e6:.2f} MB)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
