"""When the server checks a contract: its windows close as ingestion counts samples of each
SLO's scope (`WindowSchedule`), and the checks run on one worker, coalesced per app
(`CheckQueue`); where an SLO stands round-trips through the store's JSON (`SLOState`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from harmonia.core.application import Application
from harmonia.core.contracts import Attribution, Check, Contract, SLOResult
from harmonia.server.contract_schedule import CheckQueue, WindowSchedule, scope_services
from harmonia.server.contracts import SLOState
from harmonia.store import StoredSLOState

PIPELINE = Application.model_validate(
    {
        "name": "detect",
        "stages": [
            {"name": "camera", "services": [{"name": "frames", "models": ["raw"]}]},
            {
                "name": "classify",
                "after": ["camera"],
                "services": [
                    {"name": "fast", "models": ["a"]},
                    {"name": "accurate", "models": ["b"]},
                ],
            },
            {
                "name": "aggregate",
                "after": ["classify"],
                "services": [{"name": "vote", "models": ["m"]}],
            },
        ],
    }
)


@dataclass(frozen=True)
class FakeApp:
    name: str


def contract(*slos: dict[str, object]) -> Contract:
    return Contract.model_validate({"slos": list(slos)})


def test_each_scope_counts_the_samples_its_window_reads() -> None:
    e2e, stage, service = contract(
        {"name": "e", "condition": "p99(latency_ms) <= 1"},
        {"name": "s", "scope": "stage", "target": "classify", "condition": "count >= 1"},
        {"name": "v", "scope": "service", "target": "fast", "condition": "count >= 1"},
    ).slos
    assert scope_services(PIPELINE, e2e) == {"vote"}  # a trace counts when its last stage reports
    assert scope_services(PIPELINE, stage) == {"fast", "accurate"}
    assert scope_services(PIPELINE, service) == {"fast"}


def test_a_count_window_closes_after_every_n_samples_of_its_scope() -> None:
    terms = contract(
        {"name": "e", "condition": "p99(latency_ms) <= 1", "window": "10 samples"},
        {"name": "e2", "condition": "p50(latency_ms) <= 1", "window": "10 samples"},
    )
    schedule = WindowSchedule.of(1, terms, PIPELINE, now=0.0)
    assert len(schedule.counts) == 1 and schedule.seconds is None  # one window, shared
    assert not schedule.feed({"vote": 9}, 1.0)
    assert not schedule.feed({"fast": 100, "frames": 100}, 2.0)  # not the SLO's scope
    assert schedule.feed({"vote": 1}, 3.0)
    assert schedule.feed({"vote": 25}, 4.0)  # two windows in one batch: one check
    assert not schedule.feed({"vote": 4}, 5.0)  # 5 left over + 4
    assert schedule.feed({"vote": 1}, 6.0)


def test_a_time_window_closes_once_its_duration_passed_since_the_last_check() -> None:
    terms = contract(
        {"name": "slow", "condition": "p99(latency_ms) <= 1", "window": "60 s"},
        {"name": "default", "condition": "p50(latency_ms) <= 1"},  # the contract's 5 min
    )
    schedule = WindowSchedule.of(1, terms, PIPELINE, now=100.0)
    assert schedule.seconds == 60.0 and schedule.counts == []
    assert not schedule.feed({"vote": 1}, 159.0)
    assert schedule.feed({"frames": 1}, 160.0)  # any sample: the app's clock moves on
    assert not schedule.feed({"vote": 1}, 161.0)  # closed at 160: the next closes at 220
    assert schedule.feed({"vote": 1}, 220.0)


def test_the_periodic_check_waits_for_an_app_without_samples_or_checks() -> None:
    schedule = WindowSchedule.of(1, contract({"name": "e", "condition": "count >= 1"}), PIPELINE, 0)
    assert not schedule.idle(5.0, every=10.0)  # the contract was just seen
    assert schedule.idle(10.0, every=10.0)
    schedule.feed({"vote": 1}, 12.0)
    assert not schedule.idle(20.0, every=10.0)  # traffic: ingestion checks it
    assert schedule.idle(22.0, every=10.0)  # the traffic stopped


def test_checks_run_off_the_caller_one_per_app_in_flight_and_bursts_coalesce() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def check(app: FakeApp) -> None:
        calls.append(app.name)
        started.set()
        release.wait(10)

    queue = CheckQueue(check, settle_s=0.0)  # type: ignore[arg-type]
    queue.submit(FakeApp("busy"))  # type: ignore[arg-type]
    assert started.wait(10)  # running on the worker; submit did not wait for it
    for _ in range(50):  # a burst while its check runs: one more check, after it
        queue.submit(FakeApp("busy"))  # type: ignore[arg-type]
    queue.submit(FakeApp("quiet"))  # type: ignore[arg-type]
    release.set()
    assert queue.join(10)
    assert calls == ["busy", "busy", "quiet"]
    queue.stop()
    queue.submit(FakeApp("late"))  # type: ignore[arg-type]
    assert queue.join(1) and calls == ["busy", "busy", "quiet"]


def test_a_failing_check_is_logged_and_the_next_one_runs() -> None:
    calls: list[str] = []

    def check(app: FakeApp) -> None:
        calls.append(app.name)
        if app.name == "broken":
            raise RuntimeError("the database is down")

    queue = CheckQueue(check, settle_s=0.0)  # type: ignore[arg-type]
    queue.submit(FakeApp("broken"))  # type: ignore[arg-type]
    assert queue.join(10)
    queue.submit(FakeApp("fine"))  # type: ignore[arg-type]
    assert queue.join(10) and calls == ["broken", "fine"]
    queue.stop()


def test_a_check_waits_for_the_other_stages_samples_to_settle() -> None:
    calls: list[str] = []
    queue = CheckQueue(lambda app: calls.append(app.name), settle_s=60.0)
    queue.submit(FakeApp("a"))  # type: ignore[arg-type]
    assert not queue.join(0.2) and calls == []  # due in a minute
    queue.stop()  # what is queued is dropped: the next window or the fallback checks it
    assert calls == []


def test_an_slo_state_round_trips_through_its_stored_form() -> None:
    result = SLOResult(
        slo="e2e",
        scope="end_to_end",
        target=None,
        condition="p99(latency_ms) <= 100",
        status="violated",
        severity="critical",
        then="reroute",
        window="20 samples",
        samples=20,
        checks=(Check("p99(latency_ms)", "<=", 100.0, 300.0, "violated"),),
        explanation="classify took 300 ms on fast-2 (edge-2)",
        attribution=(Attribution("classify", "fast", "fast-2", "edge-2", 0.9, "latency_ms", None),),
    )
    state = SLOState("violated", since=10.0, checked=12.0, result=result)
    back = SLOState.restored(state.stored("e2e"))
    assert back == state
    assert SLOState("met", 1.0, 2.0).after(result, 5.0).since == 5.0  # a new status: since now
    assert state.after(result, 20.0) == SLOState("violated", 10.0, 20.0, result)
    unreadable = SLOState.restored(StoredSLOState("e2e", "violated", 1.0, 2.0, {"x": 1}))
    assert unreadable.status == "violated" and unreadable.result is None  # still one episode
