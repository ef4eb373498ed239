"""What rendering needs beyond the plan: the namespace, the application, images, and which
extended resource each accelerator type is on the cluster. The CLI fills it from settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: Kubernetes' image pull policies
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
PULL_POLICIES: tuple[PullPolicy, ...] = ("Always", "IfNotPresent", "Never")

#: the extended resource that device plugins advertise for each accelerator type; a cluster
#: with other plugins extends or overrides it (``HARMONIA_KUBE_ACCELERATOR_RESOURCES``)
ACCELERATOR_RESOURCES: Mapping[str, str] = MappingProxyType(
    {
        "gpu": "nvidia.com/gpu",
        "nvidia-gpu": "nvidia.com/gpu",
        "amd-gpu": "amd.com/gpu",
        "intel-gpu": "gpu.intel.com/i915",
        "tpu": "google.com/tpu",
    }
)
#: the Kubernetes version whose schemas rendered manifests are validated against
KUBERNETES_VERSION = "1.33"


@dataclass(frozen=True)
class RenderOptions:
    """How a plan becomes manifests.

    ``app`` names the application every service belongs to (``HARMONIA_APP`` in the pods and
    the ``app.kubernetes.io/part-of`` label); without it, a service's own ``app`` label, or
    else its name. ``image_registry`` is put in front of images that name no registry host
    (``rdsea/od_web:2.0`` becomes ``registry.example/rdsea/od_web:2.0``) and of the image
    made up for a service that has none (``<registry>/<service>:latest``).
    ``accelerator_resources`` is added to `ACCELERATOR_RESOURCES`, overriding it by type.
    """

    namespace: str = "default"
    app: str | None = None
    image_registry: str = ""
    image_pull_policy: PullPolicy = "IfNotPresent"
    accelerator_resources: Mapping[str, str] = field(default_factory=dict)
    kubernetes_version: str = KUBERNETES_VERSION

    def resource_for(self, accelerator_type: str) -> str | None:
        """The extended resource an accelerator type is requested as, None if unknown."""
        table = {**ACCELERATOR_RESOURCES, **self.accelerator_resources}
        return table.get(accelerator_type)
