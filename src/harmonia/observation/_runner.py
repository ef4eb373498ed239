"""`ObserverRunner`: the configured observers of each application, fed samples, run when due.

Pure with respect to I/O: samples go in through `feed`, results come out of `feed` and `tick`,
and time is read from an injected clock. Bounded: a window never holds more than
``max_window`` samples, a call accepts at most ``max_feed`` samples (the rest are dropped and
counted) and runs at most ``max_runs`` observers (the others stay due for the next call,
longest-waiting first). An observer that raises is contained: its error is the result, it is
counted, and the other observers and the caller go on.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harmonia.observation._protocol import Observer, ObserverResult, Sample, Window
from harmonia.observation._spec import MAX_WINDOW, ObserverSpec
from harmonia.plugins import OBSERVERS, create_plugin

Factory = Callable[..., Observer]


@dataclass(frozen=True)
class Observation:
    """One observer run: which application and observer, when (by the runner's clock), over
    how many samples, and its result (``result.error`` set when the observer raised)."""

    app: str
    name: str
    observer: str
    at: float
    size: int
    result: ObserverResult


@dataclass
class ObserverStats:
    """Counters of one observer of one application."""

    runs: int = 0
    errors: int = 0
    #: samples in scope never observed: beyond ``max_feed`` in one call, or (streaming) more
    #: than ``max_window`` waiting for a run
    dropped: int = 0
    last_error: str | None = None


@dataclass
class _State:
    spec: ObserverSpec
    observer: Observer
    streaming: bool
    buffer: deque[tuple[float, Sample]]
    new: int = 0
    due_since: float | None = None
    last_run: float | None = None
    latest: ObserverResult | None = None
    stats: ObserverStats = field(default_factory=ObserverStats)


class _App:
    def __init__(self, states: list[_State]) -> None:
        self.states = states
        self.lock = threading.Lock()


class ObserverRunner:
    """Runs ``specs`` over each application's telemetry (each app gets its own instances).

    ``factories`` maps observer names to classes (or factories) used before the
    ``harmonia.observers`` entry points: a user's observer that is not installed as a plugin.
    Thread-safe: calls for one application are serialised, different applications run in
    parallel.
    """

    def __init__(
        self,
        specs: Sequence[ObserverSpec] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        factories: Mapping[str, Factory] | None = None,
        max_window: int = 10_000,
        max_feed: int = 10_000,
        max_runs: int = 32,
    ) -> None:
        if min(max_window, max_feed, max_runs) < 1:
            raise ValueError("max_window, max_feed and max_runs must be positive")
        self.clock = clock
        self.factories = dict(factories or {})
        self.max_window = min(max_window, MAX_WINDOW)
        self.max_feed = max_feed
        self.max_runs = max_runs
        self._specs: list[ObserverSpec] = self._checked(specs)
        self._own: dict[str, list[ObserverSpec]] = {}
        self._apps: dict[str, _App] = {}
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------
    def _build(self, spec: ObserverSpec) -> Observer:
        factory = self.factories.get(spec.observer)
        if factory is None:
            built: Observer = create_plugin(OBSERVERS, spec.observer, **spec.params)
            return built
        try:
            return factory(**spec.params)
        except TypeError as error:
            raise TypeError(f"observer {spec.observer!r}: {error}") from error

    def _checked(self, specs: Sequence[ObserverSpec]) -> list[ObserverSpec]:
        """Build each once: an unknown plugin or a bad parameter fails here, not later."""
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"observer names must be distinct: {names}")
        for spec in specs:
            self._build(spec)
        return list(specs)

    def configure(self, app: str, specs: Sequence[ObserverSpec] | None) -> None:
        """Give ``app`` its own observers (``None``: back to the runner's); its state restarts."""
        with self._lock:
            if specs is None:
                self._own.pop(app, None)
            else:
                self._own[app] = self._checked(specs)
            self._apps.pop(app, None)

    def specs(self, app: str) -> list[ObserverSpec]:
        return list(self._own.get(app, self._specs))

    def _app(self, app: str) -> _App:
        with self._lock:
            found = self._apps.get(app)
            if found is None:
                states = []
                for spec in self._own.get(app, self._specs):
                    observer = self._build(spec)
                    streaming = bool(getattr(observer, "streaming", False))
                    cap = self.max_window
                    if spec.window.size is not None and not streaming:
                        cap = min(cap, spec.window.size)
                    states.append(_State(spec, observer, streaming, deque(maxlen=cap)))
                found = self._apps[app] = _App(states)
            return found

    # -- feeding and running ------------------------------------------------------------------
    def feed(self, app: str, samples: Iterable[Sample]) -> list[Observation]:
        """Add ``samples`` (in arrival order) to ``app``'s windows; run the observers now due."""
        entry = self._app(app)
        with entry.lock:
            now = self.clock()
            accepted = 0
            for sample in samples:
                if accepted >= self.max_feed:
                    for state in entry.states:
                        state.stats.dropped += state.spec.matches(sample)
                    continue
                accepted += 1
                ts = sample.get("ts")
                at = float(ts) if isinstance(ts, int | float) and math.isfinite(ts) else now
                for state in entry.states:
                    if state.spec.matches(sample):
                        if state.streaming and len(state.buffer) == state.buffer.maxlen:
                            state.stats.dropped += 1  # the oldest unseen sample goes
                        state.buffer.append((at, sample))
                        state.new += 1
                        if state.due_since is None:
                            state.due_since = now
            return self._run_due(app, entry, now)

    def tick(self, app: str | None = None) -> list[Observation]:
        """Run the observers that are due by time (``every: {seconds: T}``), of ``app`` or of
        every application."""
        with self._lock:
            apps = [app] if app is not None else list(self._apps)
        done: list[Observation] = []
        for name in apps:
            entry = self._app(name)
            with entry.lock:
                done += self._run_due(name, entry, self.clock())
        return done

    def _due(self, state: _State, now: float) -> bool:
        every = state.spec.every
        if every.samples is not None:
            return state.new >= every.samples
        assert every.seconds is not None
        if state.new == 0:
            return False
        start = state.last_run if state.last_run is not None else state.due_since
        return start is not None and now - start >= every.seconds

    def _run_due(self, app: str, entry: _App, now: float) -> list[Observation]:
        due = [s for s in entry.states if self._due(s, now)]
        due.sort(key=lambda s: -math.inf if s.last_run is None else s.last_run)
        return [self._run(app, state, now) for state in due[: self.max_runs]]

    def _window(self, state: _State) -> list[Sample]:
        if state.streaming:
            taken = [sample for _, sample in state.buffer]
            state.buffer.clear()
            return taken
        seconds = state.spec.window.seconds
        if seconds is not None and state.buffer:
            newest = max(at for at, _ in state.buffer)
            while state.buffer and state.buffer[0][0] < newest - seconds:
                state.buffer.popleft()
        return [sample for _, sample in state.buffer]

    def _run(self, app: str, state: _State, now: float) -> Observation:
        samples = self._window(state)
        state.new = 0
        state.last_run = now
        state.stats.runs += 1
        try:
            result = state.observer.observe(Window(samples, state.spec.metrics))
            if not isinstance(result, ObserverResult):
                raise TypeError(f"observe() returned {type(result).__name__}, not ObserverResult")
        except Exception as error:
            result = ObserverResult.failed(error)
            state.stats.errors += 1
            state.stats.last_error = result.error
        state.latest = result
        return Observation(app, state.spec.name, state.spec.observer, now, len(samples), result)

    # -- reading ------------------------------------------------------------------------------
    def latest(self, app: str) -> dict[str, ObserverResult]:
        """The last result of each of ``app``'s observers that has run."""
        entry = self._app(app)
        with entry.lock:
            return {s.spec.name: s.latest for s in entry.states if s.latest is not None}

    def signals(self, app: str) -> dict[str, float]:
        """``observer.<name>.<field>`` for the last result of each observer, and
        ``observer.<name>.errors``, the count of its failed runs."""
        entry = self._app(app)
        out: dict[str, float] = {}
        with entry.lock:
            for state in entry.states:
                if state.latest is not None:
                    out.update(state.latest.signals(state.spec.name))
                out[f"observer.{state.spec.name}.errors"] = float(state.stats.errors)
        return out

    def stats(self, app: str) -> dict[str, ObserverStats]:
        entry = self._app(app)
        with entry.lock:
            return {s.spec.name: ObserverStats(**vars(s.stats)) for s in entry.states}

    def apps(self) -> list[str]:
        with self._lock:
            return sorted(self._apps)

    def forget(self, app: str) -> None:
        """Drop ``app``'s windows and state (its configuration stays)."""
        with self._lock:
            self._apps.pop(app, None)
