"""Energy from training to serving: what each training run, evaluation and promotion of a
version spent (recorded with the version), and its joules per inference in service, from the
telemetry of the applications that serve it."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from harmonia.store.audit import add_audit
from harmonia.store.base import StoreBase
from harmonia.store.catalog._lookup import find_artifact_id, grants_of, resolve_version
from harmonia.store.catalog._types import PHASES, ArtifactVersion, EnergyRun, ServingEnergy
from harmonia.store.domains import DEFAULT_DOMAIN
from harmonia.store.errors import NotFound, StoreError
from harmonia.store.tables import AppRow, ArtifactEnergyRow, DomainRow, TelemetryRow


class ArtifactEnergyMixin(StoreBase):
    """Energy recorded per version, and measured in service."""

    # -- energy -----------------------------------------------------------------------------
    def add_artifact_energy(
        self,
        domain: str,
        kind: str,
        name: str,
        version: int,
        run: EnergyRun,
    ) -> EnergyRun:
        """Record energy spent on a version (``run.ts`` and ``run.recorded_by`` as given)."""
        if run.phase not in PHASES:
            raise StoreError(f"phase {run.phase!r}: one of {', '.join(PHASES)}")
        with self._tx() as tx:
            artifact_id = find_artifact_id(tx, domain, kind, name)
            version_id = resolve_version(tx, artifact_id, version)
            if version_id is None:
                raise NotFound(f"{kind} {domain}/{name} has no version {version}")
            tx.execute(
                insert(ArtifactEnergyRow).values(
                    version_id=version_id,
                    phase=run.phase,
                    joules=run.joules,
                    seconds=run.seconds,
                    source=run.source,
                    ts=run.ts,
                    recorded_by=run.recorded_by,
                    detail=run.detail,
                )
            )
            add_audit(
                tx,
                run.ts,
                run.recorded_by,
                f"{kind}.energy",
                f"{kind}:{domain}/{name}@{version}",
                domain=domain,
                detail=f"{run.phase}: {run.joules} J ({run.source})",
            )
        return run

    def artifact_energy(self, version_id: int) -> list[EnergyRun]:
        """The energy recorded for a version, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(ArtifactEnergyRow)
                .where(ArtifactEnergyRow.version_id == version_id)
                .order_by(ArtifactEnergyRow.ts, ArtifactEnergyRow.id)
            )
            return [
                EnergyRun(r.phase, r.joules, r.seconds, r.source, r.ts, r.recorded_by, r.detail)
                for r in rows
            ]

    def serving_energy(self, found: ArtifactVersion) -> list[ServingEnergy]:
        """Joules per inference of a model version in service, per domain: the mean
        ``energy_j`` of the samples of applications that report serving ``found.name`` at
        version ``found.version``, in the domains that may read it (its own and those it
        is granted to). An application without a domain counts in ``default``."""
        with self.engine.connect() as connection:
            readers = [found.domain, *(g.domain for g in grants_of(connection, found.artifact_id))]
            domain = func.coalesce(DomainRow.name, DEFAULT_DOMAIN)
            query = (
                select(domain, func.count(TelemetryRow.energy_j), func.avg(TelemetryRow.energy_j))
                .select_from(TelemetryRow)
                .join(AppRow, TelemetryRow.app_id == AppRow.id)
                .outerjoin(DomainRow, AppRow.domain_id == DomainRow.id)
                .where(
                    TelemetryRow.model == found.name,
                    TelemetryRow.model_version == found.version,
                    TelemetryRow.energy_j.is_not(None),
                    domain.in_(readers),
                )
                .group_by(domain)
                .order_by(domain)
            )
            return [
                ServingEnergy(str(d), int(n), float(j))
                for d, n, j in connection.execute(query)
                if n
            ]
