"""The vision system's drift: transforms, scenario files, and naming the condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmonia.drift.sharpness import SharpnessDetector
from harmonia.systems.vision.conditions import ConditionMonitor
from harmonia.systems.vision.data import SIZE, load_split, mean_luminance, reference_images
from harmonia.systems.vision.scenario import (
    CONDITIONS,
    Scenario,
    ScenarioError,
    apply,
    load_scenario,
    parse_scenario,
)


def drift(**fields: object) -> dict[str, object]:
    return {"condition": "dark", "start": 0, "end": 10, "strength": 0.5, **fields}


def test_the_shipped_scenario_places_every_condition() -> None:
    scenario = load_scenario()
    assert {d.condition for d in scenario.drifts} == set(CONDITIONS)
    assert scenario.samples == 3000
    images, labels = scenario.shortened(400).stream()
    assert images.shape == (400, SIZE, SIZE) and labels.shape == (400,)
    assert images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"drifts": []}, "samples"),
        ({"samples": 0}, "samples"),
        ({"samples": 10, "drift": []}, "drift"),
        ({"samples": 10, "drifts": [drift(condition="rain")]}, "drifts[0].condition"),
        ({"samples": 10, "drifts": [drift(strength=1.0)]}, "drifts[0].strength"),
        ({"samples": 10, "drifts": [drift(strength="high")]}, "drifts[0].strength"),
        ({"samples": 10, "drifts": [drift(end=11)]}, "drifts[0].end"),
        ({"samples": 10, "drifts": [drift(start=5, end=5)]}, "drifts[0].end"),
        ({"samples": 10, "drifts": [drift(), drift(start=5)]}, "drifts[1].start"),
        (
            {"samples": 10, "drifts": [{"condition": "fog", "start": 0, "end": 2}]},
            "drifts[0].strength",
        ),
    ],
)
def test_a_bad_scenario_names_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(document, "my.yaml")
    assert str(error.value).startswith(f"my.yaml: {field}:")


def test_a_bad_scenario_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("samples: [1\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_transforms_do_what_their_names_say() -> None:
    images = load_split().train_images[:64]
    contrast = images.reshape(64, -1).std(axis=1).mean()
    dark, foggy = apply("dark", images, 0.8), apply("fog", images, 0.7)
    assert mean_luminance(dark).mean() < 0.3 * mean_luminance(images).mean()
    assert mean_luminance(foggy).mean() > mean_luminance(images).mean()
    assert foggy.reshape(64, -1).std(axis=1).mean() < 0.4 * contrast
    noisy = apply("noise", images, 0.3, np.random.default_rng(0))
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert not np.allclose(noisy, images)
    blurred = apply("blur", images, 1.5)
    assert blurred.reshape(64, -1).std(axis=1).mean() < contrast
    with pytest.raises(ValueError, match="unknown condition"):
        apply("rain", images, 0.5)


@pytest.fixture(scope="module")
def monitor() -> ConditionMonitor:
    return ConditionMonitor(reference_images())


@pytest.mark.parametrize("condition", CONDITIONS)
def test_each_drift_of_the_shipped_scenario_is_detected_and_named(
    monitor: ConditionMonitor, condition: str
) -> None:
    scenario = load_scenario()
    images, _ = scenario.stream()
    for stretch in (d for d in scenario.drifts if d.condition == condition):
        window = images[stretch.start : stretch.start + 50]
        diagnosis = monitor.diagnose(window)
        assert diagnosis.condition == condition, (stretch, diagnosis.detail)
        low, high = 0.5 * stretch.strength, 1.5 * stretch.strength
        assert low <= diagnosis.strength <= high


def test_clean_windows_are_not_drifted(monitor: ConditionMonitor) -> None:
    scenario = load_scenario()
    images, _ = scenario.stream()
    clean = [
        i
        for i in range(0, 3000, 50)
        if scenario.condition_at(i) == "clean" and scenario.condition_at(i + 49) == "clean"
    ]
    assert len(clean) > 10
    named = [monitor.diagnose(images[i : i + 50]).condition for i in clean]
    assert named.count("none") == len(named)


def test_dark_is_told_from_fog_by_luminance(monitor: ConditionMonitor) -> None:
    images = reference_images()[:200]
    dark = monitor.luminance.score(apply("dark", images, 0.7))
    fog = monitor.luminance.score(apply("fog", images, 0.6))
    assert dark.detail["condition"] == "dark" and fog.detail["condition"] == "fog"
    # and the sharpness detector, blind to light, sees neither
    assert not monitor.sharpness.score(apply("dark", images, 0.7)).drifted
    assert not monitor.sharpness.score(apply("fog", images, 0.6)).drifted


def test_sharpness_tells_noise_from_blur() -> None:
    images = reference_images()[:200]
    detector = SharpnessDetector().fit(images)
    noisy = apply("noise", images, 0.3, np.random.default_rng(1))
    assert detector.score(noisy).detail["condition"] == "noise"
    assert detector.score(apply("blur", images, 1.5)).detail["condition"] == "blur"
    assert detector.score(images).detail["condition"] == "none"


def test_shortened_scenario_keeps_only_what_fits() -> None:
    scenario = Scenario(1000, load_scenario().drifts[:2])
    short = scenario.shortened(700)
    assert short.samples == 700
    assert short.regions() == [(300, 600)]


def test_a_replayed_stream_reports_each_images_sharpness_beside_its_luminance() -> None:
    """Sensor noise barely moves the luminance but multiplies the sharpness: what the
    `harmonia` strategy tells noise from clean images by (the policy's drift.features)."""
    from harmonia.replay.systems import VISION

    scenario = load_scenario()
    stream = VISION.stream(scenario)
    sharp = stream.features["sharpness"]
    assert sharp.shape == stream.drift_values.shape == (scenario.samples,)
    noise = next(d for d in scenario.drifts if d.condition == "noise")
    clean = slice(0, scenario.drifts[0].start)
    drifted = slice(noise.start, noise.end)
    assert sharp[drifted].mean() > 5 * sharp[clean].mean()
    luminance = stream.drift_values
    assert abs(luminance[drifted].mean() - luminance[clean].mean()) < 0.1
