"""Ingestion: a telemetry batch from validation to what follows its commit.

The whole batch is validated (rows or columns; the clock; each sample's service and stage),
the loops it concerns decide on it, and the batch, the decisions and their delivery are
stored in one transaction; then the counters, contracts, observers and event stream hear of
it and actions for push services are pushed. On a replica among several, the loops owned
elsewhere get the samples through their inboxes. `Server.ingest` is the entry point.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import deque
from itertools import repeat
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from harmonia.core.actions import Action
from harmonia.core.monitor import WindowSummary
from harmonia.server.errors import Invalid
from harmonia.server.loop import Ingested
from harmonia.server.observe import finite_or_none, finite_row
from harmonia.server.schemas import BATCH, SAMPLE_DEFAULTS, field_errors
from harmonia.server.validation import BatchInvalid, BatchValidator, validate_columns
from harmonia.store import App, Conflict, StoredAction
from harmonia.store.leases import LeaseLost

if TYPE_CHECKING:
    from harmonia.server.leases import Replicas
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server")

#: columns whose null means the field's default, which is not null (`SAMPLE_DEFAULTS`)
_NOT_NULL = frozenset({"service", "metrics"})
BATCH_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Ingestion:
    """The server's ingestion of telemetry batches (one per server)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        #: parses and checks a batch's bytes (big ones in worker processes, closed with the app)
        self.validator = BatchValidator()

    def ingest(
        self, app: App, body: bytes | dict[str, Any], key: str | None = None
    ) -> dict[str, Any]:
        """Validate the whole batch, let the loop decide, then store the batch, the decisions
        and the delivery in one transaction (one commit per request).

        A batch whose idempotency ``key`` was stored already gets the reply it got then, and
        nothing is stored or decided again. If the store fails, the loop forgets everything
        the batch taught it (it is rebuilt from the store): a decision exists only once
        stored, and nothing the store refused can poison later batches.
        """
        keyed = None if key is None else (_batch_key(key), _digest(body))
        if keyed is not None:
            replayed = self._replayed(app, keyed)
            if replayed is not None:
                return replayed
        try:
            batch: dict[str, Any] = (
                self.validator.validate(body)
                if isinstance(body, bytes)
                else validate_columns(body) or dict(BATCH.validate_python(body, strict=False))
            )
        except ValidationError as error:
            self.server.counters.rejected_batch(app.name)
            raise Invalid(field_errors(error)) from None
        except BatchInvalid as error:
            self.server.counters.rejected_batch(app.name)
            raise Invalid(error.issues) from None
        instance = batch.get("instance", "default")
        extra = {"app": app.name, "instance": instance, "input_summary": None}
        if "columns" in batch:
            rows, by_service = self._column_rows(app, batch["columns"], extra)
        else:
            samples = batch["samples"]
            self._check_clock(app, [s["ts"] for s in samples], "samples[{}].ts")
            rows = [{**SAMPLE_DEFAULTS, **sample, **extra} for sample in samples]
            by_service = self._place(app, rows)
        if self.server.replicas is not None:
            return self._as_replica(self.server.replicas, app, rows, by_service, instance, keyed)
        actions: list[dict[str, Any]] = []
        windows: list[dict[str, Any]] = []
        for service, served in by_service.items():
            loop = self.server.loop(app, service)
            decided = loop.ingest(served) if loop is not None else Ingested([], [])
            windows.extend(_window_view(w, service) for w in decided.windows)
            actions.extend(_action_row(a, service) for a in decided.actions)
        pull = [s for s in by_service if app.effector_url_of(s) is None]
        try:
            accepted, stored, delivered = self.server.store.ingest(
                app,
                rows,
                actions,
                pull=pull,
                instance=instance,
                windows=windows,
                key=keyed,
            )
        except Conflict:  # the same key, stored meanwhile by a concurrent retry
            self.server.forget_loop(app)
            assert keyed is not None
            return self._replayed(app, keyed) or {"accepted": 0, "actions": []}
        except Exception:
            self.server.forget_loop(app)
            raise
        self.stored(app, instance, rows, by_service, accepted, windows, stored)
        return {"accepted": accepted, "actions": [a.message() for a in delivered]}

    def stored(
        self,
        app: App,
        instance: str | None,
        rows: list[dict[str, Any]],
        by_service: dict[str, list[dict[str, Any]]],
        accepted: int,
        windows: list[dict[str, Any]],
        stored: list[StoredAction],
    ) -> None:
        """What follows a stored batch on either path (loop owned here or not): counters,
        contract windows, observers, the telemetry event and the decisions'."""
        self.server.counters.ingested(app.name, accepted)
        self.server.contracts.ingested(app, {service: len(s) for service, s in by_service.items()})
        if self.server.observers.watches(app):
            self.server.observers.submit(app, rows)
        self.server.events.publish(
            app.name,
            "telemetry",
            {"instance": instance, "count": accepted, "last": finite_row(rows[-1])},
            raw=True,
        )
        self.publish_decisions(app, windows, stored)

    def publish_decisions(
        self, app: App, windows: list[dict[str, Any]], stored: list[StoredAction]
    ) -> None:
        """What a loop decided and the store recorded: the event stream shows its last
        windows and its actions, and actions aimed at push services are pushed."""
        for window in windows[-10:]:
            self.server.events.publish(app.name, "window", window)
        if stored:
            self.server.counters.decided(app.name, (a.kind for a in stored))
            for action in stored:
                self.server.events.publish(app.name, "action", action.__dict__)
            pushed = [a for a in stored if app.effector_url_of(a.service) is not None]
            if pushed:
                self.server.pusher.submit(app, pushed)

    @staticmethod
    def decisions_of(
        service: str, decided: Ingested
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A loop's closed windows and decisions as the store records them."""
        return (
            [_window_view(w, service) for w in decided.windows],
            [_action_row(a, service) for a in decided.actions],
        )

    def _as_replica(
        self,
        replicas: Replicas,
        app: App,
        rows: list[dict[str, Any]],
        by_service: dict[str, list[dict[str, Any]]],
        instance: str,
        keyed: tuple[str, str] | None,
    ) -> dict[str, Any]:
        """`ingest` on one replica among several: the loops this replica owns decide on the
        batch as on a single server; the batch is stored (with the pull reply's pending
        actions); then what the owned loops decided is recorded, fenced by their leases, and
        the samples of the loops owned elsewhere go to their inboxes, for their owners.

        A decision refused because the lease was taken over meanwhile drops the loop here
        and hands its samples on as well. Once the batch is stored it is acknowledged, even
        if recording a decision then fails (the loop is rebuilt from the store)."""
        owned: dict[str, tuple[int, list[dict[str, Any]], list[dict[str, Any]]]] = {}
        handed: dict[str, list[dict[str, Any]]] = {}
        for service, served in by_service.items():
            token = replicas.token(app.name, service)
            loop = self.server.loop(app, service) if token is not None else None
            if token is not None and loop is not None:
                owned[service] = (token, *self.decisions_of(service, loop.ingest(served)))
            elif replicas.has_policy(app, service):
                handed[service] = served
        pull = [s for s in by_service if app.effector_url_of(s) is None]
        try:
            accepted, _, delivered = self.server.store.ingest(
                app, rows, [], pull=pull, instance=instance, key=keyed
            )
        except Conflict:  # the same key, stored meanwhile by a concurrent retry
            self.server.forget_loop(app)
            assert keyed is not None
            return self._replayed(app, keyed) or {"accepted": 0, "actions": []}
        except Exception:
            self.server.forget_loop(app)
            raise
        messages = [a.message() for a in delivered]
        windows: list[dict[str, Any]] = []
        stored: list[StoredAction] = []
        for service, (token, closed, decided) in owned.items():
            if not closed and not decided:
                continue
            try:
                recorded, more = self.server.store.record_decisions(
                    app,
                    service,
                    replicas.id,
                    token,
                    windows=closed,
                    actions=decided,
                    deliver_to=instance if service in pull else None,
                    reply=None
                    if keyed is None
                    else (keyed[0], {"accepted": accepted, "actions": messages}),
                )
            except LeaseLost as error:
                replicas.lost(app.name, service, error)
                handed[service] = by_service[service]
                continue
            except Exception:
                logger.exception("recording what %s/%s decided failed", app.name, service)
                self.server.drop_loop(app.name, service)
                continue
            windows.extend(closed)
            stored.extend(recorded)
            messages.extend(a.message() for a in more)
        for service, served in handed.items():
            try:
                self.server.store.enqueue(app, service, served)
            except Exception:  # stored all the same: only the owner's loop misses them
                logger.exception("handing %s/%s's samples to its owner failed", app.name, service)
        self.stored(app, instance, rows, by_service, accepted, windows, stored)
        return {"accepted": accepted, "actions": messages}

    def _column_rows(
        self, app: App, columns: dict[str, list[Any]], extra: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """A columnar batch's rows (every `TelemetrySample` field, as the row form's) and
        their grouping by service, as `_place` gives it. What the row form checks per
        sample is checked per column here: the lengths, the clock on the latest ``ts``, and
        for an app of one service, the stages the column names. Errors name the column and
        the sample's index: ``columns.ts[3]``."""
        count = len(columns["ts"])
        uneven = [
            {
                "field": f"columns.{name}",
                "reason": f"has {len(values)} values; columns.ts has {count}",
            }
            for name, values in columns.items()
            if len(values) != count
        ]
        if uneven:
            self.server.counters.rejected_batch(app.name)
            raise Invalid(uneven[:20])
        self._check_clock(app, columns["ts"], "columns.ts[{}]")
        # Each row is a copy of what the samples share (the defaults, the batch's instance,
        # a column of one value throughout: the model, often its version) updated with the
        # columns that vary: twice as fast as a dict built from every field.
        template = {**SAMPLE_DEFAULTS, **extra}
        varying: dict[str, list[Any]] = {}
        for name, values in columns.items():
            if name in _NOT_NULL and None in values:  # null: the sample's default
                fill = SAMPLE_DEFAULTS[name]
                values = [fill if v is None else v for v in values]
            if values.count(values[0]) == count:
                template[name] = values[0]
            else:
                varying[name] = values
        placed = None
        if len(app.services) == 1:  # the common case: any name is the service's
            stage = app.structure.stages[0].name
            stages = columns.get("stage", ())
            if any(s not in (None, stage) for s in set(stages)):
                i = next(i for i, s in enumerate(stages) if s not in (None, stage))
                named = columns.get("service")
                where = {"service": "default" if named is None else named[i], "stage": stages[i]}
                raise Invalid([_wrong_stage(app, i, where, stage, f"columns.stage[{i}]")])
            placed = template["service"] = app.services[0]
            template["stage"] = stage
            varying.pop("service", None)
            varying.pop("stage", None)
        # C-level passes (``map`` drained by a ``deque`` of no length): no bytecode per row
        rows: list[dict[str, Any]] = list(map(dict.copy, repeat(template, count)))
        if varying:
            pairs = map(zip, repeat(list(varying)), zip(*varying.values(), strict=True))
            deque(map(dict.update, rows, pairs), maxlen=0)
        if placed is not None:
            return rows, {placed: rows}
        return rows, self._place(app, rows, "columns.{1}[{0}]")

    def _place(
        self, app: App, rows: list[dict[str, Any]], where: str = "samples[{0}].{1}"
    ) -> dict[str, list[dict[str, Any]]]:
        """Give each sample its service and stage, and group the batch by service (in
        order); `Invalid` names each sample whose service or stage the app does not have
        (``where``: the field of sample {0}'s {1}, by the batch's form)."""
        structure = app.structure
        if len(app.services) == 1:  # the common case, one pass: any name is the service's
            service = app.services[0]
            stage = structure.stages[0].name
            for row in rows:
                if row["stage"] not in (None, stage):
                    index = rows.index(row)
                    field = where.format(index, "stage")
                    raise Invalid([_wrong_stage(app, index, row, stage, field)])
                row["service"], row["stage"] = service, stage
            return {service: rows}
        stage_of = {s.name: stage.name for stage in structure.stages for s in stage.services}
        groups: dict[str, list[dict[str, Any]]] = {}
        issues = []
        for i, row in enumerate(rows):
            found = stage_of.get(row["service"])
            if found is None:
                reason = f"{app.name} has no service {row['service']!r}; its services: " + (
                    ", ".join(app.services)
                )
                issues.append({"field": where.format(i, "service"), "reason": reason})
            elif row["stage"] not in (None, found):
                issues.append(_wrong_stage(app, i, row, found, where.format(i, "stage")))
            else:
                row["stage"] = found
                groups.setdefault(row["service"], []).append(row)
        if issues:
            self.server.counters.rejected_batch(app.name)
            raise Invalid(issues[:20])
        return groups

    def _replayed(self, app: App, keyed: tuple[str, str]) -> dict[str, Any] | None:
        """The reply a batch stored under this key got; `Invalid` if the key was used for
        another batch (a client bug that would otherwise lose this one silently)."""
        stored = self.server.store.batch_reply(app, keyed[0])
        if stored is None:
            return None
        digest, reply = stored
        if digest != keyed[1]:
            reason = "was used for a different batch; send each batch under a key of its own"
            raise Invalid([{"field": "Idempotency-Key", "reason": reason}])
        return reply

    def _check_clock(self, app: App, stamps: list[float], field: str) -> None:
        """Refuse samples stamped too far ahead of the server's clock: a time window would
        wait for that moment to close, deciding nothing meanwhile. ``field``: where sample
        {}'s ``ts`` is in the batch's form."""
        skew = self.server.guards.max_clock_skew_s
        latest = self.server.clock() + skew
        if max(stamps) <= latest:  # one C-level pass for the usual batch
            return
        ahead = [
            {
                "field": field.format(i),
                "reason": f"is {ts - latest + skew:.0f} s ahead of the server's clock "
                f"(at most {skew:.0f} s allowed)",
            }
            for i, ts in enumerate(stamps)
            if ts > latest
        ]
        if ahead:
            self.server.counters.rejected_batch(app.name)
            raise Invalid(ahead[:20])


def _digest(body: bytes | dict[str, Any]) -> str:
    """sha256 of a batch as sent (bytes), or of its canonical JSON (a broker's dict)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def _batch_key(key: str) -> str:
    if not BATCH_KEY.match(key):
        raise Invalid(
            [
                {
                    "field": "Idempotency-Key",
                    "reason": "use 1-128 letters, digits, '_', '.', ':', '-'",
                }
            ]
        )
    return key


def _window_view(summary: WindowSummary, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "start": summary.start,
        "end": summary.end,
        "model": summary.model,
        "version": summary.version,
        "count": summary.count,
        "signals": {k: finite_or_none(v) for k, v in summary.signals.items()},
    }


def _wrong_stage(
    app: App, index: int, row: dict[str, Any], stage: str, field: str | None = None
) -> dict[str, str]:
    reason = f"{app.name}/{row['service']} is in stage {stage!r}, not {row['stage']!r}"
    return {"field": field or f"samples[{index}].stage", "reason": reason}


def _action_row(action: Action, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "instance": None,
        "kind": action.kind.value,
        "model": action.model,
        "version": action.version,
        "ts": action.ts,
        "strategy": action.strategy,
        "reason": action.reason[:2000],
        "trigger": action.trigger[:500],
        "values": action.values,
        "context": {k: finite_or_none(v) for k, v in action.context.items()},
    }
