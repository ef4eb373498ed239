"""The pipeline run live against a Harmonia server: each stage its own process, its own sdk
user (one `Probe` per stage and service), frames passed on through multiprocessing queues
with their ``traceparent``.

::

    camera ──frames──► fast     ──answers──► aggregate
           └─frames──► accurate ──answers──┘

The parent sets the models up on first use (the vision system's version 1, forked into one
registry per classify service, so each service's retrains are its own), starts the four
processes (spawned), waits for them and collects what each did. Each process registers its
instance (named after the stage's service and the host) with the server, then serves until
the scenario is done, or, with ``loop``, plays it round and round until stopped (as the
demo's traffic system does). A failure in one, or Ctrl-C, stops them all: each gets the stop
signal, finishes its frame and flushes its probe; the parent joins them with a timeout and
ends whatever is left. SIGTERM (how the server stops a run it started) stops them the same
way, gently: a looping camera would otherwise outlive its parent and never end.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import queue
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

from harmonia.registry import ModelRegistry
from harmonia.systems.live import LiveRun
from harmonia.systems.pipeline import (
    AGGREGATE,
    CAMERA,
    CAMERA_SERVICE,
    CLASSIFY,
    SERVICES,
    VOTE_SERVICE,
)

logger = logging.getLogger("harmonia.systems.pipeline")

#: frames (or answers) a stage may queue ahead of the next one
QUEUE_SIZE = 64
#: how often a waiting stage looks at the stop signal, seconds
POLL = 0.2
#: how long the parent waits for a stopped stage before ending it
JOIN_TIMEOUT = 15.0
#: how long a stage's probe may take to send its last samples
FLUSH_TIMEOUT = 10.0
_DONE = "done"  # an end-of-stream marker between stages


@dataclass(frozen=True)
class Config:
    """What every stage process needs (picklable: it crosses the spawn)."""

    server: str
    app: str
    token: str
    scenario: Any  # a `harmonia.systems.vision.scenario.Scenario`
    registries: dict[str, str]  # classify service -> its registry's directory
    rate: float | None = None
    node: str = field(default_factory=socket.gethostname)
    start_models: dict[str, str] = field(default_factory=dict)
    #: classify service -> extra seconds its instance takes per frame (a slow instance)
    delays: dict[str, float] = field(default_factory=dict)
    #: play the scenario round and round until stopped
    loop: bool = False
    #: take at most this many frames (None: the scenario once, or without end with ``loop``)
    limit: int | None = None


def frame_numbers(length: int, *, loop: bool, limit: int | None = None) -> Iterator[int]:
    """The frames the camera takes, numbered from 0: the scenario's ``length`` once, or on
    and on with ``loop`` (frame ``n`` is the scenario's ``n % length``, see
    `harmonia.systems.pipeline.stages.Camera.frame`); at most ``limit``.

    >>> list(frame_numbers(3, loop=True, limit=5)), list(frame_numbers(3, loop=False, limit=5))
    ([0, 1, 2, 3, 4], [0, 1, 2])
    """
    numbers: Iterator[int] = itertools.count() if loop and length else iter(range(length))
    return numbers if limit is None else itertools.islice(numbers, limit)


def instance_name(service: str, node: str) -> str:
    """The instance a stage's process reports as: its service on its node."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in node)[:100] or "node"
    return f"{service}-{safe}"


def register_instance(
    server: str,
    app: str,
    token: str,
    service: str,
    instance: str,
    node: str,
    labels: dict[str, str] | None = None,
    *,
    timeout: float = 10.0,
) -> bool:
    """Register ``instance`` of ``service`` on ``node`` with the server; False (logged, not
    raised) when it cannot: a server without the route (404), or any other failure. A
    stage serves either way: the server learns its instances from its samples too."""
    url = f"{server.rstrip('/')}/api/v1/apps/{app}/services/{service}/instances"
    body = {"name": instance, "node": node, "labels": labels or {}}
    try:
        reply = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
    except httpx.HTTPError as error:
        logger.warning("could not register instance %s of %s: %s", instance, service, error)
        return False
    if reply.status_code == 404:
        logger.info(
            "the server has no instance registration for %s/%s (404: an older server?); "
            "going on without it",
            app,
            service,
        )
        return False
    if reply.status_code == 409:  # registered by an earlier run
        return True
    if reply.status_code >= 400:
        logger.warning(
            "could not register instance %s of %s: %s %s",
            instance,
            service,
            reply.status_code,
            reply.text[:200],
        )
        return False
    return True


# -- the parent --------------------------------------------------------------------------------
def prepare_registries(
    data_dir: Path, progress: Callable[[str], None] | None = None
) -> dict[str, ModelRegistry]:
    """One registry per classify service, each a fork of the vision system's trained one
    (version 1 of every model set up there on first use) made once and kept after."""
    from harmonia.energy import auto_meter
    from harmonia.systems.vision.system import VisionSystem

    base = ModelRegistry(data_dir / "registry" / "vision")
    VisionSystem(base, auto_meter()[0]).ensure_trained(progress)
    registries = {}
    for service in SERVICES:
        root = data_dir / "registry" / f"pipeline-{service}"
        registries[service] = (
            ModelRegistry(root) if root.is_dir() and any(root.iterdir()) else base.fork(root)
        )
    return registries


def run_live(
    server: str,
    app: str,
    token: str,
    scenario: Any,
    *,
    data_dir: Path,
    rate: float | None = None,
    start_models: dict[str, str] | None = None,
    join_timeout: float = JOIN_TIMEOUT,
    delays: dict[str, float] | None = None,
    loop: bool = False,
    limit: int | None = None,
) -> LiveRun:
    """Serve the scenario's frames live through the four stage processes, reporting to
    ``server`` as application ``app``; ``rate`` paces the camera (frames per second);
    ``delays`` slow a classify service's instance down (seconds more per frame, measured);
    ``loop`` plays the scenario round and round until stopped (Ctrl-C, SIGTERM), ``limit``
    takes at most so many frames. ``served`` counts the frames the aggregate judged;
    ``applied`` lists each classify service's actions as ``"<service>: <action>"``. A stage
    that fails stops the others and raises RuntimeError here with its traceback."""
    registries = prepare_registries(data_dir)
    config = Config(
        server=server,
        app=app,
        token=token,
        scenario=scenario,
        registries={service: str(r.root) for service, r in registries.items()},
        rate=rate,
        start_models=dict(start_models or {}),
        delays=dict(delays or {}),
        loop=loop,
        limit=limit,
    )
    context = mp.get_context("spawn")
    stop = context.Event()
    results: Any = context.Queue()
    frames = {service: context.Queue(QUEUE_SIZE) for service in SERVICES}
    answers: Any = context.Queue(QUEUE_SIZE * len(SERVICES))
    processes: list[SpawnProcess] = [
        context.Process(
            target=_stage_main,
            args=(CAMERA, config, stop, results, (), tuple(frames.values())),
            name=f"pipeline-{CAMERA}",
        ),
        *(
            context.Process(
                target=_stage_main,
                args=(service, config, stop, results, (frames[service],), (answers,)),
                name=f"pipeline-{service}",
            )
            for service in SERVICES
        ),
        context.Process(
            target=_stage_main,
            args=(AGGREGATE, config, stop, results, (answers,), ()),
            name=f"pipeline-{AGGREGATE}",
        ),
    ]
    run = LiveRun()
    previous = _stop_on_sigterm(stop)
    try:
        for process in processes:
            process.start()
        _collect(processes, results, run)
    finally:
        stop.set()
        _end(processes, join_timeout)
        for channel in (results, answers, *frames.values()):
            channel.close()
            channel.cancel_join_thread()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return run


def _stop_on_sigterm(stop: Event) -> Any:
    """Make SIGTERM stop the stages as the end of the scenario would: each finishes its
    frame, flushes its probe and reports, and `run_live` returns what was served. The
    handler it replaces (to put back), or None where signals cannot be handled (a thread
    other than the main one)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminated(_signum: int, _frame: Any) -> None:
        stop.set()

    return signal.signal(signal.SIGTERM, terminated)


def _collect(processes: list[SpawnProcess], results: Any, run: LiveRun) -> None:
    """Wait for every stage's report; raise when one fails or dies without one."""
    roles = {process.name.removeprefix("pipeline-"): process for process in processes}
    waiting = set(roles)
    while waiting:
        try:
            kind, role, *rest = results.get(timeout=POLL * 2)
        except queue.Empty:
            dead = [role for role in waiting if roles[role].exitcode is not None]
            if dead:
                time.sleep(POLL)  # its report may still be in the pipe
                if results.empty():
                    raise RuntimeError(f"stage process {dead[0]} ended without a report") from None
            continue
        if kind == "error":
            raise RuntimeError(f"pipeline stage {role} failed:\n{rest[0]}")
        waiting.discard(role)
        served, applied = rest
        if role == AGGREGATE:
            run.served = served
        run.applied.extend(f"{role}: {action}" for action in applied)


def _end(processes: list[SpawnProcess], timeout: float) -> None:
    """Join every process within ``timeout`` (all together); terminate, then kill, the rest."""
    deadline = time.monotonic() + timeout
    for process in processes:
        if process.pid is not None:
            process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            logger.warning("stage process %s did not stop in time: terminating it", process.name)
            process.terminate()
            process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join(2.0)


# -- the stage processes -----------------------------------------------------------------------
def _stage_main(
    role: str,
    config: Config,
    stop: Event,
    results: Any,
    inputs: tuple[Any, ...],
    outputs: tuple[Any, ...],
) -> None:
    """A stage process: the parent handles Ctrl-C and tells every stage through ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    try:
        if role == CAMERA:
            run = _camera(config, stop, outputs)
        elif role == AGGREGATE:
            run = _aggregate(config, stop, inputs[0])
        else:
            run = _classify(role, config, stop, inputs[0], outputs[0])
        results.put(("done", role, run.served, run.applied))
    except BaseException:
        stop.set()
        results.put(("error", role, traceback.format_exc()))
    finally:
        if stop.is_set():  # nobody may read what is still queued: do not wait for it
            for channel in outputs:
                channel.cancel_join_thread()


def _probe(config: Config, service: str, stage: str) -> Any:
    from harmonia.energy import auto_meter
    from harmonia.sdk import HTTPTransport, Probe

    instance = instance_name(service, config.node)
    register_instance(
        config.server,
        config.app,
        config.token,
        service,
        instance,
        config.node,
        {"stage": stage, "system": "pipeline"},
    )
    meter, _ = auto_meter()
    transport = HTTPTransport(config.server, config.token)
    return Probe(
        config.app,
        transport,
        instance=instance,
        service=service,
        stage=stage,
        meter=meter,
        exit_timeout=FLUSH_TIMEOUT,
    )


def _put(channel: Any, item: Any, stop: Event) -> bool:
    """Put ``item`` on a bounded queue, waiting while it is full; False once stopped."""
    while not stop.is_set():
        try:
            channel.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False


def _get(channel: Any, stop: Event) -> Any:
    """The next item, or `_DONE` once stopped."""
    while not stop.is_set():
        try:
            return channel.get(timeout=POLL)
        except queue.Empty:
            continue
    return _DONE


def _camera(config: Config, stop: Event, outputs: tuple[Any, ...]) -> LiveRun:
    from harmonia.systems.pipeline.stages import Camera, camera_stage

    camera = Camera(config.scenario)
    probe = _probe(config, CAMERA_SERVICE, CAMERA)
    run = LiveRun()
    started = time.perf_counter()
    parent = mp.parent_process()
    try:
        for index in frame_numbers(len(camera), loop=config.loop, limit=config.limit):
            # a looping camera whose parent died (killed) would take frames for ever
            if stop.is_set() or (parent is not None and not parent.is_alive()):
                break
            frame = camera_stage(camera, probe, index)
            if not all(_put(channel, frame, stop) for channel in outputs):
                break
            run.served = index + 1
            if config.rate:
                delay = started + run.served / config.rate - time.perf_counter()
                if delay > 0:
                    stop.wait(delay)
        for channel in outputs:
            _put(channel, _DONE, stop)
    finally:
        probe.close(FLUSH_TIMEOUT)
        probe.transport.close()
    return run


def _classify(service: str, config: Config, stop: Event, frames: Any, answers: Any) -> LiveRun:
    import torch

    from harmonia.energy import auto_meter
    from harmonia.sdk import TransportError
    from harmonia.systems.live import describe_registry
    from harmonia.systems.pipeline.stages import Classifier
    from harmonia.systems.vision.system import VisionSystem

    torch.set_num_threads(1)  # four processes share the cores
    models = SERVICES[service]
    system = VisionSystem(ModelRegistry(config.registries[service]), auto_meter()[0], models=models)
    system.switch(config.start_models.get(service, models[-1]))
    probe = _probe(config, service, CLASSIFY)
    run = LiveRun()
    classifier = Classifier(
        service, system, probe, run=run, delay_s=config.delays.get(service, 0.0)
    )
    try:
        try:
            describe_registry(probe, system.registry, models)
        except TransportError as error:  # advisory: the server decides without it
            logger.warning("%s: could not describe its model versions: %s", service, error)
        while not isinstance(frame := _get(frames, stop), str):
            if not _put(answers, classifier(frame), stop):
                break
        _put(answers, (_DONE, service), stop)
    finally:
        probe.close(FLUSH_TIMEOUT)
        probe.transport.close()
    return run


def _aggregate(config: Config, stop: Event, answers: Any) -> LiveRun:
    from harmonia.systems.pipeline.stages import Aggregator

    probe = _probe(config, VOTE_SERVICE, AGGREGATE)
    aggregator = Aggregator(probe)
    finished: set[str] = set()
    try:
        while len(finished) < len(SERVICES):
            item = _get(answers, stop)
            if isinstance(item, str):  # stopped
                break
            if isinstance(item, tuple):
                finished.add(item[1])
                continue
            aggregator(item)
        if aggregator.verdicts:
            logger.info(
                "pipeline: %d frames judged, ensemble accuracy %.3f",
                aggregator.verdicts,
                aggregator.accuracy,
            )
    finally:
        probe.close(FLUSH_TIMEOUT)
        probe.transport.close()
    return LiveRun(served=aggregator.verdicts)


def run(
    server: str,
    app: str,
    token: str,
    *,
    data: Path | None,
    data_dir: Path,
    menu: str,
    rate: float | None,
    loop: bool = False,
    limit: int | None = None,
) -> LiveRun:
    """`run_live` over a vision scenario file (default: the shipped one): the system's
    `harmonia.systems.LiveRunner`, what ``harmonia run pipeline`` calls. It has one menu;
    ``loop`` plays the scenario round and round until stopped, ``limit`` takes at most so
    many frames."""
    from harmonia.systems.vision.scenario import load_scenario

    return run_live(
        server,
        app,
        token,
        load_scenario(data),
        data_dir=data_dir,
        rate=rate,
        loop=loop,
        limit=limit,
    )
