"""The frame: a window's telemetry rows grouped once into arrays (per service, stage,
instance and trace), so that every SLO of every contract reads them without a Python pass."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from harmonia.core.application import Application
from harmonia.core.contracts._model import Floats, Ints, Scope
from harmonia.core.numbers import is_number
from harmonia.core.policy import Window

# -- the frame: rows grouped once into arrays ------------------------------------------------


class Frame:
    """A window's samples as numpy arrays (sorted by ``ts``), with per-trace arrays; built
    once by `frame` and shared by every SLO that `evaluate` checks."""

    def __init__(self, app: Application, rows: Iterable[Mapping[str, Any]]) -> None:
        self.app = app
        self.stage_names = [stage.name for stage in app.stages]
        self.service_names = [service.name for service in app.services]
        stage_index = {name: i for i, name in enumerate(self.stage_names)}
        service_index = {name: i for i, name in enumerate(self.service_names)}
        self.stage_of_service = np.asarray(
            [stage_index[app.stage_of(name)] for name in self.service_names], dtype=np.int64
        )
        followed = {name for stage in app.stages for name in stage.after}
        self.sinks = [i for i, name in enumerate(self.stage_names) if name not in followed]

        instances: dict[tuple[int, str], int] = {}
        models: dict[str, int] = {}
        traces: dict[str, int] = {}
        self.row_nodes: dict[int, str] = {}
        svc: list[int] = []
        inst: list[int] = []
        mdl: list[int] = []
        trc: list[int] = []
        ts: list[float] = []
        lat: list[float] = []
        energy: list[float] = []
        correct: list[float] = []
        error: list[float] = []
        metrics: dict[str, tuple[list[int], list[float]]] = {}
        nan = math.nan
        for row in rows:
            s = service_index.get(row.get("service"))  # type: ignore[arg-type]
            if s is None:
                continue
            n = len(svc)
            svc.append(s)
            key = (s, str(row.get("instance") or "default"))
            i = instances.get(key)
            if i is None:
                i = instances[key] = len(instances)
                if row.get("node"):
                    self.row_nodes[i] = str(row["node"])
            inst.append(i)
            model = str(row.get("model") or "")
            m = models.get(model)
            if m is None:
                m = models[model] = len(models)
            mdl.append(m)
            trace = row.get("trace_id")
            if trace:
                t = traces.get(trace)
                if t is None:
                    t = traces[trace] = len(traces)
                trc.append(t)
            else:
                trc.append(-1)
            ts.append(float(row["ts"]))
            value = row.get("latency_ms")
            lat.append(nan if value is None else float(value))
            value = row.get("energy_j")
            energy.append(nan if value is None else float(value))
            found = row.get("metrics") or {}
            prediction, target = row.get("prediction"), row.get("target")
            if "correct" in found:
                correct.append(float(found["correct"]))
            elif prediction is not None and target is not None:
                correct.append(float(prediction == target))
            else:
                correct.append(nan)
            flag = row.get("error", found.get("error"))
            error.append(1.0 if flag else 0.0)
            for name, value in found.items():
                if is_number(value):
                    column = metrics.get(name)
                    if column is None:
                        column = metrics[name] = ([], [])
                    column[0].append(n)
                    column[1].append(float(value))

        order = np.argsort(np.asarray(ts, dtype=np.float64), kind="stable")
        self.size = len(order)
        self.ts: Floats = np.asarray(ts, dtype=np.float64)[order]
        self.service: Ints = np.asarray(svc, dtype=np.int64)[order]
        self.stage: Ints = self.stage_of_service[self.service] if self.size else self.service
        self.instance: Ints = np.asarray(inst, dtype=np.int64)[order]
        self.model: Ints = np.asarray(mdl, dtype=np.int64)[order]
        self.model_names = list(models)
        self.trace: Ints = np.asarray(trc, dtype=np.int64)[order]
        latency = np.asarray(lat, dtype=np.float64)[order]
        self.columns: dict[str, Floats] = {
            "latency_ms": latency,
            "energy_j": np.asarray(energy, dtype=np.float64)[order],
            "correct": np.asarray(correct, dtype=np.float64)[order],
            "error": np.asarray(error, dtype=np.float64)[order],
            "ts": self.ts,
        }
        inverse = np.empty_like(order)
        inverse[order] = np.arange(self.size)
        for name, (where, values) in metrics.items():
            if name in self.columns:
                continue
            full = np.full(self.size, np.nan)
            full[inverse[np.asarray(where, dtype=np.int64)]] = values
            self.columns[name] = full
        self.instance_names = [""] * len(instances)
        self.instance_service = np.zeros(len(instances), dtype=np.int64)
        for (s, name), i in instances.items():
            self.instance_names[i] = name
            self.instance_service[i] = s
        self.start = self.ts - np.nan_to_num(latency) / 1000.0
        self.end = float(self.ts[-1]) if self.size else math.nan
        self._traces(len(traces))
        self._cache: dict[tuple[str, str | None, str], Ints] = {}

    def _traces(self, count: int) -> None:
        stages = len(self.stage_names)
        self.trace_count = count
        inside = np.flatnonzero(self.trace >= 0)
        t = self.trace[inside]
        first = np.full(count, np.inf)
        last = np.full(count, -np.inf)
        np.minimum.at(first, t, self.start[inside])
        np.maximum.at(last, t, self.ts[inside])
        cell = t * stages + self.stage[inside]
        present = np.bincount(cell, minlength=count * stages).reshape(count, stages) > 0
        latency = np.nan_to_num(self.columns["latency_ms"][inside])
        #: time in each stage per trace (the slowest of its samples there: parallel services)
        spent = np.zeros(count * stages)
        np.maximum.at(spent, cell, latency)
        energy = self.columns["energy_j"][inside]
        known = ~np.isnan(energy)
        per_stage_energy = np.bincount(
            cell[known], weights=energy[known], minlength=count * stages
        ).reshape(count, stages)
        self.trace_complete: npt.NDArray[np.bool_] = np.asarray(present.all(axis=1), dtype=bool)
        self.trace_end = last
        self.trace_start = first
        self.trace_latency: Floats = (last - first) * 1000.0
        has_energy = np.bincount(t[known], minlength=count) > 0
        self.trace_energy: Floats = np.where(has_energy, per_stage_energy.sum(axis=1), np.nan)
        self.trace_error = np.bincount(t, weights=self.columns["error"][inside], minlength=count)
        self.trace_stage_time = spent.reshape(count, stages)
        self.trace_stage_energy = per_stage_energy
        self.trace_order = np.argsort(last, kind="stable")

    # -- selection -----------------------------------------------------------------------
    def rows_of(
        self, scope: Scope, target: str | None, window: Window, *, every_stage: bool = False
    ) -> Ints:
        """Indices of the rows in ``window`` of a service or stage (end to end: the sink
        stages', or with ``every_stage`` every stage's)."""
        key = (scope if not every_stage else "every_stage", target, str(window))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if every_stage:
            mask = np.ones(self.size, dtype=bool)
        elif scope == "service":
            mask = self.service == self.service_names.index(str(target))
        elif scope == "stage":
            mask = self.stage == self.stage_names.index(str(target))
        else:
            mask = np.isin(self.stage, self.sinks)
        if window.seconds is not None:
            mask &= self.ts >= self.end - window.seconds
            chosen = np.flatnonzero(mask)
        else:
            chosen = np.flatnonzero(mask)[-(window.samples or 1) :]
        self._cache[key] = chosen
        return chosen

    def traces_of(self, window: Window) -> Ints:
        """Indices of the traces that ended in ``window`` (the last ``samples`` traces)."""
        key: tuple[str, str | None, str] = ("traces", None, str(window))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        order = self.trace_order
        if window.seconds is not None:
            chosen = order[self.trace_end[order] >= self.end - window.seconds]
        else:
            chosen = order[-(window.samples or 1) :]
        self._cache[key] = chosen
        return chosen


def frame(app: Application, rows: Iterable[Mapping[str, Any]]) -> Frame:
    """Group ``rows`` of ``app`` into arrays once, to evaluate many SLOs (or contracts)."""
    return Frame(app, rows)
