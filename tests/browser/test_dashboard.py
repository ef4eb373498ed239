"""The dashboard in headless Chromium against a real server and a live traffic system.

The tests of this module share one server, one browser tab and one live run, and follow a
user's session in order: log in, start the traffic system from the Run page, watch it, steer
its policy, read the history, download telemetry, compare replayed approaches, stop the
system; then a three-stage pipeline application is registered, fed traced telemetry and
read on its pipeline page (last, so that it takes no time from the live run). Each page is
saved as a screenshot under build/screenshots/.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

APP = "traffic-live"
#: observations per second of the live run: a 200-sample window closes about every second
RATE = 200
ROOT = Path(__file__).resolve().parents[2]
#: the three-stage pipeline of examples/apps/pipeline.yaml, registered under this name
PIPELINE = "camera-pipeline"


def goto(page: Any, route: str) -> None:
    """Open a route and wait until its page has loaded its data."""
    page.evaluate("route => { location.hash = route }", route)
    page.wait_for_function(
        "route => document.querySelector('#main').dataset.ready === route", arg=route
    )


@pytest.fixture(scope="module")
def shot(screenshots: Path) -> Any:
    def save(page: Any, name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

    return save


def login(page: Any, server: Any) -> None:
    # (a tab that has not opened the dashboard yet, as when a test runs alone, has no storage)
    token = "() => sessionStorage.getItem('harmonia.token')"
    if page.url.startswith(server.url) and page.evaluate(token) == server.admin:
        return
    page.goto(f"{server.url}/#/login")
    page.get_by_label("Admin token").fill(server.admin)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#logout")


@pytest.fixture(scope="module")
def live(page: Any, server: Any, shot: Any) -> dict[str, Any]:
    """The traffic system, started from the Run page as a user would."""
    login(page, server)
    goto(page, "#/run")
    page.select_option("#run-system", "traffic")
    assert page.input_value("#run-approach") == "traffic-live"
    page.fill("#run-app", APP)
    page.fill("#run-rate", str(RATE))
    page.get_by_role("button", name="Start").click()
    row = page.locator("#run-table tbody tr").first
    row.get_by_text("running").wait_for()
    runs = server.api("GET", "/runs")
    assert [(r["app"], r["status"]) for r in runs] == [(APP, "running")]
    shot(page, "run")
    return runs[0]


def test_login_needs_the_admin_token(page: Any, server: Any, shot: Any) -> None:
    page.goto(f"{server.url}/#/run")
    page.wait_for_selector("#main[data-ready='#/run']")
    # logged out, nothing can be started: Start is off, and the page says how to log in
    assert page.get_by_role("button", name="Start").is_disabled()
    page.locator("#run-login").get_by_role("link", name="Log in").click()
    page.wait_for_url(re.compile(r"#/login$"))
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("That is not the admin token.").wait_for()
    assert page.get_attribute("#token", "aria-invalid") == "true"
    shot(page, "login")
    page.get_by_label("Admin token").fill(server.admin)
    page.get_by_label("Admin token").press("Enter")  # the keyboard is enough
    page.wait_for_selector("#logout")
    page.wait_for_url(re.compile(r"#/run$"))  # back where the user was going
    page.wait_for_selector("#main[data-ready='#/run']")
    assert page.get_by_role("button", name="Start").is_enabled()


def test_a_system_started_from_the_page_reports_live(
    page: Any, server: Any, live: dict[str, Any], shot: Any
) -> None:
    goto(page, "#/")
    row = page.locator(f"#overview tr[data-app='{APP}']")
    row.wait_for()
    # the overview fills in as windows close (it polls): energy appears with the first window,
    # in its own cell (a decision's hint in the same row may quote mJ too)
    row.get_by_role("cell", name=re.compile(r"^\d[\d.]* mJ$")).wait_for()
    assert "harmonia" in row.inner_text()
    assert "running" in row.inner_text()
    shot(page, "overview")


def test_live_chart_grows_without_reloading(
    page: Any, server: Any, live: dict[str, Any], shot: Any
) -> None:
    goto(page, f"#/app/{APP}")
    page.get_by_text("● live").wait_for()
    page.evaluate("() => { window.sameDocument = true }")
    page.wait_for_function("() => Number(document.querySelector('#chart-main').dataset.points) > 0")
    before = int(page.get_attribute("#chart-main", "data-points"))
    traces = page.evaluate("() => document.querySelector('#chart-main').data.length")
    assert traces >= 1
    page.wait_for_function(
        "n => Number(document.querySelector('#chart-main').dataset.points) >= n + 2", arg=before
    )
    assert page.evaluate("() => window.sameDocument") is True  # updated in place, not reloaded
    # the other charts are drawn too: energy, latency percentiles, drift, time share
    for chart in ("chart-energy", "chart-latency", "chart-drift", "chart-share"):
        assert page.evaluate(f"() => document.querySelector('#{chart}').data.length") >= 1, chart
    assert page.inner_text("#stat-model").startswith(("linear", "svm", "lstm"))
    shot(page, "live")


def test_an_edited_threshold_is_followed_by_the_next_adaptation(
    page: Any, server: Any, live: dict[str, Any], shot: Any, tmp_path: Path
) -> None:
    goto(page, f"#/policies/{APP}")
    # start from the switching preset, with a boundary that cannot fire
    page.select_option("#preset", "traffic-switch")
    page.get_by_role("button", name="Load preset").click()
    text = page.input_value("#policy-text")
    assert f"system: {APP}" in text  # the preset now governs this application
    text = text.replace("quality < 0.8 or mae > 60", "quality < -50").replace(
        "drift.psi > 0.2", "drift.psi > 1000"
    )
    page.fill("#policy-text", text)
    page.get_by_role("button", name="Save as new version and apply").click()
    page.get_by_text(re.compile(r"Saved as version \d+")).wait_for()
    assert server.api("GET", f"/apps/{APP}/policy")["document"]["strategy"] == "switch"

    # a bad edit is refused, and the field is named next to the editor
    page.fill("#policy-text", text.replace("then: switch_model", "then: teleport"))
    page.get_by_role("button", name="Validate").click()
    issue = page.locator("#issue-list li[data-field='boundaries[0].then']")
    issue.wait_for()
    assert page.get_attribute("#policy-text", "aria-invalid") == "true"
    assert issue.get_by_role("button", name=re.compile(r"line \d+")).is_visible()
    shot(page, "policies-invalid")

    # the threshold raised so that it fires: the next adaptation follows it
    page.fill("#policy-text", text.replace("quality < -50", "quality < 2"))
    page.get_by_role("button", name="Validate").click()
    page.wait_for_selector("#policy-valid")
    page.get_by_role("button", name="Save as new version and apply").click()
    page.get_by_text(re.compile(r"Saved as version \d+")).wait_for()
    shot(page, "policies")

    # the policy round-trips through a JSON file: download, then upload into the editor
    with page.expect_download() as download:
        page.get_by_role("button", name="Download JSON").click()
    saved = tmp_path / "policy.json"
    download.value.save_as(saved)
    assert json.loads(saved.read_text())["boundaries"][0]["when"] == "quality < 2"
    page.set_input_files("#policy-upload", str(saved))
    page.wait_for_function("() => document.querySelector('#policy-text').value.startsWith('{')")
    page.wait_for_selector("#policy-valid")

    goto(page, f"#/app/{APP}")
    page.locator("#latest-action").get_by_text("quality < 2").wait_for(timeout=30_000)
    actions = server.api("GET", f"/apps/{APP}/actions")
    followed = [a for a in actions if a["trigger"] == "quality < 2"]
    assert followed and followed[-1]["kind"] == "switch_model"
    assert followed[-1]["values"]["quality"] < 2
    assert not [a for a in actions if "-50" in a["trigger"]]
    # the threshold line of the new policy is drawn on the main chart
    page.wait_for_function(
        "() => (document.querySelector('#chart-main').layout.annotations || [])"
        ".some(a => a.text.includes('quality < 2'))"
    )
    shot(page, "live-adapting")


def test_history_lists_the_boundary_values_and_before_after(
    page: Any, server: Any, live: dict[str, Any], shot: Any
) -> None:
    goto(page, f"#/app/{APP}/history")
    row = page.locator("#history tbody tr", has_text="quality < 2").last
    row.wait_for()
    assert "switch_model" in row.inner_text()
    assert re.search(r"quality = -?\d", row.inner_text())  # the value the boundary read
    row.get_by_role("button", name="Before / after").click()
    page.wait_for_function("() => document.querySelector('#chart-before-after')?.data?.length > 0")
    assert "before" in page.inner_text("#before-after")
    shot(page, "history")


def test_telemetry_downloads_as_csv_and_parquet(
    page: Any, server: Any, live: dict[str, Any], shot: Any, tmp_path: Path
) -> None:
    goto(page, f"#/app/{APP}")
    # a custom range, from an hour ago to an hour ahead (local time, as the inputs take it)
    start, end = page.evaluate(
        """() => [-3600e3, 3600e3].map(d => {
            const t = new Date(Date.now() + d);
            return new Date(t - t.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
        })"""
    )
    page.select_option("#range", "custom")
    page.fill("#range-from", start)
    page.fill("#range-to", end)
    page.get_by_role("button", name="Show range").click()
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / "telemetry.csv"
    csv_download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) > 200
    assert {"ts", "model", "energy_j", "latency_ms"} <= set(rows[0])
    assert {r["model"] for r in rows} <= {"linear", "svm", "lstm"}

    with page.expect_download() as parquet_download:
        page.get_by_role("button", name="Download Parquet").click()
    path = tmp_path / "telemetry.parquet"
    parquet_download.value.save_as(path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.num_rows >= len(rows)
    assert "energy_j" in table.column_names


def test_experiments_run_from_the_page_and_compare_approaches(
    page: Any, server: Any, shot: Any
) -> None:
    login(page, server)
    goto(page, "#/experiments")
    assert page.input_value("#exp-system") == "traffic"  # the default, though not listed first
    page.select_option("#exp-system", "traffic")
    page.fill("#exp-approaches", "single-linear,switch,harmonia,oracle")
    page.fill("#exp-limit", "1000")
    page.get_by_role("button", name="Run replay").click()
    link = page.locator("#experiment-list a").first
    link.wait_for(timeout=90_000)  # a link appears once results.json is written
    link.click()
    page.wait_for_selector("#experiment-table")
    page.wait_for_function("() => document.querySelector('#chart-frontier')?.data?.length > 0")
    table = page.inner_text("#experiment-table")
    for approach in ("single-linear", "switch", "harmonia", "oracle"):
        assert approach in table
    names = page.evaluate("() => document.querySelector('#chart-frontier').data.map(t => t.name)")
    assert names[0] == "oracle frontier" and "harmonia" in names
    page.wait_for_selector("#chart-frontier[data-labels]")  # each approach named on the chart
    shot(page, "experiments")


def test_the_system_stops_from_the_page(
    page: Any, server: Any, live: dict[str, Any], shot: Any
) -> None:
    goto(page, "#/run")
    page.get_by_role("button", name=f"Stop #{live['id']}").click()
    page.locator(f"#run-table tr[data-run='{live['id']}']").get_by_text("stopped").wait_for()
    assert server.api("GET", "/runs")[0]["status"] == "stopped"
    shot(page, "run-stopped")
    assert not page.errors, page.errors  # no uncaught error in the page all along


def pipeline_traffic(now: float, traces: int = 20) -> list[dict[str, Any]]:
    """Traced samples of every service of the pipeline: each request goes through camera,
    both classify services (side by side) and the vote, and is correct 3 times in 4."""
    plan = [  # stage, service, model, base latency ms, energy J, start offset s
        ("camera", "conditions", "camera", 2.0, 0.0001, 0.0),
        ("classify", "fast", "small", 10.0, 0.001, 0.005),
        ("classify", "accurate", "large", 30.0, 0.004, 0.005),
        ("aggregate", "vote", "confidence-vote", 1.0, 0.00005, 0.1),
    ]
    samples = []
    for i in range(traces):
        for stage, service, model, latency, energy, offset in plan:
            ms = latency + i  # 10, 11, ... 29 ms for fast: p95 28.05 ms
            samples.append(
                {
                    "stage": stage,
                    "service": service,
                    "model": model,
                    "trace_id": f"request-{i}",
                    "ts": now - 100 + 2 * i + offset + ms / 1000,  # when the inference ended
                    "latency_ms": ms,
                    "energy_j": energy,
                    "prediction": 1.0,
                    "target": 0.0 if i % 4 == 0 else 1.0,
                }
            )
    return samples


def test_a_pipeline_shows_its_stages_services_and_live_numbers(
    page: Any, server: Any, shot: Any
) -> None:
    login(page, server)
    structure = yaml.safe_load((ROOT / "examples" / "apps" / "pipeline.yaml").read_text())
    structure["name"] = PIPELINE
    token = server.api("POST", "/apps", json=structure)["token"]
    models = {"fast": ["small", "medium"], "accurate": ["medium", "large"]}
    for service, initial in (("fast", "small"), ("accurate", "large")):
        policy = {
            "policy": f"{PIPELINE}-{service}",
            "system": PIPELINE,
            "models": models[service],
            "initial_model": initial,
            "objective": {"quality": "accuracy", "energy_range_j": [0, 0.01]},
            "window": 10,
            "strategy": "switch",
            "boundaries": [{"when": "quality < 0.1", "then": "switch_model"}],
        }
        server.api("PUT", f"/apps/{PIPELINE}/services/{service}/policy", json=policy)
    app_auth = {"Authorization": f"Bearer {token}"}
    base = f"{server.url}/api/v1/apps/{PIPELINE}"
    httpx.post(
        f"{base}/services/fast/instances",
        json={"name": "fast-1", "node": "gpu-node-1", "labels": {"accelerator": "h100"}},
        headers=app_auth,
    ).raise_for_status()
    samples = pipeline_traffic(time.time())
    for service in ("conditions", "fast", "accurate", "vote"):
        mine = [s for s in samples if s["service"] == service]
        httpx.post(
            f"{base}/telemetry",
            json={"instance": f"{service}-1", "samples": mine},
            headers=app_auth,
        ).raise_for_status()
    # what the page must show, from what was sent
    fast = [s["latency_ms"] for s in samples if s["service"] == "fast"]
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_trace.setdefault(s["trace_id"], []).append(s)
    e2e = [
        (max(s["ts"] for s in t) - min(s["ts"] - s["latency_ms"] / 1000 for s in t)) * 1000
        for t in by_trace.values()
    ]

    # the overview counts the services and links to the pipeline
    goto(page, "#/")
    row = page.locator(f"#overview tr[data-app='{PIPELINE}']")
    row.wait_for()
    assert row.get_attribute("data-services") == "4"
    row.get_by_role("link", name=f"{PIPELINE} pipeline").click()
    route = f"#/app/{PIPELINE}/pipeline"
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)

    # three stages in topological order, one column each, edges from `after`
    stages = page.eval_on_selector_all(
        "#pipeline-graph [data-stage]",
        "els => els.map(e => [e.dataset.stage, e.dataset.column, e.getBoundingClientRect().x,"
        " [...e.querySelectorAll('[data-service]')].map(s => s.dataset.service)])",
    )
    assert [(s[0], s[1], s[3]) for s in stages] == [
        ("camera", "0", ["conditions"]),
        ("classify", "1", ["fast", "accurate"]),
        ("aggregate", "2", ["vote"]),
    ]
    assert stages[0][2] < stages[1][2] < stages[2][2]  # drawn left to right
    edges = page.eval_on_selector_all(
        "#pipeline-edges path.edge", "els => els.map(e => [e.dataset.from, e.dataset.to])"
    )
    assert edges == [["camera", "classify"], ["classify", "aggregate"]]
    assert page.inner_text("#stage-classify .after") == "after camera"

    # end to end: every request went through every stage
    assert page.inner_text("#e2e-traces") == "20"
    assert page.inner_text("#e2e-complete").startswith("20 (100 %)")
    p95 = float(page.get_attribute("#e2e-p95", "data-value"))
    assert p95 == pytest.approx(np.percentile(e2e, 95), abs=1e-6)
    assert page.inner_text("#e2e-energy") == "5.15 mJ"  # 0.1 + 1 + 4 + 0.05 mJ a request
    # energy per request by stage: in stage order, adding up to the pipeline's
    rows = page.locator("#energy-by-stage tbody tr")
    assert [rows.nth(i).get_attribute("data-stage") for i in range(rows.count())] == [
        "camera",
        "classify",
        "aggregate",
    ]
    per_stage = [float(rows.nth(i).get_attribute("data-j-per-request")) for i in range(3)]
    assert sum(per_stage) == pytest.approx(0.00515)
    assert rows.nth(1).locator("td").first.inner_text() == "5 mJ"  # classify: 1 + 4 mJ
    assert rows.nth(1).locator("td.method").inner_text() == "probe"  # no node counter here
    assert "/energy.csv?by=stage" in (page.get_attribute("#energy-csv", "href") or "")

    # each service box: p95, quality, energy, model in service, instances with their node
    box = page.locator("[data-service='fast']")
    assert box.locator("[data-signal='p95(latency_ms)']").inner_text() == (
        f"{np.percentile(fast, 95):.2f} ms"  # 28.05 ms
    )
    assert box.locator("[data-signal='quality']").inner_text() == "accuracy 0.75"
    assert box.locator("[data-signal='energy_j']").inner_text() == "1 mJ"
    assert box.locator("[data-signal='model']").inner_text() == "small"
    assert box.locator("[data-signal='count']").inner_text() == "20"
    assert "adapting" in box.inner_text()  # it has a policy, said in words
    instance = box.locator("li[data-instance='fast-1']")
    assert "gpu-node-1" in instance.inner_text() and "20 samples" in instance.inner_text()
    vote = page.locator("[data-service='vote']")
    assert "no policy" in vote.inner_text()
    assert vote.locator("[data-signal='model']").inner_text().startswith("confidence-vote")
    classify = page.locator("#stage-classify .stage-summary")
    assert classify.locator("[data-signal='count']").inner_text() == "40"
    assert classify.locator("[data-signal='energy_j']").inner_text() == "2.5 mJ"
    page.evaluate("() => { document.querySelector('#status').className = 'toast' }")  # no toast
    shot(page, "pipeline")

    # a click on a service box opens the live view of that service
    page.locator("[data-service='accurate']").click()
    route = f"#/app/{PIPELINE}/services/accurate"
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    assert page.get_attribute("#live-service", "data-service") == "accurate"
    assert page.input_value("#service-select") == "accurate"
    assert page.inner_text("#stat-model").startswith("large")
    assert "switch" in page.inner_text("#stat-strategy")
    # its windows only: 20 samples in windows of 10
    page.wait_for_function("() => document.querySelector('#chart-main').dataset.points === '2'")
    # ... and the user can switch to another service of the application
    page.select_option("#service-select", "fast")
    route = f"#/app/{PIPELINE}/services/fast"
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    assert page.inner_text("#stat-model").startswith("small")
    shot(page, "pipeline-service")
    assert not page.errors, page.errors


#: a second copy of the pipeline, held to a contract (the first one's numbers stay as sent)
CONTRACTED = "contract-pipeline"
CONTRACT = """
name: camera-sla
window: 5 min
slos:
  - name: e2e-latency
    scope: end_to_end
    condition: p99(latency_ms) <= 100
    window: 20 samples
    severity: critical
    then: reroute
  - name: vote-latency
    scope: service
    target: vote
    condition: p95(latency_ms) <= 50
"""


def slow_instance_traffic(now: float, traces: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Traced requests through the pipeline, by instance: the fast service's odd requests go
    to ``fast-2``, which takes 300 ms (the others take 10 ms a service)."""
    batches: dict[str, list[dict[str, Any]]] = {}
    for i in range(traces):
        begin = now - 60 + i * 0.5
        fast = "fast-2" if i % 2 else "fast-1"
        steps = [  # stage, service, instance, model, latency ms
            ("camera", "conditions", "conditions-1", "camera", 5.0),
            ("classify", "fast", fast, "small", 300.0 if fast == "fast-2" else 10.0),
            ("classify", "accurate", "accurate-1", "large", 10.0),
            ("aggregate", "vote", "vote-1", "confidence-vote", 5.0),
        ]
        clock = begin
        for stage, service, instance, model, latency in steps:
            if service != "accurate":  # accurate runs beside fast
                clock += latency / 1000
            batches.setdefault(instance, []).append(
                {
                    "stage": stage,
                    "service": service,
                    "trace_id": f"slow-{i}",
                    "model": model,
                    "ts": clock if service != "accurate" else begin + 0.015,
                    "latency_ms": latency,
                }
            )
    return batches


def test_a_contract_shows_each_slo_and_explains_a_violation(
    page: Any, server: Any, shot: Any
) -> None:
    login(page, server)
    structure = yaml.safe_load((ROOT / "examples" / "apps" / "pipeline.yaml").read_text())
    structure["name"] = CONTRACTED
    token = server.api("POST", "/apps", json=structure)["token"]
    app_auth = {"Authorization": f"Bearer {token}"}
    base = f"{server.url}/api/v1/apps/{CONTRACTED}"
    for name, node in (("fast-1", "edge-1"), ("fast-2", "edge-2")):
        httpx.post(
            f"{base}/services/fast/instances", json={"name": name, "node": node}, headers=app_auth
        ).raise_for_status()

    # without a contract, the page says so and shows how to set one
    route = f"#/app/{CONTRACTED}/contract"
    goto(page, route)
    empty = page.locator("#no-contract")
    assert empty.is_visible()
    assert "has no contract yet" in empty.inner_text()
    assert f"PUT /api/v1/apps/{CONTRACTED}/contract" in empty.inner_text()
    assert "condition: p99(latency_ms) <= 300" in empty.inner_text()  # a YAML example

    httpx.put(f"{base}/contract", content=CONTRACT, headers=app_auth).raise_for_status()
    for instance, samples in slow_instance_traffic(time.time()).items():
        httpx.post(
            f"{base}/telemetry", json={"instance": instance, "samples": samples}, headers=app_auth
        ).raise_for_status()

    # the sub-navigation leads to the contract; "Check now" checks it at once
    goto(page, f"#/app/{CONTRACTED}/pipeline")
    page.locator("#nav-contract").click()
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    assert page.locator("#contract-view").is_visible()
    page.get_by_role("button", name="Check now").click()
    page.wait_for_function("() => document.querySelector('#slo-list').dataset.checked === '1'")

    e2e = page.locator("article.slo[data-slo='e2e-latency']")
    assert e2e.get_attribute("data-status") == "violated"
    assert e2e.locator(".slo-status").first.inner_text() == "✗ violated"  # a word, not a colour
    assert e2e.locator(".condition").inner_text() == "p99(latency_ms) <= 100"
    assert e2e.locator(".scope").inner_text() == "end to end"
    assert e2e.locator(".window").inner_text().startswith("20 samples")
    check = e2e.locator("table.checks tr[data-signal='p99(latency_ms)']")
    assert float(check.get_attribute("data-value")) > 100  # the actual value
    assert "<= 100 ms" in check.inner_text()  # against its threshold
    explanation = e2e.locator(".explanation").inner_text()
    assert "classify" in explanation and "fast-2" in explanation and "edge-2" in explanation
    blamed = e2e.locator(".blame li[data-instance='fast-2']").first
    assert blamed.get_attribute("data-node") == "edge-2"
    assert blamed.get_attribute("data-stage") == "classify"
    assert "service fast" in blamed.inner_text()
    vote = page.locator("article.slo[data-slo='vote-latency']")
    assert vote.get_attribute("data-status") == "met"
    assert vote.locator(".slo-status").first.inner_text() == "✓ met"
    assert vote.locator(".scope").inner_text() == "service vote"
    assert vote.locator(".explanation").count() == 0

    # the violation is listed with the reroute it led to, linked to the history
    row = page.locator("#violation-list tbody tr[data-slo='e2e-latency']")
    row.wait_for()
    assert page.locator("#violation-list tbody tr").count() == 1
    assert "critical" in row.inner_text() and "fast-2" in row.inner_text()
    taken = row.locator(".taken")
    assert taken.get_attribute("data-kind") == "reroute"
    assert "reroute → fast" in taken.inner_text() and "away from fast-2" in taken.inner_text()
    action_id = row.get_attribute("data-action")
    [violation] = server.api("GET", f"/apps/{CONTRACTED}/violations")
    assert str(violation["action_id"]) == action_id
    page.evaluate(  # no toast in the screenshot
        "() => { const t = document.querySelector('#status'); t.style.transition = 'none';"
        " t.className = 'toast' }"
    )
    shot(page, "contract")

    link = row.get_by_role("link", name="in history")
    assert link.get_attribute("href") == f"#/app/{CONTRACTED}/services/fast/history"
    link.click()
    history = page.locator(f"#history tr[data-action='{action_id}']")
    history.wait_for()
    assert "reroute" in history.inner_text()

    # the pipeline marks the boxes the violated SLO blames, in words
    goto(page, f"#/app/{CONTRACTED}/pipeline")
    fast = page.locator("[data-service='fast']")
    assert fast.get_attribute("data-slo") == "violated"
    assert "blamed for SLO e2e-latency" in fast.locator(".slo-flags").inner_text()
    assert "blamed for e2e-latency" in fast.locator("li[data-instance='fast-2']").inner_text()
    assert fast.locator("li[data-instance='fast-1'] .blamed-instance").count() == 0
    assert page.get_attribute("#stage-classify", "data-slo") == "violated"
    assert "violated" in page.inner_text("#e2e-slos") and "e2e-latency" in page.inner_text(
        "#e2e-slos"
    )
    assert page.get_attribute("[data-service='vote']", "data-slo") == ""  # met: not marked
    assert page.locator("[data-service='vote'] .slo-flags").is_hidden()
    shot(page, "pipeline-contract")
    assert not page.errors, page.errors


#: a third copy of the pipeline, watched by observers
OBSERVED = "observed-pipeline"
OBSERVERS = """
observers:
  - name: fast_outliers
    observer: isolation_forest
    params: {contamination: 0.02}
    metrics: latency_ms
    service: fast
    window: {size: 500}
    every: {samples: 500}
  - name: fast_latency
    observer: summary
    service: fast
    window: {size: 500}
    every: {samples: 500}
"""


def test_observers_show_their_latest_runs_and_the_flagged_samples(
    page: Any, server: Any, shot: Any
) -> None:
    login(page, server)
    structure = yaml.safe_load((ROOT / "examples" / "apps" / "pipeline.yaml").read_text())
    structure["name"] = OBSERVED
    token = server.api("POST", "/apps", json=structure)["token"]
    app_auth = {"Authorization": f"Bearer {token}"}
    base = f"{server.url}/api/v1/apps/{OBSERVED}"

    # without observers, the page says so and shows how to set them
    route = f"#/app/{OBSERVED}/observers"
    goto(page, route)
    empty = page.locator("#no-observers")
    assert empty.is_visible()
    assert "has no observers yet" in empty.inner_text()
    assert f"PUT /api/v1/apps/{OBSERVED}/observers" in empty.inner_text()
    assert "observer: isolation_forest" in empty.inner_text()  # a YAML example

    httpx.put(f"{base}/observers", content=OBSERVERS, headers=app_auth).raise_for_status()
    rng = np.random.default_rng(3)
    start = time.time() - 600
    spikes = set(rng.choice(500, size=10, replace=False).tolist())  # 2 %
    samples = [
        {
            "stage": "classify",
            "service": "fast",
            "model": "small",
            "ts": start + i,
            "latency_ms": float(rng.normal(20.0, 2.0) * (rng.uniform(4, 8) if i in spikes else 1)),
        }
        for i in range(500)
    ]
    for first in range(0, 500, 100):  # the observers run once, on the fifth batch
        httpx.post(
            f"{base}/telemetry",
            json={"instance": "fast-1", "samples": samples[first : first + 100]},
            headers=app_auth,
        ).raise_for_status()

    # the sub-navigation leads to the observers; the page rereads their runs by itself
    goto(page, f"#/app/{OBSERVED}/contract")
    page.locator("#nav-observers").click()
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    page.wait_for_function(
        "() => [...document.querySelectorAll('article.observer')]"
        ".filter((a) => a.dataset.run).length === 2",
        timeout=30_000,
    )
    summary = page.locator("article.observer[data-observer='fast_latency']")
    assert summary.get_attribute("data-kind") == "summary"
    assert summary.locator(".run-error").count() == 0
    p50 = summary.locator("table.values tr[data-field='p50']")
    assert float(p50.get_attribute("data-value")) == pytest.approx(20.0, abs=1.0)
    assert "observer.fast_latency.p50" in p50.inner_text()
    assert "1 / 0" in summary.locator(".stats").inner_text()  # runs / errors

    forest = page.locator("article.observer[data-observer='fast_outliers']")
    flagged = int(forest.get_attribute("data-flagged"))
    assert 7 <= flagged <= 13
    assert f"{flagged} samples" in forest.locator(".flagged").inner_text()
    assert "500 samples" in forest.locator(".when").inner_text()
    assert forest.locator(".observer-explanation").inner_text().strip()
    chart = page.locator("#observer-chart-fast_outliers")
    assert int(chart.get_attribute("data-points")) == flagged  # drawn, one mark a sample
    assert summary.locator(".chart").count() == 0  # nothing flagged: no chart
    page.evaluate(  # no toast in the screenshot
        "() => { const t = document.querySelector('#status'); t.style.transition = 'none';"
        " t.className = 'toast' }"
    )
    shot(page, "observers")
    assert not page.errors, page.errors


DEPLOYED = "deployed-pipeline"


def test_nodes_show_their_load_and_a_deployment_explains_its_plan(
    page: Any, server: Any, shot: Any
) -> None:
    login(page, server)
    goto(page, "#/nodes")
    assert page.locator("#no-nodes").is_visible()  # the inventory is empty: it says so
    nodes = [
        {"name": "edge-1", "cores": 2, "memory_mib": 4096, "labels": {"site": "lab"}},
        {"name": "edge-2", "cores": 2, "memory_mib": 4096, "labels": {"site": "lab"}},
    ]
    server.api("PUT", "/nodes", json={"nodes": nodes})
    structure = yaml.safe_load((ROOT / "examples" / "apps" / "pipeline.yaml").read_text())
    structure["name"] = DEPLOYED
    token = server.api("POST", "/apps", json=structure)["token"]
    services = [s["name"] for stage in structure["stages"] for s in stage["services"]]
    deployment = {
        "placer": "first-fit",
        "services": [
            {"name": services[0], "cpu_millicores": 1500, "memory_mib": 512},
            {"name": services[1], "cpu_millicores": 1500, "memory_mib": 512, "replicas": 2},
            # fits nowhere: reported, not placed
            {"name": services[2], "cpu_millicores": 4000, "memory_mib": 512},
        ],
    }
    reply = httpx.put(
        f"{server.url}/api/v1/apps/{DEPLOYED}/deployment",
        json=deployment,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 201, reply.text

    goto(page, "#/")
    goto(page, "#/nodes")
    first = page.locator("#nodes tr[data-node='edge-1']")
    assert float(first.locator(".load").get_attribute("data-share")) == pytest.approx(0.75)
    assert f"{DEPLOYED}/{services[0]}" in first.locator(".runs").inner_text()
    assert "site=lab" in first.inner_text()
    shot(page, "nodes")

    first.get_by_role("link", name=f"{DEPLOYED}/{services[0]}").click()
    route = f"#/app/{DEPLOYED}/deployment"
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    assert "Version 1" in page.locator("#plan-summary").inner_text()
    assert page.locator("#placements tbody tr").count() == 2
    assert f"{services[2]}#0" in page.locator("#unplaced").inner_text()
    why = page.locator(f"#explanations article[data-service='{services[2]}']")
    assert "unplaced" in why.inner_text() and "cpu" in why.locator(".rejected").inner_text()
    assert page.locator("#deployment-history tr[data-status='applied']").count() == 1
    href = page.locator("#manifests-link").get_attribute("href")
    manifests = httpx.get(f"{server.url}{href}")
    assert manifests.status_code == 200 and "kind: Deployment" in manifests.text
    shot(page, "deployment")
    assert not page.errors, page.errors


# -- the registry: models and datasets per domain ----------------------------------------------

VENDOR = "vendor-lab"
OPERATOR = "operator-prod"
#: the bytes of the uploads, so that the page's checksums and sizes can be checked
FLOWS = b"hour,flow\n0,120\n1,95\n"
LSTM = {1: b"lstm-weights-v1" * 64, 2: b"lstm-weights-v2" * 128}
#: joules per inference of lstm v2 in service in the operator's domain
SERVING_J = 0.004


def upload(server: Any, kinds: str, name: str, content: bytes, metadata: dict[str, Any]) -> Any:
    reply = httpx.post(
        f"{server.url}/api/v1/domains/{VENDOR}/{kinds}/{name}/versions",
        headers={"Authorization": f"Bearer {server.admin}"},
        files={"file": (f"{name}.bin", content)},
        data={"metadata": json.dumps(metadata)},
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


@pytest.fixture(scope="module")
def catalog(server: Any) -> dict[str, Any]:
    """A vendor's dataset and two versions of a model trained on it (the second retrained
    from the first), the second promoted to production, the model granted to an operator's
    domain that serves it, and the energy of each version's training and evaluation."""
    if VENDOR in {d["name"] for d in server.api("GET", "/domains")}:
        return {}  # made by an earlier test of this session
    server.api("POST", "/orgs", json={"name": "acme"})
    server.api("POST", "/orgs", json={"name": "telco"})
    server.api("POST", "/domains", json={"name": VENDOR, "org": "acme"})
    server.api("POST", "/domains", json={"name": OPERATOR, "org": "telco"})
    upload(server, "datasets", "flows", FLOWS, {"label": "2024-06", "tags": ["traffic"]})
    upload(
        server,
        "models",
        "lstm",
        LSTM[1],
        {"label": "1.0", "tags": ["edge"], "library": "torch", "trained_on": "flows@1"},
    )
    upload(
        server,
        "models",
        "lstm",
        LSTM[2],
        {
            "label": "2.0",
            "tags": ["edge", "beta"],
            "library": "torch",
            "trained_on": "flows@1",
            "retrained_from": "lstm@1",
            "energy": {"energy_j_per_inference": 0.0042},  # as stored with it: 4.2 mJ
        },
    )
    lstm = f"/domains/{VENDOR}/models/lstm"
    server.api("PUT", f"{lstm}/aliases/staging", json={"version": 1, "reason": "first candidate"})
    server.api("PUT", f"{lstm}/aliases/staging", json={"version": 2, "reason": "retrained"})
    server.api("POST", f"{lstm}/promote", json={"note": "r2 0.93 on last week's traffic"})
    server.api("PUT", f"{lstm}/grants/{OPERATOR}")
    for version, phase, joules in [
        (1, "training", 1200.0),
        (1, "evaluation", 35.0),
        (2, "training", 800.0),
        (2, "evaluation", 30.0),
    ]:
        server.api(
            "POST",
            f"{lstm}/versions/{version}/energy",
            json={"phase": phase, "joules": joules, "seconds": 60, "source": "rapl"},
        )
    # the operator serves v2: its telemetry says so, with the energy of each inference
    app = {"name": "lstm-serving", "owner": "ops", "models": ["lstm"], "domain": OPERATOR}
    token = server.api("POST", "/apps", json=app)["token"]
    now = time.time()
    samples = [
        {"model": "lstm", "model_version": 2, "ts": now - 60 + i, "energy_j": SERVING_J}
        for i in range(40)
    ]
    httpx.post(
        f"{server.url}/api/v1/apps/lstm-serving/telemetry",
        json={"samples": samples},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    return {"lstm": lstm}


def no_raw_error(text: str) -> None:
    """A page says what went wrong in words: no JSON, no status detail, no stack."""
    assert "{" not in text and '"detail"' not in text and "Error:" not in text, text


def test_catalog_lists_models_and_datasets_per_domain(
    page: Any, server: Any, shot: Any, request: pytest.FixtureRequest
) -> None:
    # logged out, the page says the registry needs a token (another tab: this one stays in)
    other = page.context.new_page()
    other.goto(f"{server.url}/#/catalog")
    other.wait_for_selector("#main[data-ready='#/catalog']")
    assert "Log in to read the registry" in other.locator("#catalog-login").inner_text()
    other.close()

    login(page, server)
    server.api("POST", "/orgs", json={"name": "empty-org"})
    server.api("POST", "/domains", json={"name": "empty-domain", "org": "empty-org"})
    page.locator("nav a[data-nav='catalog']").click()
    page.wait_for_selector("#main[data-ready='#/catalog']")
    assert page.get_attribute("nav a[data-nav='catalog']", "aria-current") == "page"
    empty = page.locator("#empty-empty-domain")
    assert "No model or dataset in empty-domain yet" in empty.inner_text()
    assert "harmonia models push model.pt --name NAME --domain empty-domain" in empty.inner_text()

    request.getfixturevalue("catalog")
    goto(page, "#/")
    goto(page, "#/catalog")
    vendor = page.locator(f"section.domain[data-domain='{VENDOR}']")
    lstm = vendor.locator(f"#models-{VENDOR} tr[data-name='lstm']")
    assert lstm.get_attribute("data-latest") == "2"
    assert "v2 · 2.0" in lstm.locator(".latest-version").inner_text()
    assert "production → v2" in lstm.locator(".aliases").inner_text()
    assert "staging → v2" in lstm.locator(".aliases").inner_text()
    assert lstm.locator(".tag").all_inner_texts() == ["beta", "edge"]
    assert lstm.locator(".grants").inner_text() == OPERATOR
    flows = vendor.locator(f"#datasets-{VENDOR} tr[data-name='flows']")
    assert flows.get_attribute("data-latest") == "1"
    assert "development" in flows.inner_text() and "traffic" in flows.inner_text()
    # the operator's domain has nothing of its own, but reads what was shared with it
    operator = page.locator(f"section.domain[data-domain='{OPERATOR}']")
    assert operator.locator(f"#empty-{OPERATOR}").is_visible()
    shared = operator.locator(f"#shared-{OPERATOR} li[data-name='{VENDOR}/lstm']")
    assert "latest v2" in shared.inner_text()

    # the filter narrows by name or tag, and by status
    page.fill("#catalog-filter", "beta")
    assert lstm.is_visible() and not flows.is_visible()
    page.fill("#catalog-filter", "")
    page.select_option("#catalog-status", "development")
    assert flows.is_visible() and not lstm.is_visible()
    page.select_option("#catalog-status", "")
    assert flows.is_visible() and lstm.is_visible()
    page.evaluate(  # no toast in the screenshot
        "() => { const t = document.querySelector('#status'); t.style.transition = 'none';"
        " t.className = 'toast' }"
    )
    shot(page, "catalog")

    lstm.get_by_role("link", name="lstm").click()
    route = f"#/catalog/{VENDOR}/models/lstm"
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    assert not page.errors, page.errors


def test_catalog_model_page_shows_versions_lineage_promotions_grants_and_energy(
    page: Any, server: Any, catalog: dict[str, Any], shot: Any
) -> None:
    login(page, server)
    goto(page, f"#/catalog/{VENDOR}/models/lstm")
    rows = page.locator("#versions tbody tr")
    assert [rows.nth(i).get_attribute("data-version") for i in range(rows.count())] == ["2", "1"]
    for version, content in LSTM.items():
        row = page.locator(f"#versions tr[data-version='{version}']")
        sha = hashlib.sha256(content).hexdigest()
        assert row.locator("td.sha code").get_attribute("data-sha256") == sha
        assert sha[:12] in row.locator("td.sha").inner_text()
        assert row.locator("td.size").get_attribute("data-bytes") == str(len(content))
        assert row.locator("td.by").inner_text() == "admin"
        assert f"{version}.0" in row.locator("th").inner_text()  # the label
    v2 = page.locator("#versions tr[data-version='2']")
    assert v2.get_attribute("data-status") == "production"
    assert v2.locator(".trained-on a").inner_text() == f"{VENDOR}/flows@1"
    assert (
        v2.locator(".retrained-from a").get_attribute("href") == f"#/catalog/{VENDOR}/models/lstm/1"
    )

    # aliases with their history (newest first), the promotion with its approval
    assert page.locator("#aliases tr[data-alias='production']").get_attribute("data-version") == "2"
    history = page.locator("#alias-history tbody tr")
    assert history.count() == 3
    moves = [
        (history.nth(i).get_attribute("data-alias"), history.nth(i).locator(".move").inner_text())
        for i in range(3)
    ]
    assert moves == [("production", "set v2"), ("staging", "v1 → v2"), ("staging", "set v1")]
    assert "#1" in history.nth(0).inner_text()
    approval = page.locator("#approvals tr#approval-1")
    assert approval.get_attribute("data-version") == "2"
    assert "staging → production" in approval.inner_text()
    assert "r2 0.93 on last week's traffic" in approval.inner_text()
    # lineage the other way, and the grant
    assert page.locator(f"#derived li[data-ref='{VENDOR}/lstm@2']").is_visible()
    assert page.locator(f"#grants tr[data-domain='{OPERATOR}']").is_visible()

    # energy from training to serving, one small chart per version
    card = page.locator("#energy article[data-version='2']")
    assert card.locator(".training").inner_text() == "800 J"
    assert card.locator(".evaluation").inner_text() == "30 J"
    assert f"4 mJ in {OPERATOR} (40 samples)" in card.locator(".serving").inner_text()
    assert card.locator(".stored").inner_text() == "4.2 mJ"  # the registry's, apart, in mJ
    assert page.get_attribute("#energy-chart-2", "data-points") == "3"
    traces = page.evaluate(
        "() => document.querySelector('#energy-chart-2').data.map((t) => [t.x, t.y])"
    )
    assert traces[0] == [["training", "evaluation"], [800, 30]]
    assert traces[1][0] == [OPERATOR] and traces[1][1][0] == pytest.approx(SERVING_J * 1000)
    assert page.get_attribute("#energy-chart-1", "data-points") == "2"  # not served
    assert (
        "not served yet" in page.locator("#energy article[data-version='1'] .serving").inner_text()
    )
    shot(page, "catalog-model")

    # the lineage link opens the dataset at that version
    v2.locator(".trained-on a").click()
    route = f"#/catalog/{VENDOR}/datasets/flows/1"
    page.wait_for_function("r => document.querySelector('#main').dataset.ready === r", arg=route)
    selected = page.locator("#versions tr[data-version='1']")
    assert "selected" in selected.get_attribute("class")
    assert (
        selected.locator("td.sha code").get_attribute("data-sha256")
        == hashlib.sha256(FLOWS).hexdigest()
    )
    derived = page.locator("#derived li")
    assert sorted(derived.all_inner_texts()) == [
        f"{VENDOR}/lstm@1 trained on v1",
        f"{VENDOR}/lstm@2 trained on v1",
    ]
    # nothing there yet: each part says so and shows how to fill it
    assert (
        "PUT /api/v1/domains/vendor-lab/datasets/flows/grants/{domain}"
        in page.locator("#no-grants").inner_text()
    )
    assert "/promote" in page.locator("#no-approvals").inner_text()
    assert "/versions/{version}/energy" in page.locator("#no-energy").inner_text()
    shot(page, "catalog-dataset")

    # what is not there is said in words
    goto(page, f"#/catalog/{VENDOR}/models/nope")
    problem = page.locator("#catalog-problem")
    assert problem.get_attribute("data-status") == "404"
    assert f"There is no model {VENDOR}/nope" in problem.inner_text()
    no_raw_error(page.locator("#main").inner_text())
    assert not page.errors, page.errors


# -- the first hour: what a new user stumbled on ------------------------------------------------


def test_saving_a_policy_keeps_the_status_cards(
    page: Any, server: Any, live: dict[str, Any]
) -> None:
    """Saving a policy puts it in force at the next window: until then the cards still show
    the version in service and the last window's score, quality, energy and drift, as they
    did before the save. (A window may lack a score: the last part of a window cut at a
    switch can be one sample, too few for R². The card then shows "—" before and after.)"""
    login(page, server)
    # the live run has closed windows and is stopped by now (unless this test runs alone)
    deadline = time.monotonic() + 60
    while server.api("GET", f"/apps/{APP}/status")["window"] is None:
        assert time.monotonic() < deadline, "no window closed in 60 s"
        time.sleep(0.5)
    if server.api("GET", "/runs")[0]["status"] == "running":
        server.api("DELETE", f"/runs/{live['id']}")
    before = server.api("GET", f"/apps/{APP}/status")
    cards = ("stat-score", "stat-quality", "stat-energy", "stat-drift")
    goto(page, f"#/app/{APP}")
    page.wait_for_selector("#stat-energy")
    shown = {card: page.inner_text(f"#{card}") for card in cards}
    assert shown["stat-energy"] != "—", "a closed window has an energy"
    goto(page, f"#/policies/{APP}")
    page.wait_for_selector("#policy-valid")
    page.get_by_role("button", name="Save as new version and apply").click()
    page.get_by_text(re.compile(r"Saved as version \d+")).wait_for()
    after = server.api("GET", f"/apps/{APP}/status")
    assert after["policy_version"] == before["policy_version"] + 1
    assert (after["model"], after["version"]) == (before["model"], before["version"])
    assert after["window"] == before["window"]
    goto(page, f"#/app/{APP}")
    assert page.inner_text("#stat-model") == f"{before['model']} v{before['version']}"
    assert {card: page.inner_text(f"#{card}") for card in cards} == shown
    assert f"(policy v{after['policy_version']})" in page.inner_text("#stat-strategy")


#: a service that reports from elsewhere (no run started here), then goes quiet
QUIET = "quiet-service"
#: both boundaries fire on every window: a switch and a retrain decided in one window, then
#: decisions held by the cooldown (they change nothing); only the switch strategy's own drift
#: detector (kl), which the samples give nothing to compare (no drift_value)
BOTH_KINDS = {
    "policy": "quiet-both",
    "system": QUIET,
    "models": ["linear", "svm", "lstm"],
    "initial_model": "lstm",
    "window": "50 samples",
    "strategy": "switch",
    "boundaries": [
        {"when": "quality < 2 and energy_j < 1", "then": "switch_model"},
        {"when": "quality < 2", "then": "retrain"},
    ],
    "cooldown": "2 windows",
}


def quiet_samples(start: float, n: int = 50) -> list[dict[str, Any]]:
    """``n`` samples of lstm half a second apart from ``start``, 12-16 ms each."""
    rng = np.random.default_rng(int(start))
    targets = rng.normal(100, 20, n)
    return [
        {
            "model": "lstm",
            "model_version": 1,
            "ts": start + i * 0.5,
            "latency_ms": 12.0 + i % 5,
            "energy_j": 0.002,
            "energy_source": "estimate",
            "prediction": float(t + rng.normal(0, 4)),
            "target": float(t),
        }
        for i, t in enumerate(targets)
    ]


def test_a_quiet_service_says_since_when_and_shows_each_decision(
    page: Any, server: Any, shot: Any
) -> None:
    login(page, server)
    token = server.api(
        "POST", "/apps", json={"name": QUIET, "owner": "team", "models": BOTH_KINDS["models"]}
    )["token"]
    server.api("PUT", f"/apps/{QUIET}/policy", json=BOTH_KINDS)
    telemetry = f"{server.url}/api/v1/apps/{QUIET}/telemetry"
    app_auth = {"Authorization": f"Bearer {token}"}
    # two windows 25 minutes ago, then nothing
    long_ago = time.time() - 25 * 60
    reply = httpx.post(telemetry, json={"samples": quiet_samples(long_ago, 100)}, headers=app_auth)
    reply.raise_for_status()
    [last] = server.api("GET", f"/apps/{QUIET}/windows?limit=1")
    # the time of day, with the date in front when the last window closed before today
    # (25 minutes ago is yesterday for a run that crosses midnight)
    hhmm = page.evaluate(
        """ts => {
          const d = new Date(ts * 1000);
          const hm = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
          if (d.toDateString() === new Date().toDateString()) return hm;
          return `${d.toLocaleDateString([], {day: 'numeric', month: 'short'})}, ${hm}`;
        }""",
        last["end"],
    )

    # the overview says the telemetry stopped, and since when
    goto(page, "#/")
    freshness = page.locator(f"#overview tr[data-app='{QUIET}'] .freshness")
    assert freshness.get_attribute("data-state") == "silent"
    assert freshness.inner_text() == f"no telemetry since {hhmm}"

    # the last 15 minutes hold nothing: said once above the charts, and in each chart
    goto(page, f"#/app/{QUIET}")
    notice = page.locator("#live-notice")
    assert notice.is_visible()
    assert notice.inner_text().startswith(f"No telemetry since {hhmm} (")
    assert "nothing in this range" in notice.inner_text()
    for chart in ("chart-main", "chart-energy", "chart-latency", "chart-drift", "chart-share"):
        assert page.get_attribute(f"#{chart}", "data-empty") == f"No telemetry since {hhmm}"
    reporting = page.locator("#stat-reporting")
    assert reporting.get_attribute("data-state") == "silent"
    assert reporting.inner_text() == f"no telemetry since {hhmm}"  # and no run started here
    shot(page, "live-quiet")

    # all time: the switch and the retrain of the first window are both seen
    notice.get_by_role("button", name="Show all time").click()
    page.wait_for_function("() => document.querySelector('#chart-main').dataset.points === '2'")
    assert page.input_value("#range") == "all"
    marks = page.evaluate(
        "() => document.querySelector('#chart-main').data"
        ".filter(t => ['switch', 'retrain'].includes(t.name))"
        ".map(t => [t.name, +new Date(t.x[0]), t.y[0], t.hovertext[0]])"
    )
    by_kind = {name: (x, y, hover) for name, x, y, hover in marks}
    assert sorted(by_kind) == ["retrain", "switch"]
    (x_s, y_s, hover_s), (x_r, y_r, hover_r) = by_kind["switch"], by_kind["retrain"]
    assert x_s == x_r and y_s != y_r  # one window, one above the other
    # each one's hover names the other
    assert hover_s.startswith("<b>switch_model") and "same window:</b> retrain" in hover_s
    assert hover_r.startswith("<b>retrain") and "same window:</b> switch_model" in hover_r
    # no drift statistic: the drift chart says why instead of staying blank
    drift = page.get_attribute("#chart-drift", "data-empty") or ""
    assert drift.startswith("No drift statistic yet from kl: the samples carry no drift_value")
    assert page.get_attribute("#chart-main", "data-empty") is None
    assert notice.inner_text().startswith(f"No telemetry since {hhmm}")  # still quiet
    shot(page, "live-two-decisions")

    # the service reports again (an sdk service, not a run started here): it says so
    now = time.time()
    reply = httpx.post(telemetry, json={"samples": quiet_samples(now - 25)}, headers=app_auth)
    reply.raise_for_status()
    page.wait_for_function(
        "() => document.querySelector('#stat-reporting').dataset.state === 'live'"
    )
    assert reporting.inner_text().startswith("yes, last window")
    assert "started here" not in reporting.inner_text()
    page.wait_for_function("() => document.querySelector('#live-notice').hidden")

    # decisions that changed nothing say so, not "applied"
    goto(page, f"#/app/{QUIET}/history")
    page.check("#show-noops")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#history tbody tr')]"
        ".some(r => r.textContent.includes('none'))"
    )
    rows = page.locator("#history tbody tr")
    kinds = {"none": 0, "switch_model": 0, "retrain": 0}
    for i in range(rows.count()):
        row = rows.nth(i)
        kind = row.locator("td strong").first.inner_text()
        kinds[kind] += 1
        outcome = row.locator("td .badge").last.inner_text()
        if kind == "none":
            assert outcome == "no change"
        else:
            assert outcome in ("pending", "delivered")
    assert kinds["none"] >= 2 and kinds["switch_model"] == kinds["retrain"] == 1
    # the values a decision read: energy in mJ, as everywhere (the API keeps joules)
    switch = rows.filter(has=page.locator("td strong", has_text="switch_model"))
    assert switch.locator("li[data-value='energy_j']").inner_text() == "energy_j = 2 mJ"
    # before / after the retrain: one window each side, the p95 with its unit
    rows.filter(has=page.locator("td strong", has_text="retrain")).get_by_role(
        "button", name="Before / after"
    ).click()
    page.wait_for_selector("#before-after")
    heads = page.locator("#before-after thead th").all_inner_texts()
    assert heads[1:] == ["before (1 window)", "the decision read", "after (1 window)"]
    p95 = page.locator("#before-after tr[data-signal='p95(latency_ms)']")
    assert p95.locator("th").inner_text() == "p95 latency"
    for cell in p95.locator("td:not(.decided)").all_inner_texts():
        assert re.fullmatch(r"1\d(\.\d+)? ms", cell), cell
    # one source: the figure the decision stored (its context), not one recomputed, in mJ
    energy = page.locator("#before-after tr[data-signal='energy_j']")
    assert energy.locator("td.decided").inner_text() == "2 mJ"
    assert energy.locator("td").all_inner_texts() == ["2 mJ"] * 3
    shot(page, "history-no-change")

    # a policy without any drift detector: the drift chart says that
    single = {**BOTH_KINDS, "policy": "quiet-single", "strategy": "single", "boundaries": []}
    server.api("PUT", f"/apps/{QUIET}/policy", json=single)
    goto(page, "#/")  # away first: the live page is read afresh, with the new policy's status
    goto(page, f"#/app/{QUIET}")
    page.wait_for_selector("#chart-drift[data-empty]")
    assert page.get_attribute("#chart-drift", "data-empty").startswith(
        "No drift detector: policy quiet-single (strategy single) measures no drift."
    )
    assert page.get_attribute("#chart-main", "data-empty") is None  # the rest is drawn
    assert not page.errors, page.errors


def test_the_run_page_keeps_a_policy_the_user_edited(
    page: Any, server: Any, live: dict[str, Any], shot: Any
) -> None:
    login(page, server)
    # Start is off while the app runs (test_run_page): stopped already when the module runs
    # in order, not when this test runs alone
    if server.api("GET", "/runs")[0]["status"] == "running":
        server.api("DELETE", f"/runs/{live['id']}")
    version = server.api("GET", f"/apps/{APP}/policy")["version"]
    goto(page, "#/run")
    page.select_option("#run-system", "traffic")
    page.fill("#run-app", APP)
    page.wait_for_selector(f"#run-approach[data-app='{APP}']")
    # the application exists with a policy: keeping it is the default, and said so
    assert page.input_value("#run-approach") == ""
    keep = page.locator("#run-approach option[value='']").inner_text()
    assert keep.startswith(f"keep {APP}'s policy (v{version}")
    note = page.locator("#approach-note")
    assert f"its policy v{version} stays in force" in note.inner_text()
    # a preset chosen on purpose says what it replaces
    page.select_option("#run-approach", "traffic-live")
    assert f"in place of v{version}" in note.inner_text()
    page.select_option("#run-approach", "")
    shot(page, "run-keep-policy")

    # Start sends no preset, so the server keeps the policy in force (the run is not started:
    # the request is answered here)
    sent: list[Any] = []

    def answer(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        sent.append(route.request.post_data_json)
        route.fulfill(status=201, json={"id": 999, "system": "traffic", "app": APP})

    page.route("**/api/v1/runs", answer)
    try:
        page.get_by_role("button", name="Start").click()
        page.wait_for_function("() => document.querySelector('#status').textContent.includes(999)")
    finally:
        page.unroute("**/api/v1/runs")
    assert sent == [{"system": "traffic", "app": APP, "preset": None, "rate": sent[0]["rate"]}]
    assert server.api("GET", f"/apps/{APP}/policy")["version"] == version
    assert not page.errors, page.errors


def test_the_energy_accuracy_plot_uses_a_log_axis_and_names_apart(
    page: Any, server: Any, shot: Any
) -> None:
    """The replay run earlier on this page: approaches a hundred times apart in energy do
    not pile up at the left edge, and no two names on the chart overlap."""
    login(page, server)
    goto(page, "#/experiments")
    page.wait_for_selector("#chart-frontier[data-labels]")
    chart = page.evaluate(
        "() => { const c = document.querySelector('#chart-frontier');"
        " return {type: c._fullLayout.xaxis.type, title: c.layout.xaxis.title.text,"
        " names: c.data.slice(1).map(t => t.name), frontier: c.data[0].x} }"
    )
    assert chart["type"] == "log" and "log scale" in chart["title"]
    assert chart["frontier"] and min(chart["frontier"]) > 0
    labels = page.eval_on_selector_all(
        "#chart-frontier g.annotation",
        "els => els.map(e => { const r = e.querySelector('text').getBoundingClientRect();"
        " return [e.textContent, r.left, r.top, r.right, r.bottom] })",
    )
    assert sorted(label[0] for label in labels) == sorted(chart["names"])
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            apart = a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2]
            assert apart, (a, b)
    shot(page, "experiments-labels")
    assert not page.errors, page.errors
