"""Observation agents: the built-in observers, the spec, and the runner's windows, firing,
bounds and containment of failures."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from harmonia.observation import (
    Observation,
    ObserverResult,
    ObserverRunner,
    ObserverSpec,
    Window,
    load_observers_yaml,
    parse_observers,
    sample_value,
)
from harmonia.observation.correlation import CorrelationObserver, ranks
from harmonia.observation.outliers import IsolationForestObserver, LOFObserver
from harmonia.observation.streaming import HalfSpaceTreesObserver
from harmonia.observation.summary import SummaryObserver
from harmonia.plugins import OBSERVERS, create_plugin
from harmonia.testing import latency_stream


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def samples(values: list[float], *, start: float = 0.0, step: float = 1.0) -> list[dict[str, Any]]:
    return [
        {"ts": start + i * step, "latency_ms": float(v), "stage": "s", "trace_id": str(i)}
        for i, v in enumerate(values)
    ]


def spec(**fields: Any) -> ObserverSpec:
    data: dict[str, Any] = {"name": "obs", "observer": "summary"}
    data.update(fields)
    return ObserverSpec.model_validate(data)


# -- samples and windows -----------------------------------------------------------------------
def test_a_metric_is_read_from_the_top_or_from_metrics() -> None:
    sample = {"latency_ms": 3, "metrics": {"queue": 2.5, "latency_ms": 99}, "prediction": "cat"}
    assert sample_value(sample, "latency_ms") == 3.0
    assert sample_value(sample, "queue") == 2.5
    assert sample_value(sample, "metrics.latency_ms") == 99.0
    assert np.isnan(sample_value(sample, "prediction"))  # a label, not a number
    assert np.isnan(sample_value(sample, "energy_j"))


def test_a_window_keeps_the_rows_with_every_metric() -> None:
    window = Window(
        [{"latency_ms": 1, "energy_j": 2}, {"latency_ms": 3}], ("latency_ms", "energy_j")
    )
    x, rows = window.matrix()
    assert x.tolist() == [[1.0, 2.0]] and rows.tolist() == [0]


# -- the built-in observers --------------------------------------------------------------------
def test_summary() -> None:
    result = SummaryObserver().observe(Window(samples(list(range(1, 101)))))
    assert result["count"] == 100 and result["mean"] == 50.5 and result["min"] == 1
    assert result["max"] == 100 and result["p50"] == 50.5
    assert result["p95"] == pytest.approx(95.05) and result["p99"] == pytest.approx(99.01)
    assert result["std"] == pytest.approx(np.std(np.arange(1, 101)))
    assert result.flagged == () and "mean=50.5" in result.explanation
    two = SummaryObserver().observe(
        Window([{"latency_ms": 1, "energy_j": 4}], ("latency_ms", "energy_j"))
    )
    assert two["latency_ms_mean"] == 1 and two["energy_j_max"] == 4
    assert SummaryObserver().observe(Window([])).values == {"count": 0.0}


def test_correlation_across_two_stages_joined_by_trace_id() -> None:
    rng = np.random.default_rng(1)
    pre = rng.normal(10, 2, 200)
    rows: list[dict[str, Any]] = []
    for i, value in enumerate(pre):
        rows.append({"stage": "pre", "trace_id": f"t{i}", "latency_ms": float(value)})
        rows.append({"stage": "model", "trace_id": f"t{i}", "latency_ms": float(3 * value + 1)})
    rows.append({"stage": "model", "trace_id": "lonely", "latency_ms": 1e6})  # no partner
    rng.shuffle(rows)  # type: ignore[arg-type]
    window = Window(rows)
    pearson = CorrelationObserver(left="pre", right="model").observe(window)
    assert pearson["score"] == pytest.approx(1.0) and pearson["pairs"] == 200
    spearman = CorrelationObserver(left="pre", right="model", method="spearman").observe(window)
    assert spearman["score"] == pytest.approx(1.0)
    flipped = [{**r, "latency_ms": -r["latency_ms"]} if r["stage"] == "model" else r for r in rows]
    result = CorrelationObserver(left="pre", right="model").observe(Window(flipped))
    assert result["score"] == pytest.approx(-1.0)


def test_correlation_of_two_metrics_and_its_edge_cases() -> None:
    rows = [{"latency_ms": float(i), "energy_j": float(i * i)} for i in range(1, 30)]
    window = Window(rows, ("latency_ms", "energy_j"))
    assert CorrelationObserver(method="spearman").observe(window)["score"] == pytest.approx(1.0)
    assert CorrelationObserver().observe(window)["score"] < 1.0
    assert "score" not in CorrelationObserver().observe(Window(rows[:2], window.metrics)).values
    with pytest.raises(ValueError, match="two metrics"):
        CorrelationObserver().observe(Window(rows))
    with pytest.raises(ValueError, match="method"):
        CorrelationObserver(method="kendall").observe(window)
    assert ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.parametrize("cls", [IsolationForestObserver, LOFObserver])
def test_window_outlier_observers_flag_a_far_point(cls: type[Any]) -> None:
    values = [*np.random.default_rng(0).normal(20, 1, 199).tolist(), 200.0]
    result = cls().observe(Window(samples(values)))
    assert 199 in result.flagged and 199.0 in result.flagged_ts
    assert result["anomalies"] == len(result.flagged) and result["fraction"] <= 0.05
    assert result["score"] >= result["mean_score"]
    few = cls().observe(Window(samples([1.0, 2.0])))
    assert few["anomalies"] == 0 and "fewer than" in few.explanation


def test_half_space_trees_keep_their_state_across_windows() -> None:
    noise = np.random.default_rng(3).normal(20, 1, 1050).tolist()
    observer = HalfSpaceTreesObserver()
    first = [observer.observe(Window(samples(noise[i : i + 100]))) for i in range(0, 1000, 100)]
    last = observer.observe(Window(samples([*noise[1000:], 400.0], start=1000)))
    assert first[0]["seen"] == 100 and last["seen"] == 1051 and observer.seen_ == 1051
    assert first[0]["anomalies"] == 0  # none while the trees learn
    assert 50 in last.flagged and last["anomalies"] <= 3
    assert sum(r["anomalies"] for r in first) <= 0.05 * 1000


def test_a_missing_scikit_learn_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from harmonia.observation import Window\n"
        "from harmonia.observation.outliers import IsolationForestObserver\n"
        "IsolationForestObserver().observe(Window([{'latency_ms': float(i)} for i in range(50)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'harmonia[systems]'" in done.stderr


def test_observers_are_created_by_name() -> None:
    assert isinstance(create_plugin(OBSERVERS, "lof", n_neighbors=5), LOFObserver)


# -- precision and recall on injected spikes ---------------------------------------------------
DETECTORS: dict[str, tuple[dict[str, Any], int]] = {
    # name: (params, samples per run)
    "isolation_forest": ({}, 500),
    "lof": ({}, 500),
    "half_space_trees": ({}, 100),
}


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_injected_latency_spikes_are_flagged(name: str) -> None:
    """2 % of a latency stream spiked ×4-8: each detector, run by the runner, finds them."""
    stream = latency_stream(4000, seed=7)
    model = [s for s in stream.samples if s["stage"] == "model"]
    truth = {i for i, s in enumerate(model) if stream.samples.index(s) in stream.anomalies}
    params, every = DETECTORS[name]
    runner = ObserverRunner(
        [
            ObserverSpec(
                name="spikes",
                observer=name,
                params=params,
                stage="model",
                window={"size": every},
                every={"samples": every},
            )
        ]
    )
    flagged: set[int] = set()
    offset = 0
    for start in range(0, len(model), 50):
        for run in runner.feed("app", model[start : start + 50]):
            assert run.result.ok, run.result.error
            base = offset if name == "half_space_trees" else start + 50 - run.size
            flagged |= {base + i for i in run.result.flagged}
            offset += run.size
    warm_up = 100 if name == "half_space_trees" else 0
    truth = {i for i in truth if i >= warm_up}
    hits = len(flagged & truth)
    precision = hits / len(flagged)
    recall = hits / len(truth)
    print(f"{name}: precision {precision:.3f} recall {recall:.3f} ({hits}/{len(truth)} spikes)")
    assert precision >= 0.7 and recall >= 0.7


# -- the spec ----------------------------------------------------------------------------------
def test_the_spec_defaults_and_scope() -> None:
    default = spec()
    assert default.window.size == 256 and default.every.samples == 100
    assert default.metrics == ("latency_ms",) and default.scope == "app"
    assert spec(stage="model").scope == "stage" and spec(service="api").scope == "service"
    assert spec(metrics="energy_j").metrics == ("energy_j",)
    assert spec(stage="a").matches({"stage": "a"}) and not spec(stage="a").matches({"stage": "b"})


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"window": {"size": 10, "seconds": 5}}, "window"),
        ({"window": {"size": 0}}, "window.size"),
        ({"every": {}}, "every"),
        ({"name": "has space"}, "name"),
        ({"metrics": []}, "metrics"),
        ({"windw": {"size": 3}}, "windw"),
    ],
)
def test_a_bad_spec_names_the_field(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    assert where in str(caught.value)


def test_specs_from_yaml() -> None:
    text = """
observers:
  - name: latency_outliers
    observer: isolation_forest
    params: {contamination: 0.02}
    metrics: latency_ms
    stage: model
    window: {size: 500}
    every: {samples: 100}
  - name: latency_summary
    observer: summary
    window: {seconds: 60}
    every: {seconds: 10}
"""
    first, second = load_observers_yaml(text)
    assert first.params == {"contamination": 0.02} and first.stage == "model"
    assert second.window.seconds == 60 and second.every.seconds == 10
    with pytest.raises(ValidationError, match="distinct"):
        parse_observers([{"name": "a", "observer": "summary"}] * 2)
    with pytest.raises(ValidationError, match=r"observers\.0\.window"):
        parse_observers([{"name": "a", "observer": "summary", "window": {}}])


# -- the runner --------------------------------------------------------------------------------
def test_a_count_window_fired_every_n_samples() -> None:
    runner = ObserverRunner([spec(window={"size": 5}, every={"samples": 3})])
    assert runner.feed("app", samples([1, 2])) == []
    (run,) = runner.feed("app", samples([3]))
    assert run.size == 3 and run.result["mean"] == 2.0 and run.name == "obs"
    assert runner.feed("app", samples([4, 5])) == []
    (run,) = runner.feed("app", samples([6, 7, 8, 9]))  # one run for 4 new samples
    assert run.size == 5 and run.result["min"] == 5.0 and run.result["max"] == 9.0
    assert runner.signals("app")["observer.obs.max"] == 9.0
    assert runner.stats("app")["obs"].runs == 2


def test_a_duration_window_fired_every_t_seconds() -> None:
    clock = Clock()
    runner = ObserverRunner([spec(window={"seconds": 10}, every={"seconds": 5})], clock=clock)
    assert runner.feed("app", samples([1, 2, 3], start=0)) == []  # ts 0, 1, 2
    clock.now = 4.9
    assert runner.tick() == []
    clock.now = 5.0
    (run,) = runner.tick()
    assert run.app == "app" and run.size == 3 and run.at == 5.0
    clock.now = 7.0
    runner.feed("app", samples([10, 20], start=12))  # ts 12, 13: ts 0-2 fall out (< 13 - 10)
    assert runner.tick("app") == []  # 2 s since the last run
    clock.now = 10.0
    (run,) = runner.tick("app")
    assert run.size == 2 and run.result["mean"] == 15.0
    clock.now = 20.0
    assert runner.tick() == []  # nothing new: nothing to run


def test_scopes_and_applications_are_separate() -> None:
    runner = ObserverRunner(
        [spec(name="a", stage="pre", every={"samples": 2}), spec(name="b", every={"samples": 3})]
    )
    rows = [{"stage": "pre", "latency_ms": 1.0}, {"stage": "model", "latency_ms": 9.0}] * 2
    runs = runner.feed("one", rows)
    assert {r.name: r.result["mean"] for r in runs} == {"a": 1.0, "b": 5.0}  # b: 1, 9, 1
    assert runner.feed("two", rows[:1]) == []
    assert runner.apps() == ["one", "two"]
    runner.configure("two", [spec(name="c", every={"samples": 1})])
    assert [r.name for r in runner.feed("two", rows[:1])] == ["c"]


class Exploding:
    name: ClassVar[str] = "exploding"
    streaming: ClassVar[bool] = False

    def observe(self, window: Window) -> ObserverResult:
        raise RuntimeError("boom\nsecond line")


def test_a_failing_observer_is_reported_and_the_others_run() -> None:
    runner = ObserverRunner(
        [
            spec(name="bad", observer="exploding", every={"samples": 2}),
            spec(name="good", every={"samples": 2}),
        ],
        factories={"exploding": Exploding},
    )
    for _ in range(3):
        runs = {r.name: r for r in runner.feed("app", samples([1, 3]))}
        assert runs["bad"].result.error == "RuntimeError: boom"
        assert not runs["bad"].result.ok and runs["bad"].result.values == {}
        assert runs["good"].result["mean"] == 2.0
    stats = runner.stats("app")
    assert stats["bad"].errors == 3 and stats["bad"].last_error == "RuntimeError: boom"
    assert stats["good"].errors == 0
    signals = runner.signals("app")
    assert signals["observer.bad.errors"] == 3.0 and signals["observer.good.mean"] == 2.0


def test_a_wrong_return_type_is_a_failure_too() -> None:
    class Wrong(Exploding):
        def observe(self, window: Window) -> Any:
            return {"score": 1.0}

    runner = ObserverRunner([spec(observer="w", every={"samples": 1})], factories={"w": Wrong})
    (run,) = runner.feed("app", samples([1]))
    assert run.result.error is not None and "ObserverResult" in run.result.error


def test_bad_configuration_fails_at_once() -> None:
    with pytest.raises(LookupError, match="unknown observer 'nope'"):
        ObserverRunner([spec(observer="nope")])
    with pytest.raises(TypeError, match="observer 'lof'"):
        ObserverRunner([spec(observer="lof", params={"k": 3})])
    with pytest.raises(ValueError, match="distinct"):
        ObserverRunner([spec(), spec()])


def test_the_runner_is_bounded() -> None:
    runner = ObserverRunner(
        [spec(name=f"o{i}", window={"size": 50_000}, every={"samples": 1}) for i in range(5)],
        max_window=100,
        max_feed=1000,
        max_runs=2,
    )
    runs = runner.feed("app", samples(list(range(1500))))
    assert len(runs) == 2 and all(r.size == 100 for r in runs)  # the window is capped
    assert runner.stats("app")["o0"].dropped == 500  # beyond max_feed
    assert {r.name for r in runner.tick("app")} == {"o2", "o3"}  # the longest waiting first
    assert [r.name for r in runner.tick("app")] == ["o4"]
    assert runner.tick("app") == []


def test_a_streaming_observer_drops_what_it_cannot_hold() -> None:
    runner = ObserverRunner(
        [spec(observer="half_space_trees", every={"samples": 10_000})], max_window=100
    )
    assert runner.feed("app", samples([1.0] * 250)) == []
    assert runner.stats("app")["obs"].dropped == 150


def test_streaming_observers_see_each_sample_once() -> None:
    seen: list[int] = []

    class Counting:
        name: ClassVar[str] = "counting"
        streaming: ClassVar[bool] = True

        def observe(self, window: Window) -> ObserverResult:
            seen.append(len(window))
            return window.result({"n": len(window)}, (), "counted")

    runner = ObserverRunner([spec(observer="c", every={"samples": 4})], factories={"c": Counting})
    for _ in range(5):
        runner.feed("app", samples([1, 2, 3]))
    assert seen == [6, 6]  # 15 samples fed in threes: runs at 6 and 12, 3 waiting
    assert isinstance(runner.latest("app")["obs"], ObserverResult)


def test_an_observation_is_a_plain_record() -> None:
    run = Observation("a", "n", "summary", 1.0, 0, ObserverResult(explanation="x"))
    assert run.result.ok and run.result.signals("n") == {}
