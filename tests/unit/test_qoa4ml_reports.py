"""QoA4ML reports mapped onto an application's stages, services, instances and metrics:
every report kind, the metric naming rules, and the reports that are refused."""

from __future__ import annotations

import math
from typing import Any

import pytest

from harmonia.compat.qoa4ml.reports import MAX_METRICS, ReportInvalid, kind_of, map_report
from harmonia.core.application import Application

ONE = Application.model_validate(
    {
        "name": "shop",
        "stages": [{"name": "detect", "services": [{"name": "yolo", "models": ["yolo"]}]}],
    }
)
PIPELINE = Application.model_validate(
    {
        "name": "ens",
        "stages": [
            {"name": "ingest", "services": [{"name": "reader", "models": ["csv"]}]},
            {
                "name": "classify",
                "after": ["ingest"],
                "services": [
                    {"name": "fast", "models": ["small"]},
                    {"name": "accurate", "models": ["large", "huge"]},
                ],
            },
        ],
    }
)
NOW = 1_700_000_000.0


def ml_report(instance: str = "i-1", **extra: Any) -> dict[str, Any]:
    """An MLReport as QoA4ML 0.3.18's client writes it."""
    report: dict[str, Any] = {
        "metadata": {
            "client_config": {
                "instance_id": instance,
                "stage_id": "detect",
                "functionality": "yolo",
            },
            "timestamp": 1000.5,
        },
        "service": {
            "detect": {
                "name": "detect",
                "metrics": {
                    "response_time": {
                        instance: {"records": [{"startTime": 1.0, "responseTime": 0.02}]}
                    },
                    "availability": {instance: {"records": [0.9, 1.0]}},
                },
            }
        },
        "data": {"detect": {"metrics": {"completeness": {instance: {"records": [0.5]}}}}},
        "ml_inference": {
            instance: {
                "inference_id": "inf-7",
                "instance_id": instance,
                "functionality": "yolo",
                "metrics": [{"metric_name": "accuracy", "records": [0.8]}],
                "prediction": {"label": 1, "confidence": 0.75, "name": "cat"},
            }
        },
    }
    report.update(extra)
    return report


def only(mapped: Any) -> tuple[str, dict[str, Any]]:
    [(instance, samples)] = mapped.batches.items()
    [sample] = samples
    return instance, sample


def test_an_ml_report_becomes_one_sample_of_its_instance() -> None:
    instance, sample = only(map_report(ONE, ml_report(), NOW))
    assert instance == "i-1"
    assert sample == {
        "stage": "detect",
        "service": "yolo",
        "model": "yolo",
        "ts": 1000.5,
        "metrics": {
            "availability": pytest.approx(0.95),
            "data.completeness": 0.5,
            "ml.accuracy": 0.8,
            "prediction.label": 1.0,
            "prediction.confidence": 0.75,
        },
        "latency_ms": pytest.approx(20.0),
        "trace_id": "inf-7",
    }


def test_a_numeric_prediction_is_the_samples_prediction() -> None:
    report = ml_report()
    report["ml_inference"]["i-1"]["prediction"] = 3
    _, sample = only(map_report(ONE, report, NOW))
    assert sample["prediction"] == 3.0 and isinstance(sample["prediction"], float)


def test_dict_records_give_one_metric_per_numeric_key_and_bad_values_are_skipped() -> None:
    report = ml_report()
    metrics = report["service"]["detect"]["metrics"]
    metrics["load"] = {"i-1": {"records": [{"cpu": 1.0, "gpu": 3}, {"cpu": 3.0, "flag": True}]}}
    metrics["broken"] = {"i-1": {"records": [math.inf, math.nan, "x", True, None]}}
    metrics["single"] = {"i-1": {"records": 4}}
    metrics["bad name!"] = {"i-1": {"records": [1.0]}}
    metrics["huge"] = {"i-1": {"records": [10**400, 2.0]}}
    _, sample = only(map_report(ONE, report, NOW))
    assert sample["metrics"]["load.cpu"] == 2.0
    assert sample["metrics"]["load.gpu"] == 3.0
    assert "load.flag" not in sample["metrics"]
    assert "broken" not in sample["metrics"]
    assert sample["metrics"]["single"] == 4.0
    assert "bad name!" not in sample["metrics"]
    assert sample["metrics"]["huge"] == 2.0


def test_response_time_without_a_usable_record_gives_no_latency() -> None:
    report = ml_report()
    records = report["service"]["detect"]["metrics"]["response_time"]["i-1"]
    records["records"] = [{"response_time": -1}, "slow", {"responseTime": math.nan}]
    _, sample = only(map_report(ONE, report, NOW))
    assert "latency_ms" not in sample


def test_at_most_max_metrics_metrics_are_kept() -> None:
    report = ml_report()
    metrics = report["service"]["detect"]["metrics"]
    for i in range(MAX_METRICS + 20):
        metrics[f"m{i}"] = {"i-1": {"records": [float(i)]}}
    _, sample = only(map_report(ONE, report, NOW))
    assert len(sample["metrics"]) == MAX_METRICS
    assert sample["metrics"]["availability"] == pytest.approx(0.95)  # the first ones stay


def test_without_a_timestamp_the_report_is_dated_now() -> None:
    report = ml_report()
    del report["metadata"]["timestamp"]
    _, sample = only(map_report(ONE, report, NOW))
    assert sample["ts"] == NOW
    report["timestamp"] = 5.0
    assert only(map_report(ONE, report, NOW))[1]["ts"] == 5.0


def test_a_report_with_nothing_observed_still_says_the_instance_lives() -> None:
    report = {"metadata": {"client_config": {"instance_id": "i-9"}}, "service": {}}
    instance, sample = only(map_report(ONE, report, NOW))
    assert instance == "i-9"
    assert sample["metrics"] == {} and sample["service"] == "yolo"
    assert "trace_id" not in sample


def test_an_unusable_trace_id_is_left_out() -> None:
    report = ml_report()
    report["ml_inference"]["i-1"]["inference_id"] = "not a trace id"
    _, sample = only(map_report(ONE, report, NOW))
    assert "trace_id" not in sample


def rohe_report() -> dict[str, Any]:
    """An ensemble report: two instances of the classify stage, the end point's id traces."""
    return {
        "metadata": {"client_config": {"instance_id": "a", "stage_id": "classify"}},
        "inference_report": {
            "service": {
                "classify": {
                    "metrics": {
                        "response_time": {"a": {"records": [{"responseTime": 0.01}]}},
                    }
                }
            },
            "ml_specific": {
                "linked_list": {
                    "x": {
                        "instance": {
                            "instance_id": "b",
                            "inference_id": "inf-b",
                            "functionality": "small",
                            "metrics": [{"metric_name": "accuracy", "records": [0.5]}],
                        },
                        "previous": [{"instance_id": "a", "inference_id": "inf-a"}],
                    }
                },
                "end_point": {"instance_id": "b", "inference_id": "end-1"},
            },
        },
        "execution_graph": {
            "linked_list": {"x": {"instance": {"id": "a", "functionality": "large"}}},
            "end_point": {"id": "b", "stage": "classify"},
        },
    }


def test_an_ensemble_report_gives_a_sample_per_instance_sharing_the_trace() -> None:
    mapped = map_report(PIPELINE, rohe_report(), NOW)
    assert kind_of(rohe_report()) == "rohe"
    assert set(mapped.batches) == {"a", "b"}
    [a] = mapped.batches["a"]
    [b] = mapped.batches["b"]
    assert (a["stage"], a["service"], a["model"]) == ("classify", "accurate", "large")
    assert (b["stage"], b["service"], b["model"]) == ("classify", "fast", "small")
    assert a["latency_ms"] == pytest.approx(10.0)
    assert b["metrics"] == {"ml.accuracy": 0.5}
    assert a["trace_id"] == b["trace_id"] == "end-1"
    assert a["ts"] == NOW
    assert mapped.count == 2


def test_resource_reports() -> None:
    client = {"instance_id": "node-1", "stage_id": "detect", "functionality": "yolo"}
    system = {
        "metadata": {"node_name": "edge", "client_info": client},
        "timestamp": 7.0,
        "cpu": {"usage": {"percentage": 42.0, "cores": {"0": 10, "1": 20.5}}},
        "mem": {"usage": {"rss": 1024, "bad": "x"}},
        "gpu": {"usage": {}},
    }
    assert kind_of(system) == "system"
    instance, sample = only(map_report(ONE, system, NOW))
    assert instance == "node-1"
    assert sample == {
        "stage": "detect",
        "service": "yolo",
        "model": "yolo",
        "ts": 7.0,
        "metrics": {
            "cpu.percentage": 42.0,
            "cpu.cores.0": 10.0,
            "cpu.cores.1": 20.5,
            "mem.rss": 1024.0,
        },
    }
    process = {**system, "metadata": {"pid": 3, "client_info": client}}
    assert kind_of(process) == "process"
    docker = {
        "metadata": client,
        "container_reports": [
            {"cpu": {"usage": {"percentage": 1.0}}, "mem": {"usage": {"rss": 2}}, "timestamp": 3.0},
            "not a container",
            {"cpu": {"usage": {"percentage": 3.0}}},
        ],
    }
    assert kind_of(docker) == "docker"
    mapped = map_report(ONE, docker, NOW)
    samples = mapped.batches["node-1"]
    assert [s["metrics"] for s in samples] == [
        {"container.cpu.percentage": 1.0, "container.mem.rss": 2.0},
        {"container.cpu.percentage": 3.0},
    ]
    assert [s["ts"] for s in samples] == [3.0, NOW]


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ([1, 2], "JSON object"),
        ({"hello": 1}, "not a QoA4ML report"),
        ({"service": [1]}, "must map stages"),
        ({"inference_report": [1]}, "inference_report must be an object"),
        (ml_report("bad id!"), "not a valid name"),
    ],
)
def test_what_is_not_a_usable_report_is_refused(report: Any, reason: str) -> None:
    with pytest.raises(ReportInvalid, match=reason):
        map_report(ONE, report, NOW)


def test_a_stage_or_service_the_application_lacks_is_refused() -> None:
    report = {"metadata": {"client_config": {"instance_id": "x", "stage_id": "nope"}}, "data": {}}
    with pytest.raises(ReportInvalid, match="no stage 'nope'"):
        map_report(PIPELINE, report, NOW)
    report["metadata"]["client_config"]["stage_id"] = "classify"
    with pytest.raises(ReportInvalid, match="several services"):
        map_report(PIPELINE, report, NOW)
    report["metadata"]["client_config"]["functionality"] = "huge"
    _, sample = only(map_report(PIPELINE, report, NOW))
    assert (sample["service"], sample["model"]) == ("accurate", "huge")


@pytest.mark.parametrize(
    "report",
    [
        {"service": {"detect": [1]}},
        {"service": {"detect": {"metrics": {"x": [1]}}}},
        {"service": {"detect": {"metrics": {"x": {"i": [1]}}}}},
        {"ml_inference": {"i": {"instance_id": "i", "metrics": [1]}}},
        {"inference_report": {"ml_specific": {"linked_list": {"x": []}}}},
        {"metadata": [1], "cpu": {"usage": {}}, "mem": 3},
    ],
)
def test_a_report_with_a_part_of_the_wrong_shape_is_refused(report: Any) -> None:
    with pytest.raises(ReportInvalid, match="wrong shape"):
        map_report(ONE, report, NOW)
