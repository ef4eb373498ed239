"""`Probe` against `InMemoryTransport`: batching, actions, retries, overflow and shutdown."""

from __future__ import annotations

import atexit
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonia.energy import EnergyMeter, EnergyReading, EnergySource, EstimateMeter, Measurement
from harmonia.sdk import (
    ActionMessage,
    Effector,
    InMemoryTransport,
    Probe,
    ProbeStats,
    Transport,
    TransportError,
)

WIRE_KEYS = {
    "service",
    "model",
    "model_version",
    "ts",
    "latency_ms",
    "energy_j",
    "energy_source",
    "prediction",
    "target",
    "drift_value",
    "metrics",
}

WAIT = 10.0
"""Generous bound on waits for the background thread, so a broken probe fails, not hangs."""


class FakeServer:
    """The server side of the contract: records batches and reports, replies with actions.

    ``failures`` is consumed one per send: a `TransportError` to raise (or ``None`` for a
    normal reply); ``actions`` go into the next successful reply only.
    """

    def __init__(self) -> None:
        self.batches: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.reports: dict[int, dict[str, Any]] = {}
        self.actions: list[dict[str, Any]] = []
        self.failures: list[TransportError | None] = []
        self.calls = 0
        self.threads: set[str] = set()
        self.received = threading.Event()
        self.reported = threading.Event()

    def send(self, app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
        self.batches.append((app, instance, samples))
        self.received.set()
        actions, self.actions = self.actions, []
        return {"accepted": len(samples), "actions": actions}

    def report(self, app: str, action_id: int, body: dict[str, Any]) -> None:
        self.threads.add(threading.current_thread().name)
        self.reports[action_id] = body
        self.reported.set()

    @property
    def samples(self) -> list[dict[str, Any]]:
        return [sample for _, _, batch in self.batches for sample in batch]

    def transport(self) -> InMemoryTransport:
        return InMemoryTransport(self.send, self.report)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@contextmanager
def probe_for(transport: Transport, **options: Any) -> Iterator[Probe]:
    """A probe that only sends on flush/close unless ``options`` say otherwise."""
    options = {"batch_size": 1000, "flush_interval": 60.0, "backoff": 0.001, **options}
    probe = Probe("traffic", transport, **options)
    try:
        yield probe
    finally:
        probe.close(timeout=WAIT)


class FixedStepMeter:
    """A meter that is not a `CounterMeter`: every block costs exactly ``joules``."""

    source: EnergySource = "nvml"

    def __init__(self, joules: float) -> None:
        self.joules = joules

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        measurement = Measurement()
        try:
            yield measurement
        finally:
            measurement.reading = EnergyReading(self.joules, 0.0, "nvml")


class BrokenMeter:
    source: EnergySource = "rapl"

    def measure(self) -> Any:
        raise OSError("permission denied")


def stepping_cpu_clock(step: float) -> Callable[[], float]:
    """A CPU clock advancing ``step`` seconds per read: each block costs ``step`` CPU-s."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


# -- samples ---------------------------------------------------------------------------------


def test_samples_arrive_in_order_in_batches_with_every_field(server: FakeServer) -> None:
    with probe_for(
        server.transport(), instance="edge-1", service="detector", batch_size=10, clock=lambda: 5.0
    ) as probe:
        for i in range(25):
            probe.record(
                "lstm",
                version=3,
                prediction=float(i),
                target=i + 0.5,
                drift_value=0.25,
                metrics={"confidence": 0.9, "correct": True},
                latency_ms=1.5,
                energy_j=0.02,
                energy_source="rapl",
            )
        assert probe.flush(timeout=WAIT)
    assert {(app, instance) for app, instance, _ in server.batches} == {("traffic", "edge-1")}
    assert all(len(batch) <= 10 for _, _, batch in server.batches)
    assert [s["prediction"] for s in server.samples] == [float(i) for i in range(25)]
    first = server.samples[0]
    assert set(first) == WIRE_KEYS
    assert first == {
        "service": "detector",
        "model": "lstm",
        "model_version": 3,
        "ts": 5.0,
        "latency_ms": 1.5,
        "energy_j": 0.02,
        "energy_source": "rapl",
        "prediction": 0.0,
        "target": 0.5,
        "drift_value": 0.25,
        "metrics": {"confidence": 0.9, "correct": 1.0},
    }
    assert probe.stats.snapshot() == ProbeStats(sent=25, batches=len(server.batches))


def test_a_full_batch_is_sent_without_waiting_for_the_interval(server: FakeServer) -> None:
    with probe_for(server.transport(), batch_size=4) as probe:
        for _ in range(4):
            probe.record("svm", prediction=1.0)
        assert server.received.wait(WAIT)
        assert len(server.batches[0][2]) == 4


def test_both_transports_satisfy_the_protocol(server: FakeServer) -> None:
    from harmonia.sdk import HTTPTransport

    assert isinstance(server.transport(), Transport)
    with HTTPTransport("http://127.0.0.1:9", "token") as http:
        assert isinstance(http, Transport)


def test_record_fills_defaults(server: FakeServer) -> None:
    with probe_for(server.transport(), clock=lambda: 123.0) as probe:
        probe.record("svm")
        probe.record("svm", ts=7.0)
    assert server.samples[0] == {
        "service": "default",
        "model": "svm",
        "model_version": None,
        "ts": 123.0,
        "latency_ms": None,
        "energy_j": None,
        "energy_source": None,
        "prediction": None,
        "target": None,
        "drift_value": None,
        "metrics": {},
    }
    assert server.samples[1]["ts"] == 7.0


def test_measure_records_latency_energy_and_outcome(server: FakeServer) -> None:
    meter = EstimateMeter(watts_per_core=10.0, scope="thread", clock=stepping_cpu_clock(0.5))
    with probe_for(server.transport(), meter=meter) as probe, probe.measure("lstm", 2) as m:
        time.sleep(0.01)
        m.prediction = 41.5
        m.target = 40.0
        m.drift_value = 0.3
        m.metrics["confidence"] = 0.8
    (sample,) = server.samples
    assert sample["latency_ms"] >= 10.0  # it slept 10 ms; no upper bound is asserted
    assert sample["latency_ms"] == m.latency_ms
    assert sample["energy_j"] == pytest.approx(5.0) == m.energy_j  # 0.5 CPU-s × 10 W
    assert sample["energy_source"] == "estimate" == m.energy_source
    assert (sample["model"], sample["model_version"]) == ("lstm", 2)
    assert (sample["prediction"], sample["target"], sample["drift_value"]) == (41.5, 40.0, 0.3)
    assert sample["metrics"] == {"confidence": 0.8}


def test_the_default_meter_is_the_thread_estimate(server: FakeServer) -> None:
    with probe_for(server.transport()) as probe:
        assert isinstance(probe.meter, EstimateMeter) and probe.meter.scope == "thread"
        with probe.measure("svm"):
            sum(range(10_000))
    (sample,) = server.samples
    assert sample["energy_source"] == "estimate" and sample["energy_j"] >= 0.0


def test_meters_without_a_counter_go_through_measure(server: FakeServer) -> None:
    meter: EnergyMeter = FixedStepMeter(0.75)
    with probe_for(server.transport(), meter=meter) as probe, probe.measure("svm"):
        pass
    assert (server.samples[0]["energy_j"], server.samples[0]["energy_source"]) == (0.75, "nvml")


def test_a_failing_block_is_still_recorded_and_its_error_propagates(server: FakeServer) -> None:
    with (
        probe_for(server.transport()) as probe,
        pytest.raises(ZeroDivisionError),
        probe.measure("svm") as m,
    ):
        m.prediction = 1.0
        _ = 1 / 0
    (sample,) = server.samples
    assert sample["prediction"] == 1.0 and sample["energy_source"] == "estimate"


def test_a_broken_meter_costs_the_energy_not_the_sample(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with probe_for(server.transport(), meter=BrokenMeter()) as probe:
        for _ in range(3):
            with probe.measure("svm") as m:
                m.prediction = 2.0
    assert [(s["prediction"], s["energy_j"]) for s in server.samples] == [(2.0, None)] * 3
    assert server.samples[0]["latency_ms"] is not None
    assert caplog.text.count("energy meter failed") == 1


def test_invalid_samples_are_dropped_alone_and_values_are_cleaned(server: FakeServer) -> None:
    with probe_for(server.transport()) as probe:
        probe.record("svm", ts=float("nan"))
        probe.record("svm", latency_ms=-1.0)
        probe.record("svm", version=0)
        probe.record("", prediction=1.0)
        probe.record("m" * 129, prediction=1.0)
        probe.record("svm", energy_source="x" * 33)
        probe.record("svm", drift_value=10**400)  # float() overflows
        probe.record(
            "svm",
            prediction=np.float32(2.5),  # type: ignore[arg-type]
            target=float("inf"),
            metrics={"ok": 1.0, "bad": float("nan")},
        )
    (sample,) = server.samples
    assert sample["prediction"] == 2.5 and type(sample["prediction"]) is float
    assert sample["target"] is None
    assert sample["metrics"] == {"ok": 1.0}
    assert (probe.stats.sent, probe.stats.dropped) == (1, 7)


@settings(max_examples=20, deadline=None)
@given(count=st.integers(0, 60), batch_size=st.integers(1, 17))
def test_every_sample_arrives_once_in_order(count: int, batch_size: int) -> None:
    server = FakeServer()
    with probe_for(server.transport(), batch_size=batch_size) as probe:
        for i in range(count):
            probe.record("svm", prediction=float(i))
        assert probe.flush(timeout=WAIT)
    assert [s["prediction"] for s in server.samples] == [float(i) for i in range(count)]
    assert all(1 <= len(batch) <= batch_size for _, _, batch in server.batches)
    assert probe.stats.sent == count and probe.stats.dropped == 0


# -- actions ---------------------------------------------------------------------------------


def test_actions_reach_their_handlers_and_results_are_reported(server: FakeServer) -> None:
    effector = Effector()
    seen: list[tuple[ActionMessage, str]] = []

    @effector.on("switch_model")
    def switch(action: ActionMessage) -> str:
        seen.append((action, threading.current_thread().name))
        return f"serving {action.model} v{action.version}"

    @effector.on("retrain")
    def retrain(action: ActionMessage) -> None:
        raise RuntimeError("no training data")

    server.actions = [
        {
            "id": 1,
            "kind": "switch_model",
            "model": "svm",
            "version": 2,
            "reason": "r2 dropped",
            "trigger": "r2<0.8",
            "values": {"r2": 0.6},
        },
        {"id": 2, "kind": "retrain", "model": "lstm", "version": None, "reason": "drift"},
        {"id": 3, "kind": "reuse_version", "model": "lstm", "version": 1},
        {"id": 4, "kind": "none", "model": None, "version": None, "reason": "all good"},
    ]
    with probe_for(server.transport(), effector=effector) as probe:
        probe.record("lstm", prediction=1.0)
        assert probe.flush(timeout=WAIT)
        assert probe.effector is effector
    assert server.reports == {
        1: {"status": "applied", "reason": "serving svm v2"},
        2: {"status": "failed", "reason": "no training data"},
        3: {"status": "failed", "reason": "no handler for reuse_version"},
    }
    ((action, thread),) = seen
    assert action == ActionMessage(1, "switch_model", "svm", 2, "r2 dropped", "r2<0.8", {"r2": 0.6})
    assert thread != threading.current_thread().name  # handled on the sender thread
    assert (probe.stats.actions_applied, probe.stats.actions_failed) == (1, 2)


def test_long_reasons_are_cut_to_what_the_server_stores(server: FakeServer) -> None:
    effector = Effector()
    effector.on("retrain", lambda action: "x" * 5000)
    server.actions = [{"id": 3, "kind": "retrain"}]
    with probe_for(server.transport(), effector=effector) as probe:
        probe.record("svm")
    assert server.reports[3]["reason"] == "x" * 2000


def test_without_an_effector_actions_are_reported_failed(server: FakeServer) -> None:
    server.actions = [{"id": 9, "kind": "retrain"}]
    with probe_for(server.transport()) as probe:
        probe.record("svm")
    assert server.reports == {9: {"status": "failed", "reason": "no handler for retrain"}}


def test_a_failed_report_is_retried(server: FakeServer) -> None:
    attempts: list[int] = []

    def report(app: str, action_id: int, body: dict[str, Any]) -> None:
        attempts.append(action_id)
        if len(attempts) == 1:
            raise TransportError(True, "503")
        server.report(app, action_id, body)

    server.actions = [{"id": 5, "kind": "retrain"}]
    effector = Effector()
    effector.on("retrain", lambda action: "started")
    with probe_for(InMemoryTransport(server.send, report), effector=effector) as probe:
        probe.record("svm")
    assert attempts == [5, 5]
    assert server.reports == {5: {"status": "applied", "reason": "started"}}


def test_a_handler_may_flush_without_deadlocking(server: FakeServer) -> None:
    effector = Effector()
    probe = Probe("traffic", server.transport(), effector=effector, flush_interval=60.0)

    @effector.on("retrain")
    def retrain(action: ActionMessage) -> str:
        probe.record("svm", prediction=2.0)
        return str(probe.flush())

    server.actions = [{"id": 1, "kind": "retrain"}]
    probe.record("svm", prediction=1.0)
    assert probe.flush(timeout=WAIT)
    assert probe.close(timeout=WAIT)
    assert server.reports[1] == {"status": "applied", "reason": "True"}
    assert [s["prediction"] for s in server.samples] == [1.0, 2.0]


# -- failures --------------------------------------------------------------------------------


def test_retryable_failures_are_retried_and_nothing_is_lost(server: FakeServer) -> None:
    server.failures = [TransportError(True, "connection refused"), TransportError(True, "503")]
    with probe_for(server.transport()) as probe:
        for i in range(5):
            probe.record("svm", prediction=float(i))
        assert probe.flush(timeout=WAIT)
    assert server.calls == 3
    assert [s["prediction"] for s in server.samples] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert probe.stats.snapshot() == ProbeStats(sent=5, batches=1)


def test_a_crashing_handler_counts_as_a_retryable_server_error(server: FakeServer) -> None:
    calls = []

    def send(app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
        calls.append(len(samples))
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return server.send(app, instance, samples)

    with probe_for(InMemoryTransport(send)) as probe:
        probe.record("svm")
    assert calls == [1, 1] and probe.stats.sent == 1


def test_a_batch_is_dropped_after_max_attempts(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.failures = [TransportError(True, "503")] * 3
    with pytest.warns(DeprecationWarning), probe_for(server.transport(), max_attempts=3) as probe:
        for _ in range(4):
            probe.record("svm")
        assert probe.flush(timeout=WAIT)
        probe.record("svm")  # the server is back: later batches go through
    assert server.calls == 4
    assert probe.stats.snapshot() == ProbeStats(sent=1, dropped=4, batches=1)
    assert "after 3 attempts" in caplog.text


def test_a_rejected_batch_is_dropped_without_retry(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.failures = [TransportError(False, "HTTP 422: metrics.x must be finite", status=422)]
    with probe_for(server.transport()) as probe:
        for _ in range(3):
            probe.record("svm")
        assert probe.flush(timeout=WAIT)
        probe.record("svm")
    assert server.calls == 2
    assert probe.stats.snapshot() == ProbeStats(sent=1, rejected=3, batches=1)
    assert "metrics.x must be finite" in caplog.text


class StuckServer(FakeServer):
    """A server whose first send blocks until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(WAIT)
        return super().send(app, instance, samples)


def test_a_full_buffer_drops_the_oldest_and_never_blocks_the_caller() -> None:
    server = StuckServer()
    with probe_for(server.transport(), batch_size=5, max_buffer=10) as probe:
        for i in range(5):
            probe.record("svm", prediction=float(i))
        assert server.entered.wait(WAIT)  # the sender holds samples 0-4 and is stuck
        for i in range(5, 105):
            with probe.measure("svm") as m:
                m.prediction = float(i)
        assert not server.release.is_set()  # all 100 recorded while the transport is stuck
        assert probe.stats.dropped == 90
        server.release.set()
        assert probe.flush(timeout=WAIT)
    expected = [float(i) for i in [*range(5), *range(95, 105)]]
    assert [s["prediction"] for s in server.samples] == expected
    assert probe.stats.snapshot() == ProbeStats(sent=15, dropped=90, batches=3)


def test_flush_gives_up_waiting_on_a_stuck_transport() -> None:
    server = StuckServer()
    probe = Probe("traffic", server.transport(), flush_interval=60.0)
    probe.record("svm")
    assert probe.flush(timeout=0.05) is False
    server.release.set()
    assert probe.flush(timeout=WAIT) is True
    assert probe.close(timeout=WAIT)
    assert probe.stats.sent == 1


# -- lifecycle -------------------------------------------------------------------------------


def test_close_delivers_everything_and_later_samples_are_dropped(server: FakeServer) -> None:
    probe = Probe("traffic", server.transport(), batch_size=1000, flush_interval=60.0)
    for i in range(7):
        probe.record("svm", prediction=float(i))
    assert probe.close(timeout=WAIT)
    assert len(server.samples) == 7 and probe.closed
    probe.record("svm")
    assert probe.close(timeout=WAIT)  # closing twice is harmless
    assert probe.flush(timeout=WAIT)
    assert len(server.samples) == 7
    assert probe.stats.snapshot() == ProbeStats(sent=7, dropped=1, batches=1)


def test_the_probe_is_a_context_manager(server: FakeServer) -> None:
    with Probe("traffic", server.transport(), flush_interval=60.0) as probe:
        probe.record("svm")
    assert probe.closed and len(server.samples) == 1


def test_samples_are_sent_every_flush_interval(server: FakeServer) -> None:
    with probe_for(server.transport(), flush_interval=0.02) as probe:
        probe.record("svm", prediction=1.0)
        probe.record("svm", prediction=2.0)
        assert server.received.wait(WAIT)  # no flush, no full batch: the interval sent them
    assert [s["prediction"] for s in server.samples] == [1.0, 2.0]


def test_flush_with_nothing_buffered_returns_at_once(server: FakeServer) -> None:
    with probe_for(server.transport()) as probe:
        assert probe.flush(timeout=WAIT)
    assert server.calls == 0


def test_close_unregisters_the_exit_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[Any] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(atexit, "unregister", registered.remove)
    probe = Probe("traffic", FakeServer().transport())
    assert registered == [probe._at_exit]
    probe.close()
    assert registered == []


def test_samples_are_flushed_at_interpreter_exit() -> None:
    code = """
from harmonia.sdk import InMemoryTransport, Probe

def send(app, instance, samples):
    print("sent", len(samples), flush=True)
    return {"accepted": len(samples), "actions": []}

probe = Probe("traffic", InMemoryTransport(send), flush_interval=60.0)
for _ in range(3):
    probe.record("svm", prediction=1.0)
print("exiting", flush=True)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split("\n")[:2] == ["exiting", "sent 3"]


@pytest.mark.parametrize(
    "options",
    [{"batch_size": 0}, {"max_buffer": 0}, {"max_attempts": 0}, {"flush_interval": 0.0}],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Probe("traffic", FakeServer().transport(), **options)


# -- overhead (reported, never asserted) -----------------------------------------------------


def test_measure_overhead_is_reported(server: FakeServer) -> None:
    """Prints the median per-block cost of ``measure`` with the default estimate meter.

    Wall-clock numbers depend on the machine, so nothing here asserts a time; run with
    ``-s`` to see the figure (the SDK's target is under 20 µs per block).
    """
    blocks, rounds = 2_000, 15
    with probe_for(server.transport(), max_buffer=blocks * rounds) as probe:
        per_block: list[float] = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(blocks):
                with probe.measure("svm", version=1) as m:
                    m.prediction = 1.0
            per_block.append((time.perf_counter() - start) / blocks)
        assert probe.flush(timeout=WAIT)
    print(f"\nProbe.measure overhead: median {statistics.median(per_block) * 1e6:.2f} µs/block")
    assert probe.stats.sent == blocks * rounds and probe.stats.dropped == 0
