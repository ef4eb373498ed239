"""Downsampling closed windows for long chart ranges: the rule for each signal, the buckets'
span, sample counts and dominant model, and the grid that assigns windows to buckets."""

from __future__ import annotations

from typing import Any

import pytest

from harmonia.store.downsample import (
    Bucket,
    Grid,
    buckets_per_service,
    downsample,
    how_to_aggregate,
)


def window(
    end: float,
    count: int,
    signals: dict[str, float | None],
    *,
    model: str = "svm",
    version: int | None = 1,
    service: str = "default",
) -> dict[str, Any]:
    return {
        "service": service,
        "start": end - 9,
        "end": end,
        "model": model,
        "version": version,
        "count": count,
        "signals": signals,
    }


@pytest.mark.parametrize(
    ("key", "how"),
    [
        ("quality", "mean"),
        ("accuracy", "mean"),
        ("energy_j", "mean"),
        ("score", "mean"),
        ("mean(latency_ms)", "mean"),
        ("p50(latency_ms)", "mean"),
        ("p75(error)", "mean"),
        ("p90(latency_ms)", "max"),
        ("p95(latency_ms)", "max"),
        ("p99(latency_ms)", "max"),
        ("percentile(latency_ms)", "max"),
        ("max(error)", "max"),
        ("min(confidence)", "min"),
        ("drift.ks", "max"),
        ("count", "sum"),
        ("count()", "sum"),
        ("sum(energy_j)", "sum"),
        ("total_energy_j", "sum"),
        ("rate(errors)", "mean"),
    ],
)
def test_each_signal_is_aggregated_by_its_kind(key: str, how: str) -> None:
    assert how_to_aggregate(key) == how


def test_a_bucket_weights_means_by_samples_and_keeps_the_worst_tail() -> None:
    bucket = Bucket("default")
    bucket.add(window(10, 10, {"quality": 0.9, "p95(latency_ms)": 20.0, "count": 10.0}))
    bucket.add(window(20, 30, {"quality": 0.5, "p95(latency_ms)": 80.0, "count": 30.0}))
    bucket.add(window(30, 60, {"quality": 0.8, "p95(latency_ms)": 40.0, "count": 60.0}))
    signals = bucket.signals()
    # (0.9*10 + 0.5*30 + 0.8*60) / 100: the mean over the bucket's samples
    assert signals["quality"] == pytest.approx(0.72)
    assert signals["p95(latency_ms)"] == 80.0  # the spike stays visible
    assert signals["count"] == 100.0
    out = bucket.as_dict()
    assert (out["start"], out["end"], out["count"], out["windows"]) == (1, 30, 100, 3)
    assert out["downsampled"] is True


def test_missing_values_are_left_out_and_a_signal_never_valued_reads_null() -> None:
    bucket = Bucket("default")
    bucket.add(window(10, 10, {"accuracy": None, "drift.ks": None, "energy_j": 1.0}))
    bucket.add(window(20, 30, {"accuracy": 0.6, "drift.ks": float("nan"), "energy_j": None}))
    signals = bucket.signals()
    assert signals["accuracy"] == 0.6  # not dragged down by the window without labels
    assert signals["energy_j"] == 1.0
    assert signals["drift.ks"] is None


def test_the_model_of_a_bucket_is_the_one_that_served_most_samples() -> None:
    bucket = Bucket("default")
    bucket.add(window(10, 40, {}, model="lstm", version=1))
    bucket.add(window(20, 30, {}, model="svm", version=1))
    bucket.add(window(30, 30, {}, model="svm", version=2))
    bucket.add(window(40, 20, {}, model="svm", version=2))
    out = bucket.as_dict()
    # svm served 80 samples (v2: 50 of them), lstm 40
    assert (out["model"], out["version"], out["model_count"]) == ("svm", 2, 80)


def test_the_grid_cuts_the_range_into_equal_spans_and_clamps_its_ends() -> None:
    grid = Grid(0.0, 100.0, 4)
    assert [grid.index(e) for e in (0, 24.9, 25, 99.9, 100, 150, -5)] == [0, 0, 1, 3, 3, 3, 0]
    assert Grid(5.0, 5.0, 10).index(5.0) == 0  # one window: one bucket


def test_downsample_makes_at_most_the_buckets_asked_per_service_in_time_order() -> None:
    rows = [window(float(t), 10, {"quality": t / 1000}) for t in range(0, 1000, 10)]
    rows += [window(float(t), 5, {"quality": 1.0}, service="vote") for t in range(0, 1000, 20)]
    grids = {"default": Grid(0, 990, 10), "vote": Grid(0, 980, 10)}
    out = downsample(reversed(rows), grids)  # any order: buckets are keyed, not appended
    assert len(out) == 20
    assert [p["end"] for p in out] == sorted(p["end"] for p in out)
    first = next(p for p in out if p["service"] == "default")
    assert first["windows"] == 10 and first["count"] == 100
    assert sum(p["windows"] for p in out if p["service"] == "vote") == 50
    assert downsample(rows, {}) == []  # a service without a grid is not answered


def test_buckets_are_shared_between_services_within_the_points_asked() -> None:
    assert buckets_per_service(1500, 1) == 1500
    assert buckets_per_service(1500, 4) == 375
    assert buckets_per_service(3, 5) == 1
