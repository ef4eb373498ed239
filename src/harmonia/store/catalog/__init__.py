"""The registry's catalog in the database: models and datasets per domain, their versions,
tags, aliases with every move, approvals of promotions, grants to other domains, and the
energy spent on each version. The bytes are elsewhere (an artifact store); a version row says
where, with their size and sha256.

Version numbers come from a counter on the artifact's row, taken and bumped in the
transaction that inserts the version: concurrent uploads of one artifact queue on that row
(PostgreSQL locks it, SQLite has one writer), so they never get the same number, and a number
is never given twice, even after its version was deleted. Names are checked by the caller
(`harmonia.registry.catalog`); every write records itself in the audit log.

One mixin per job (versions, aliases, grants, energy); `CatalogMixin` is all of them.
"""

from harmonia.store.catalog._types import (
    KINDS,
    PHASES,
    STATUSES,
    AliasMove,
    Approval,
    Artifact,
    ArtifactVersion,
    EnergyRun,
    Grant,
    Kind,
    NewVersion,
    ServingEnergy,
    VersionRef,
)
from harmonia.store.catalog.aliases import ArtifactAliasesMixin
from harmonia.store.catalog.energy import ArtifactEnergyMixin
from harmonia.store.catalog.grants import ArtifactGrantsMixin
from harmonia.store.catalog.versions import ArtifactVersionsMixin


class CatalogMixin(
    ArtifactVersionsMixin, ArtifactAliasesMixin, ArtifactGrantsMixin, ArtifactEnergyMixin
):
    """Models and datasets: versions, tags, aliases, approvals, grants and energy."""


__all__ = [
    "KINDS",
    "PHASES",
    "STATUSES",
    "AliasMove",
    "Approval",
    "Artifact",
    "ArtifactVersion",
    "CatalogMixin",
    "EnergyRun",
    "Grant",
    "Kind",
    "NewVersion",
    "ServingEnergy",
    "VersionRef",
]
