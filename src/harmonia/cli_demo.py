"""The live part of ``harmonia demo``: the server and its dashboard on this machine, with
the traffic system running under the ``harmonia`` strategy through the server's own runs
(as the dashboard's Run page starts it), and each adaptation printed as it is decided.

The traffic system plays its drifted stream round and round (``loop``), so the demo keeps
drifting and adapting until it is stopped, and the terminal says when anything stops: the
traffic system, the server, or the demo itself. Apart from `harmonia.cli` so that the
command stays thin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from harmonia.cli_domains import _detail

if TYPE_CHECKING:
    import httpx

#: the application the demo runs live
DEMO_APP = "traffic-live"
#: observations per second the demo's live system serves by default: a 200-sample window
#: closes about every second, so adaptations come at a pace a person can follow
DEMO_RATE = 200.0
#: seconds between two looks at the actions and the run
POLL_S = 1.0
#: exit status when the server will not start the traffic system
EXIT_FAILED = 1


def demo_run_request(rate: float) -> dict[str, Any]:
    """What the demo asks the server to run: the traffic system under its live preset, its
    stream played round and round so that it keeps drifting, and adapting, until stopped
    (played once, it would end after about 80 s at 200 observations per second)."""
    return {
        "system": "traffic",
        "app": DEMO_APP,
        "preset": "traffic-live",
        "rate": rate,
        "loop": True,
    }


def data_dir_note(live: Path) -> str:
    """Where the demo keeps what it made, and how to serve it again: ``harmonia serve`` by
    itself serves ``HARMONIA_DATA_DIR`` (``.harmonia``), not the demo's folder."""
    return (
        f"the demo's applications, actions, experiments and database are in {live}; "
        f"to see them again: harmonia serve --data-dir {live}"
    )


def live_demo(console: Console, live: Path, seconds: float | None, rate: float) -> None:
    """Serve the dashboard on ``live`` (its data directory) and run the traffic system live
    until Ctrl-C or ``seconds``; print each adaptation, and whatever stops."""
    import secrets

    from harmonia.replay.lab import registry_for
    from harmonia.server.background import BackgroundServer
    from harmonia.settings import Settings
    from harmonia.store import Store, sqlite_url

    settings = Settings()
    admin = settings.admin_token or secrets.token_urlsafe(16)
    # The live system retrains into its own copy of the trained models, not the lab's.
    registry_for(settings.data_dir, "harmonia").fork(live / "registry" / "traffic-harmonia")
    console.print(data_dir_note(live), markup=False)
    store = Store(sqlite_url(live))
    try:
        port = _free_port(settings.host, settings.port)
        with BackgroundServer(store, admin, settings.host, port, data_dir=live) as url:
            _run_and_follow(console, url, admin, seconds, rate)
        console.print("the server stopped", markup=False)
    finally:
        store.close()
    console.print(data_dir_note(live), markup=False)


def _free_port(host: str, port: int) -> int:
    """``port``, or 0 (any free one) when something already listens there."""
    import socket

    with socket.socket() as probe:
        return 0 if probe.connect_ex((host, port)) == 0 else port


def _run_and_follow(
    console: Console, url: str, admin: str, seconds: float | None, rate: float
) -> None:
    """Start the live run, follow it until the demo stops, then stop it, saying so."""
    import httpx

    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        started = client.post("/api/v1/runs", json=demo_run_request(rate))
        if started.is_error:
            console.print(
                f"error: the server did not start the traffic system: "
                f"{started.status_code}: {_detail(started)}",
                markup=False,
            )
            raise typer.Exit(EXIT_FAILED)
        run_id = started.json()["id"]
        console.print(
            f"dashboard: {url}/#/app/{DEMO_APP}   admin token: {admin}\n"
            f"API docs: {url}/docs   (Ctrl-C stops)",
            markup=False,
        )
        why = follow(console, client, run_id, seconds)
        console.print(f"stopping ({why})", markup=False)
        _stop_run(console, client, run_id)


def follow(
    console: Console, client: httpx.Client, run_id: int, seconds: float | None = None
) -> str:
    """Print each new adaptation of the demo's app, and say when the run stops, every
    `POLL_S` until Ctrl-C, ``seconds`` or the server stops answering; return which."""
    import httpx

    seen: set[int] = set()
    running = True
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(POLL_S)
            try:
                print_new_actions(console, client, seen)
                running = running and still_running(console, client, run_id)
            except httpx.HTTPError as error:
                console.print(f"the server does not answer: {error}", markup=False)
                return "the server stopped answering"
    except KeyboardInterrupt:
        return "Ctrl-C"
    return f"--seconds {seconds:g} passed"


def print_new_actions(console: Console, client: httpx.Client, seen: set[int]) -> None:
    """Print the app's actions not printed yet, oldest first, each with why it was taken."""
    reply = client.get(f"/api/v1/apps/{DEMO_APP}/actions", params={"limit": 20})
    reply.raise_for_status()
    for item in reversed(reply.json()):
        if item["id"] in seen or item["kind"] == "none":
            continue
        seen.add(item["id"])
        target = (item["model"] or "") + (f" v{item['version']}" if item["version"] else "")
        console.print(
            f"{item['kind']} {target}: {item['reason']}  [fired by {item['trigger']}]",
            markup=False,
        )


def still_running(console: Console, client: httpx.Client, run_id: int) -> bool:
    """Whether run ``run_id`` still runs; when it does not, say so, how it ended and the
    end of its log, and that the dashboard stays up (False)."""
    reply = client.get("/api/v1/runs")
    reply.raise_for_status()
    run = next((r for r in reply.json() if r["id"] == run_id), None)
    if run is not None and run["status"] == "running":
        return True
    if run is None:
        console.print(f"the traffic system stopped: the server lost run {run_id}", markup=False)
    else:
        console.print(
            f"the traffic system stopped: {run['status']} (exit code {run['exit_code']}); "
            "the end of its log:",
            markup=False,
        )
        console.print(_indent(run["log_tail"]), markup=False)
    console.print("the server and its dashboard stay up (Ctrl-C stops)", markup=False)
    return False


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.strip().splitlines()[-10:]) or "  (empty)"


def _stop_run(console: Console, client: httpx.Client, run_id: int) -> None:
    """Stop the live run and say how it ended."""
    import httpx

    try:
        stopped = client.delete(f"/api/v1/runs/{run_id}")
    except httpx.HTTPError as error:
        console.print(f"could not stop the traffic system: {error}", markup=False)
        return
    status = stopped.json().get("status") if stopped.is_success else None
    console.print(f"the traffic system stopped ({status or stopped.status_code})", markup=False)
