"""The pipeline's three stages as plain in-process code, each reporting through its own
`harmonia.sdk.Probe`: the live run wraps each in a process (`harmonia.systems.pipeline.live`)
and tests call them directly.

What passes between stages is small and picklable (it crosses process boundaries through
multiprocessing queues): a `Frame` from the camera to each classify service, an `Answer`
from each classify service to the aggregate; each carries the frame's W3C ``traceparent``,
and each stage reports the trace id it reads from it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from harmonia.sdk import ActionMessage, Probe, new_trace_id, trace_id_of, traceparent
from harmonia.systems.live import LiveRun, describe_version, system_effector
from harmonia.systems.pipeline import CAMERA_MODEL, SERVICES, VOTE_MODEL
from harmonia.systems.vision.data import Images, Labels, clean_stream
from harmonia.systems.vision.scenario import Drift, Scenario, apply
from harmonia.systems.vision.system import VisionSystem

#: recent frames a classify service keeps for a retrain (it names the drift in the last
#: `harmonia.systems.vision.system.RETRAIN_WINDOW` of them)
RECENT_FRAMES = 200


@dataclass(frozen=True)
class Frame:
    """One camera frame on its way to the classify services."""

    index: int
    image: np.ndarray  # (SIZE, SIZE) float32, in [0, 1]
    label: int  # the true class (the lab's camera knows it; a real one would not)
    condition: str  # ``clean`` or the condition applied
    traceparent: str

    @property
    def trace_id(self) -> str:
        return trace_id_of(self.traceparent)


@dataclass(frozen=True)
class Answer:
    """One classify service's answer about one frame, on its way to the aggregate."""

    index: int
    service: str
    label: int
    confidence: float
    target: int
    traceparent: str


@dataclass(frozen=True)
class Verdict:
    """The ensemble's answer about one frame: the more confident service's."""

    index: int
    label: int
    confidence: float
    target: int
    chosen: str  # the service whose answer won
    agree: bool  # whether the services gave the same class
    trace_id: str

    @property
    def correct(self) -> bool:
        return self.label == self.target


# -- camera ------------------------------------------------------------------------------------
class Camera:
    """The scenario's frames: clean held-out images, each put under the condition the
    scenario places on it when it is taken (`frame`)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.images: Images
        self.labels: Labels
        self.images, self.labels = clean_stream(scenario.samples, scenario.seed)

    def __len__(self) -> int:
        return self.scenario.samples

    def drift_at(self, index: int) -> Drift | None:
        """The drift stretch frame ``index`` falls in, if any."""
        for drift in self.scenario.drifts:
            if drift.start <= index < drift.end:
                return drift
        return None

    def frame(self, index: int, trace_id: str | None = None) -> Frame:
        """Frame ``index`` as the camera sees it (seeded per frame: the same every time).

        A looping run (``harmonia run pipeline --loop``) counts on past the scenario's end:
        its frame ``index`` is the scenario's frame ``index % len(self)``, under the same
        condition every pass, so the drift comes back each pass; the index itself stays
        unique, as the aggregate pairs the services' answers by it."""
        at = index % len(self)
        image = self.images[at]
        drift = self.drift_at(at)
        if drift is not None:
            rng = np.random.default_rng((self.scenario.seed, at))
            image = apply(drift.condition, image[None], drift.strength, rng)[0]
        return Frame(
            index=index,
            image=np.ascontiguousarray(image, dtype=np.float32),
            label=int(self.labels[at]),
            condition=drift.condition if drift is not None else "clean",
            traceparent=traceparent(trace_id or new_trace_id()),
        )


def camera_stage(camera: Camera, probe: Probe, index: int) -> Frame:
    """Take frame ``index`` under a new trace, reporting it (its luminance as the drift
    value) through the camera's probe."""
    trace_id = new_trace_id()
    with probe.measure(CAMERA_MODEL, trace_id=trace_id) as sample:
        frame = camera.frame(index, trace_id)
        sample.drift_value = float(frame.image.mean())
        sample.metrics["drifted"] = float(frame.condition != "clean")
    return frame


# -- classify ----------------------------------------------------------------------------------
class Classifier:
    """One classify service (one instance of it): a `VisionSystem` over the service's
    models, reporting each frame through the instance's probe, whose `Effector` carries out
    the actions the server sends that service (switch among its models, retrain for the
    drift in its recent frames, reuse a version, and a contract's ``degrade``: serve the
    cheaper model it names).

    ``delay_s`` makes this instance slow: each frame takes that many seconds more, inside
    its measured latency, as on a throttled or crowded node — how a contract's latency SLO
    is seen violated by one instance, and remedied, in tests and demos."""

    def __init__(
        self,
        service: str,
        system: VisionSystem,
        probe: Probe,
        *,
        run: LiveRun | None = None,
        recent: int = RECENT_FRAMES,
        delay_s: float = 0.0,
    ) -> None:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
        if not delay_s >= 0:
            raise ValueError(f"delay_s must be >= 0 seconds, got {delay_s!r}")
        self.service = service
        self.system = system
        self.probe = probe
        self.delay_s = delay_s
        self.run = run if run is not None else LiveRun()
        self._recent: deque[np.ndarray] = deque(maxlen=recent)
        self._lock = threading.Lock()  # frames arrive here; a retrain reads them elsewhere
        effector = system_effector(
            system,
            self.observed,
            self.run,
            partial(describe_version, probe),
            lambda done: f"for {done.diagnosis.condition} in {done.seconds:.2f} s",
        )
        effector.on("degrade", self._degrade)
        probe.effector = effector

    def _degrade(self, action: ActionMessage) -> str:
        """A contract's remedy: serve the cheaper model the server chose (a switch that
        trades accuracy for speed until the SLO holds again)."""
        self.system.switch(action.model or self.system.active)
        self.run.applied.append(f"degrade {self.system.active}")
        return f"serving {self.system.active}"

    def observed(self) -> Images:
        """The recent frames (what a retrain may learn from)."""
        with self._lock:
            frames = list(self._recent)
        if not frames:
            return np.empty((0, 0, 0), dtype=np.float32)
        return np.stack(frames)

    def __call__(self, frame: Frame) -> Answer:
        """Classify one frame with the model in service; report and pass the answer on."""
        trace_id = frame.trace_id
        with self._lock:
            self._recent.append(frame.image)
        system = self.system
        with self.probe.measure(system.active, system.serving_version, trace_id=trace_id) as s:
            label, confidence = system.predict(frame.image)
            if self.delay_s:
                time.sleep(self.delay_s)
            s.prediction = float(label)
            s.target = float(frame.label)
            s.drift_value = float(frame.image.mean())
            s.metrics["confidence"] = confidence
            s.metrics["correct"] = float(label == frame.label)
        self.run.served += 1
        return Answer(
            frame.index, self.service, label, confidence, frame.label, traceparent(trace_id)
        )


# -- aggregate ---------------------------------------------------------------------------------
def vote(answers: Sequence[Answer]) -> tuple[Answer, bool]:
    """The most confident answer (the first listed among equals) and whether all agree.

    >>> a = Answer(0, "fast", 3, 0.6, 3, "")
    >>> b = Answer(0, "accurate", 5, 0.9, 3, "")
    >>> best, agree = vote([a, b])
    >>> best.service, agree
    ('accurate', False)
    """
    if not answers:
        raise ValueError("a vote needs at least one answer")
    best = max(answers, key=lambda answer: answer.confidence)  # max keeps the first of equals
    return best, len({answer.label for answer in answers}) == 1


class Aggregator:
    """Waits for every classify service's answer about a frame, then votes (the more
    confident answer wins) and reports the ensemble's answer through its probe."""

    def __init__(self, probe: Probe, services: Sequence[str] = tuple(SERVICES)) -> None:
        self.probe = probe
        self.services = tuple(services)
        self.pending: dict[int, dict[str, Answer]] = {}
        self.verdicts = 0
        self.correct = 0

    @property
    def accuracy(self) -> float:
        """The ensemble's accuracy so far (NaN before any verdict)."""
        return self.correct / self.verdicts if self.verdicts else float("nan")

    def __call__(self, answer: Answer) -> Verdict | None:
        """Take one answer; the verdict once every service has answered about its frame."""
        got = self.pending.setdefault(answer.index, {})
        got[answer.service] = answer
        if any(service not in got for service in self.services):
            return None
        del self.pending[answer.index]
        trace_id = trace_id_of(answer.traceparent)
        with self.probe.measure(VOTE_MODEL, trace_id=trace_id) as sample:
            best, agree = vote([got[service] for service in self.services])
            sample.prediction = float(best.label)
            sample.target = float(best.target)
            sample.metrics["confidence"] = best.confidence
            sample.metrics["correct"] = float(best.label == best.target)
            sample.metrics["agree"] = float(agree)
        verdict = Verdict(
            answer.index,
            best.label,
            best.confidence,
            best.target,
            best.service,
            agree,
            trace_id,
        )
        self.verdicts += 1
        self.correct += verdict.correct
        return verdict
