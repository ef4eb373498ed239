"""Signals of a pipeline over a span of telemetry: per service, per stage (over its services
and instances) and end to end (over traces, so one request is followed across stages).

A sample's ``ts`` is when its inference ended (the sdk stamps it on exit), so it started
``latency_ms`` earlier; a trace's end-to-end latency runs from its first start to its last end,
and its energy is the sum over every stage it went through (what HX-MLOps calls energy per
request, split per stage).

>>> app = Application.model_validate({"name": "p", "stages": [
...     {"name": "a", "services": [{"name": "s1", "models": ["m"]}]},
...     {"name": "b", "after": ["a"], "services": [{"name": "s2", "models": ["m"]}]}]})
>>> rows = [
...     {"service": "s1", "instance": "i", "model": "m", "ts": 10.010, "latency_ms": 10.0,
...      "energy_j": 1.0, "trace_id": "t1", "metrics": {}},
...     {"service": "s2", "instance": "i", "model": "m", "ts": 10.030, "latency_ms": 5.0,
...      "energy_j": 2.0, "trace_id": "t1", "metrics": {}},
... ]
>>> summary = summarize_pipeline(app, rows)
>>> summary.stages["b"]["count"], summary.end_to_end["traces"], summary.end_to_end["complete"]
(1.0, 1.0, 1.0)
>>> round(summary.end_to_end["p50(latency_ms)"], 3), summary.end_to_end["energy_j"]
(30.0, 3.0)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from harmonia.core.application import Application

_PERCENTILES = (50.0, 95.0, 99.0)
Signals = dict[str, float]


@dataclass(frozen=True)
class PipelineSummary:
    """Signals keyed like a window's (``count``, ``p95(latency_ms)``, ``energy_j`` — the mean
    per inference —, ``total_energy_j``, ``accuracy``, ``mean(<metric>)``), per service and per
    stage; end to end: ``traces``, ``complete`` (traces that went through every stage), the
    latency percentiles of complete traces and their mean ``energy_j`` per trace."""

    start: float | None
    end: float | None
    services: dict[str, Signals] = field(default_factory=dict)
    stages: dict[str, Signals] = field(default_factory=dict)
    end_to_end: Signals = field(default_factory=dict)
    #: how many samples each service's instances reported: {service: {instance: n}}
    instances: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the share of each model in a service's samples: {service: {model: share}}
    models: dict[str, dict[str, float]] = field(default_factory=dict)


def summarize_pipeline(app: Application, rows: Iterable[Mapping[str, Any]]) -> PipelineSummary:
    """Summarise samples (dicts with the telemetry fields; ``stage`` and ``trace_id`` may be
    missing) of ``app``. Samples of a service the application does not declare are ignored."""
    stage_of = {service.name: stage.name for stage in app.stages for service in stage.services}
    by_service: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    traces: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    start, end = math.inf, -math.inf
    for row in rows:
        service = row.get("service")
        if service not in stage_of:
            continue
        by_service[service].append(row)
        start, end = min(start, row["ts"]), max(end, row["ts"])
        if row.get("trace_id"):
            traces[row["trace_id"]].append(row)

    services = {name: group_signals(found) for name, found in by_service.items()}
    stages = {}
    for stage in app.stages:
        found = [row for s in stage.services for row in by_service.get(s.name, [])]
        if found:
            stages[stage.name] = group_signals(found)
    return PipelineSummary(
        start=None if math.isinf(start) else start,
        end=None if math.isinf(end) else end,
        services=services,
        stages=stages,
        end_to_end=trace_signals(traces.values(), stage_of, len(app.stages)),
        instances={
            name: dict(Counter(row.get("instance", "default") for row in found))
            for name, found in by_service.items()
        },
        models={
            name: {m: n / len(found) for m, n in Counter(row["model"] for row in found).items()}
            for name, found in by_service.items()
        },
    )


def group_signals(rows: Sequence[Mapping[str, Any]]) -> Signals:
    """Latency percentiles, energy and quality over a group of samples."""
    signals: Signals = {"count": float(len(rows))}
    latencies = _values(rows, "latency_ms")
    if latencies.size:
        signals["mean(latency_ms)"] = float(latencies.mean())
        signals.update(_percentiles(latencies, "latency_ms"))
    energy = _values(rows, "energy_j")
    if energy.size:
        signals["energy_j"] = float(energy.mean())
        signals["total_energy_j"] = float(energy.sum())
    labelled = [
        (row["prediction"], row["target"])
        for row in rows
        if row.get("prediction") is not None and row.get("target") is not None
    ]
    if labelled:
        signals["accuracy"] = sum(p == t for p, t in labelled) / len(labelled)
    names = sorted({name for row in rows for name in (row.get("metrics") or {})})
    for name in names:
        values = [row["metrics"][name] for row in rows if name in (row.get("metrics") or {})]
        signals[f"mean({name})"] = float(np.mean(values))
    return signals


def trace_signals(
    traces: Iterable[Sequence[Mapping[str, Any]]], stage_of: Mapping[str, str], stages: int
) -> Signals:
    """End to end over traces: latency from a trace's first start to its last end, energy
    summed over its samples; percentiles over the traces that reached every stage."""
    count = complete = 0
    latencies: list[float] = []
    energies: list[float] = []
    for trace in traces:
        count += 1
        if len({stage_of[row["service"]] for row in trace}) < stages:
            continue
        complete += 1
        first = min(row["ts"] - (row.get("latency_ms") or 0.0) / 1000.0 for row in trace)
        last = max(row["ts"] for row in trace)
        latencies.append((last - first) * 1000.0)
        known = [row["energy_j"] for row in trace if row.get("energy_j") is not None]
        if known:
            energies.append(float(sum(known)))
    signals: Signals = {"traces": float(count), "complete": float(complete)}
    if latencies:
        array = np.asarray(latencies)
        signals["mean(latency_ms)"] = float(array.mean())
        signals.update(_percentiles(array, "latency_ms"))
    if energies:
        signals["energy_j"] = float(np.mean(energies))
    return signals


def _values(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    return np.asarray([row[name] for row in rows if row.get(name) is not None], dtype=float)


def _percentiles(values: np.ndarray, name: str) -> Signals:
    cuts = np.percentile(values, _PERCENTILES).tolist()
    return {f"p{int(q)}({name})": v for q, v in zip(_PERCENTILES, cuts, strict=True)}


JOULES_PER_KWH = 3.6e6
#: grid carbon intensity where nothing better is known: roughly the world's average
#: electricity (IEA, about 475 gCO2e/kWh)
DEFAULT_CARBON_G_PER_KWH = 475.0
#: the highest intensity taken (a coal plant is about 1,000 g/kWh): beyond is a typo
MAX_CARBON_G_PER_KWH = 5000.0
#: the node label that gives the node's own grid intensity (g/kWh)
CARBON_LABEL = "carbon_g_per_kwh"
#: the node label that names the node's region, looked up in `CarbonIntensity.by_region`
REGION_LABEL = "region"
#: the metric (a key of a sample's ``metrics``) for the CPU time its inference took, in
#: seconds: what a node's own energy counter is apportioned by
CPU_TIME_METRIC = "cpu_s"
#: how a figure of energy was obtained: the probe's own measurement of the inference...
PROBE = "probe"
#: ...or its node's counter, split among the samples it covers by their CPU time...
NODE_BY_CPU_TIME = "node counter, apportioned by CPU time"
#: ...or, where some of those samples carry no CPU time, by their latency instead
NODE_BY_LATENCY = "node counter, apportioned by latency (CPU-time proxy)"
EnergyGroup = Literal["stage", "service", "instance"]


@dataclass(frozen=True)
class CarbonIntensity:
    """Where the gCO2e of a node's electricity come from: its own label
    ``carbon_g_per_kwh``, else its region's (label ``region``) in ``by_region``, else
    ``default_g_per_kwh``. The most specific figure wins, since grids differ tenfold
    (hydro against coal) while a default is only an average.

    >>> carbon = CarbonIntensity(400.0, {"se": 25.0})
    >>> carbon.of_node({"region": "se"}), carbon.of_node({"region": "se", "carbon_g_per_kwh": "5"})
    ((25.0, 'region se'), (5.0, 'node label'))
    >>> carbon.of_node({}), carbon.of_node({"carbon_g_per_kwh": "lots"})
    ((400.0, 'default'), (400.0, 'default'))
    """

    default_g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    by_region: Mapping[str, float] = field(default_factory=dict)

    def of_node(self, labels: Mapping[str, str]) -> tuple[float, str]:
        """The node's intensity (g/kWh) and where it came from."""
        own = intensity_label(labels.get(CARBON_LABEL))
        if own is not None:
            return own, "node label"
        region = labels.get(REGION_LABEL)
        if region is not None and region in self.by_region:
            return self.by_region[region], f"region {region}"
        return self.default_g_per_kwh, "default"


def intensity_label(text: str | None) -> float | None:
    """A carbon intensity given as a label's text, if it is a usable one (labels are free
    text: a bad one is ignored rather than refused, so a typo never blocks registration)."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if 0 <= value <= MAX_CARBON_G_PER_KWH else None


@dataclass(frozen=True)
class NodeEnergy:
    """What a node's own counter (RAPL, NVML, a smart plug, a PDU) says the whole node spent
    over [start, end): the work of every service on it, and its idle draw."""

    node: str
    start: float
    end: float
    joules: float

    def within(self, start: float, end: float) -> float:
        """The joules of the part of the reading inside [start, end), taking the power as
        constant over the reading (all a counter read at both ends can tell).

        >>> NodeEnergy("n", 10.0, 20.0, 50.0).within(15.0, 100.0)
        25.0
        """
        overlap = min(end, self.end) - max(start, self.start)
        return self.joules * overlap / (self.end - self.start) if overlap > 0 else 0.0


@dataclass(frozen=True)
class Apportionment:
    """A node counter's energy split among the samples that ran on the node."""

    #: per sample, in the order given: its share (joules) and how it was apportioned; None
    #: where no reading of its node covers it (its probe's figure stands)
    shares: list[tuple[float, str] | None]
    #: per node with readings: the joules they say it spent within the span
    counter_j: dict[str, float]


def cpu_time_s(row: Mapping[str, Any]) -> float | None:
    """The CPU time a sample says its inference took (metric ``cpu_s``), if it says."""
    value = (row.get("metrics") or {}).get(CPU_TIME_METRIC)
    return float(value) if value is not None and 0 <= value < math.inf else None


def apportion_node_energy(
    readings: Iterable[NodeEnergy],
    rows: Sequence[Mapping[str, Any]],
    *,
    start: float = -math.inf,
    end: float = math.inf,
) -> Apportionment:
    """Split each node reading's joules within [start, end) among the samples (dicts with
    ``node``, ``ts``, and ``metrics.cpu_s`` or ``latency_ms``) that ended on its node
    during it, in proportion to their CPU time; by latency if any of them lacks it. The
    shares of a reading add up to its joules, so nothing is counted twice or lost — unless
    no sample ran in it (the node idled, or ran work Harmonia does not see), or its
    samples carry neither figure: then it is apportioned to none.

    ``rows`` should hold every sample on the nodes, of every application, so that a node
    shared by two applications charges each its part. A node's readings must not overlap
    (the store refuses those that do): each sample falls in at most one.

    >>> readings = [NodeEnergy("n", 0.0, 10.0, 30.0)]
    >>> rows = [{"node": "n", "ts": 1.0, "metrics": {"cpu_s": 2.0}},
    ...         {"node": "n", "ts": 5.0, "metrics": {"cpu_s": 1.0}},
    ...         {"node": "other", "ts": 5.0, "energy_j": 9.0}]
    >>> found = apportion_node_energy(readings, rows)
    >>> [share and share[0] for share in found.shares], found.shares[0][1]
    ([20.0, 10.0, None], 'node counter, apportioned by CPU time')
    """
    by_node: dict[str, list[NodeEnergy]] = defaultdict(list)
    for reading in readings:
        if reading.within(start, end) > 0:
            by_node[reading.node].append(reading)
    for found in by_node.values():
        found.sort(key=lambda r: r.start)
        if any(a.end > b.start for a, b in pairwise(found)):
            raise ValueError(f"readings of node {found[0].node!r} overlap")
    starts = {node: [r.start for r in found] for node, found in by_node.items()}
    covered: dict[NodeEnergy, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        node, ts = row.get("node"), row["ts"]
        if node not in by_node or not start <= ts < end:
            continue
        at = bisect_right(starts[node], ts) - 1
        if at >= 0 and ts < by_node[node][at].end:
            covered[by_node[node][at]].append(index)
    shares: list[tuple[float, str] | None] = [None] * len(rows)
    for reading, indices in covered.items():
        weights, method = _cpu_weights([rows[i] for i in indices])
        spread = sum(weights)
        if spread <= 0:
            continue
        joules = reading.within(start, end)
        for index, weight in zip(indices, weights, strict=True):
            shares[index] = (joules * weight / spread, method)
    counter_j = {node: sum(r.within(start, end) for r in found) for node, found in by_node.items()}
    return Apportionment(shares, counter_j)


def _cpu_weights(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], str]:
    """The samples' CPU times, or their latencies (seconds) where some lack one: mixing the
    two would weigh a sample by what it happened to report rather than by what it did."""
    cpu = [cpu_time_s(row) for row in rows]
    if all(c is not None for c in cpu):
        return [c for c in cpu if c is not None], NODE_BY_CPU_TIME
    return [(row.get("latency_ms") or 0.0) / 1000.0 for row in rows], NODE_BY_LATENCY


@dataclass(frozen=True)
class EnergyBreakdown:
    """Where a pipeline's energy goes: per stage, service or instance, the joules in all,
    per request and as a share of the whole, and the gCO2e they stand for.

    ``requests`` counts the distinct trace ids, plus the untraced samples of the first stages
    (each of those is a request of its own): per-request figures divide by it, so a stage's
    joules per request add up, over the stages, to the pipeline's.
    """

    by: EnergyGroup
    requests: int
    total_j: float
    total_g_co2e: float
    groups: dict[str, dict[str, float]]
    #: per group: how its joules were obtained (`PROBE`, `NODE_BY_CPU_TIME`, `NODE_BY_LATENCY`)
    methods: dict[str, list[str]] = field(default_factory=dict)
    #: per node with a counter: ``counter_j`` (what it spent in the span, all work on it)
    #: and ``apportioned_j`` (what of that went to this application's samples)
    nodes: dict[str, dict[str, float]] = field(default_factory=dict)


def energy_breakdown(
    app: Application,
    rows: Iterable[Mapping[str, Any]],
    by: EnergyGroup = "stage",
    *,
    carbon_g_per_kwh: float,
    carbon_of_node: Mapping[str, float] | None = None,
    node_energy: Iterable[NodeEnergy] = (),
    other_samples: Sequence[Mapping[str, Any]] = (),
    start: float = -math.inf,
    end: float = math.inf,
) -> EnergyBreakdown:
    """The energy of ``rows`` (samples of ``app``, each with its ``node``, None if unknown)
    grouped ``by`` stage, service or instance. A sample covered by a reading of its node's
    own counter (``node_energy``, within [start, end)) counts its share of it, apportioned
    by CPU time among it and ``other_samples`` (other applications' samples on those
    nodes); any other sample counts what its probe measured. Carbon comes from the
    intensity (g/kWh) of each sample's node in ``carbon_of_node``, else from
    ``carbon_g_per_kwh``.

    >>> app = Application.single("a", ["m"])
    >>> rows = [{"service": "default", "instance": "i", "ts": 1.0, "energy_j": 1.8e6}] * 2
    >>> energy = energy_breakdown(app, rows, carbon_g_per_kwh=100.0)
    >>> energy.requests, energy.groups["main"]["j_per_request"], energy.total_g_co2e
    (2, 1800000.0, 100.0)
    >>> metered = [{**row, "node": "n", "metrics": {"cpu_s": 1.0}} for row in rows]
    >>> energy = energy_breakdown(app, metered, carbon_g_per_kwh=100.0,
    ...                           node_energy=[NodeEnergy("n", 0.0, 2.0, 10.0)])
    >>> energy.total_j, energy.methods["main"], energy.nodes["n"]["apportioned_j"]
    (10.0, ['node counter, apportioned by CPU time'], 10.0)
    """
    rows = list(rows)
    stage_of = {service.name: stage.name for stage in app.stages for service in stage.services}
    first = {stage.name for stage in app.stages if not stage.after}
    intensity = carbon_of_node or {}
    apportioned = apportion_node_energy(node_energy, [*rows, *other_samples], start=start, end=end)
    joules: dict[str, float] = defaultdict(float)
    from_nodes: dict[str, float] = defaultdict(float)
    grams: dict[str, float] = defaultdict(float)
    samples: dict[str, int] = defaultdict(int)
    methods: dict[str, set[str]] = defaultdict(set)
    node_j: dict[str, float] = defaultdict(float)
    traces: set[str] = set()
    untraced = 0
    for row, share in zip(rows, apportioned.shares, strict=False):
        stage = stage_of.get(row.get("service", ""))
        if stage is None:
            continue
        if row.get("trace_id"):
            traces.add(row["trace_id"])
        elif stage in first:
            untraced += 1
        key = stage if by == "stage" else row["service"] if by == "service" else row["instance"]
        samples[key] += 1
        spent, method = (row.get("energy_j"), PROBE) if share is None else share
        if spent is None:
            continue
        if share is not None:
            from_nodes[key] += spent
            node_j[row["node"]] += spent
        joules[key] += spent
        methods[key].add(method)
        rate = intensity.get(row.get("node") or "", carbon_g_per_kwh)
        grams[key] += spent / JOULES_PER_KWH * rate
    requests = len(traces) + untraced
    total = sum(joules.values())
    per = max(requests, 1)
    groups = {
        key: {
            "samples": float(samples[key]),
            "total_j": joules[key],
            "j_per_request": joules[key] / per,
            "share": joules[key] / total if total > 0 else math.nan,
            "g_co2e": grams[key],
            "g_co2e_per_request": grams[key] / per,
            "node_j": from_nodes[key],
        }
        for key in samples
    }
    return EnergyBreakdown(
        by,
        requests,
        total,
        sum(grams.values()),
        groups,
        methods={key: sorted(methods[key]) for key in samples},
        nodes={
            node: {"counter_j": spent, "apportioned_j": node_j[node]}
            for node, spent in apportioned.counter_j.items()
        },
    )
