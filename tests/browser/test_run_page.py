"""The Run page warns, next to Start, when the chosen application already has a run going:
the server runs one at a time per application (a second would feed the same loop and obey
its actions too) and refuses a second Start with 409, naming the run. The page says so
before Start is pressed, and shows the server's refusal when its list was behind.

Its own module, so its own server (the `server` fixture is per module): the run it starts
is not the one `test_dashboard` follows."""

from __future__ import annotations

import re
from typing import Any

from browser.test_dashboard import goto, login

BUSY = "busy-traffic"


def test_the_run_page_warns_when_the_app_already_runs_and_shows_a_refusal(
    page: Any, server: Any
) -> None:
    run = server.api(
        "POST", "/runs", json={"system": "traffic", "app": BUSY, "rate": 5, "loop": True}
    )
    try:
        login(page, server)
        goto(page, "#/run")
        start = page.get_by_role("button", name="Start", exact=True)
        warning = page.locator("#run-busy")
        page.fill("#run-app", BUSY)
        warning.get_by_text(
            f"A run of {BUSY} is already going (run #{run['id']}, started "
        ).wait_for()
        assert "Stop it first" in warning.inner_text()
        assert start.is_disabled()
        assert start.get_attribute("aria-describedby") == "run-busy"

        # another name: no warning, Start is on again
        page.fill("#run-app", "another-traffic")
        warning.wait_for(state="hidden")
        assert start.is_enabled()

        # a page whose list is behind (here: told nothing runs) lets Start through; the
        # server refuses, and the page shows its answer next to Start
        page.route("**/api/v1/runs", _nothing_runs)
        try:
            page.get_by_text("Nothing started from this server yet.").wait_for()  # (2 s)
            page.fill("#run-app", BUSY)
            assert start.is_enabled()
            start.click()
            warning.get_by_text(f"The server did not start {BUSY}: ").wait_for()
            text = warning.inner_text()
            assert f"run {run['id']}, started " in text and f"stop run {run['id']} first" in text
        finally:
            page.unroute("**/api/v1/runs")
        # the next look at the runs finds it: the usual warning, with a way to stop it
        warning.get_by_text("is already going").wait_for()
        warning.get_by_role("button", name=f"Stop run #{run['id']}").click()
        warning.wait_for(state="hidden")
        assert start.is_enabled()
        [listed] = [r for r in server.api("GET", "/runs") if r["id"] == run["id"]]
        assert listed["status"] == "stopped"
        page.locator(f"#run-table tr[data-run='{run['id']}']").get_by_text(
            re.compile("stopped")
        ).wait_for()
        assert not page.errors, page.errors
    finally:
        if any(r["status"] == "running" for r in server.api("GET", "/runs")):
            server.api("DELETE", f"/runs/{run['id']}")


def _nothing_runs(route: Any) -> None:
    """Answer the page's list of runs with none (a Start goes to the server as usual)."""
    if route.request.method == "GET":
        route.fulfill(status=200, json=[])
    else:
        route.continue_()
