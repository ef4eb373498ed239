"""Stream generators: deterministic per seed, every drift kind, onset and recurrence."""

from __future__ import annotations

import numpy as np
import pytest

from harmonia.replay.generators import (
    DAY,
    KINDS,
    GeneratedDrift,
    generate,
    replay_stream,
    traffic_drift,
)
from harmonia.systems.vision.scenario import Drift, Scenario, parse_scenario

SEEDS = range(40)


@pytest.mark.parametrize("system", ["traffic", "vision"])
def test_the_same_seed_gives_the_same_stream(system: str) -> None:
    a, b = generate(system, 11, 600), generate(system, 11, 600)
    assert a.drifts == b.drifts and a.describe() == b.describe()
    if system == "traffic":
        assert np.array_equal(a.data, b.data)
    else:
        assert np.array_equal(a.data.stream()[0], b.data.stream()[0])
    assert generate(system, 12).describe() != generate(system, 11).describe()


@pytest.mark.parametrize("system", ["traffic", "vision"])
def test_every_kind_onset_recurrence_and_clean_streams_over_seeds(system: str) -> None:
    streams = [generate(system, seed) for seed in SEEDS]
    drifts = [d for s in streams for d in s.drifts]
    assert {d.kind for d in drifts} == set(KINDS[system])
    assert {d.onset for d in drifts} == {"sudden", "gradual"}
    assert any(d.recurrence >= 0 for d in drifts)
    assert any(not s.drifts for s in streams)  # some streams never drift
    for stream in streams:
        assert stream.samples > 0
        previous_end = 0
        for drift in stream.drifts:  # ordered, apart, inside the stream, clean lead-in
            assert previous_end < drift.start < drift.end <= stream.samples
            assert 0 <= drift.ramp < drift.end - drift.start
            if drift.recurrence >= 0:
                earlier = stream.drifts[drift.recurrence]
                assert (earlier.kind, earlier.strength) == (drift.kind, drift.strength)
            previous_end = drift.end
    lengths = {d.end - d.start for d in drifts}
    strengths = {(d.kind, d.strength) for d in drifts}
    assert len(lengths) > 10 and len(strengths) > 10


def test_traffic_drifts_change_only_their_stretch() -> None:
    from harmonia.systems.traffic.data import LOOKBACK, TEST_NO_DRIFT, load_flow, shipped

    base = load_flow(shipped(TEST_NO_DRIFT))
    stream = next(s for s in (generate("traffic", k) for k in SEEDS) if len(s.drifts) > 1)
    windows = np.lib.stride_tricks.sliding_window_view(base, 50)
    offset = int(np.flatnonzero((windows == stream.data[:50]).all(axis=1))[0])
    clean = base[offset : offset + len(stream.data)]
    changed = np.zeros(len(clean), dtype=bool)
    for drift in stream.drifts:
        changed[drift.start + LOOKBACK : drift.end + LOOKBACK] = True
    assert np.array_equal(stream.data[~changed], clean[~changed])
    assert not np.allclose(stream.data[changed], clean[changed])
    replayed = replay_stream(stream)
    assert len(replayed) == stream.samples
    assert replayed.regions == stream.regions and replayed.conditions == stream.kinds


def test_traffic_drift_kinds_do_what_they_say() -> None:
    base = np.tile(np.arange(DAY, dtype=float), 4)
    rng = np.random.default_rng(0)
    sigma = float(base.std())

    def drifted(kind: str, strength: float, ramp: int = 0) -> np.ndarray:
        return traffic_drift(
            base, 2 * DAY, 3 * DAY, GeneratedDrift(kind, 0, DAY, strength, ramp), rng
        )

    clean = base[2 * DAY : 3 * DAY]
    assert np.allclose(drifted("level", 1.0), clean + sigma)
    assert np.allclose(drifted("scale", 1.5), clean * 1.5)
    assert np.allclose(drifted("phase", 0.25), base[2 * DAY - DAY // 4 : 3 * DAY - DAY // 4])
    assert np.std(drifted("noise", 0.5) - clean) == pytest.approx(0.5 * sigma, rel=0.2)
    assert not np.allclose(drifted("pattern", 1.0), clean)
    gradual = drifted("level", 1.0, ramp=100)
    assert gradual[0] == pytest.approx(clean[0] + sigma / 100)  # blends in
    assert np.allclose(gradual[100:], clean[100:] + sigma)


def test_a_vision_ramp_blends_the_condition_in() -> None:
    sudden = Scenario(40, (Drift("dark", 10, 40, 0.8),), seed=1)
    gradual = Scenario(40, (Drift("dark", 10, 40, 0.8, ramp=20),), seed=1)
    (a, _), (b, _) = sudden.stream(), gradual.stream()
    assert np.array_equal(a[:10], b[:10]) and np.allclose(a[30:], b[30:])
    assert b[10].mean() > a[10].mean()  # the first drifted image is barely darkened
    parsed = parse_scenario(
        {
            "samples": 40,
            "drifts": [{"condition": "fog", "start": 0, "end": 9, "strength": 0.5, "ramp": 4}],
        }
    )
    assert parsed.drifts[0].ramp == 4 and parsed.shortened(5).drifts[0].ramp == 4
