"""Settings from the environment (``HARMONIA_*``) and a ``.env`` file, never module globals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from harmonia.core.pipeline import DEFAULT_CARBON_G_PER_KWH, MAX_CARBON_G_PER_KWH, CarbonIntensity

if TYPE_CHECKING:
    from harmonia.orchestration.kubernetes import KubeTarget, RenderOptions
    from harmonia.registry.artifacts import ArtifactStore
    from harmonia.server.leases import ReplicaOptions
    from harmonia.server.service import Guards

Intensity = Annotated[float, Field(ge=0, le=MAX_CARBON_G_PER_KWH)]


class Settings(BaseSettings):
    """Where Harmonia keeps its state, and how it behaves; read fresh by each command."""

    model_config = SettingsConfigDict(env_prefix="HARMONIA_", env_file=".env", extra="ignore")

    #: trained models (the registry), replay results and the SQLite database
    data_dir: Path = Path(".harmonia")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir`` (PostgreSQL:
    #: ``postgresql+psycopg://user@host:5432/db``)
    database_url: str = ""
    #: the token that authorises administration; empty means one is generated and printed
    admin_token: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    #: an MQTT broker to take telemetry from as well as HTTP (``mqtt://host:1883``); empty: none
    mqtt_url: str = ""
    #: an AMQP broker to take telemetry from (``amqp://guest:guest@host:5672/``); empty: none
    amqp_url: str = ""
    #: web origins allowed to call the server from a browser (CORS, preflight included),
    #: comma-separated (``http://localhost:3000,https://ops.example``); also the only
    #: origins whose pages reach Harmonica's token-less routes. Empty: none.
    cors_origins: str = ""
    #: Harmonica's ``tool/`` folder: its dashboard's save-policy, set-model, start/stop and
    #: write-approach then write and start there (docs/harmonica.md). Unset: those routes
    #: answer 403 saying how to turn them on
    harmonica_tool_dir: Path | None = None
    #: the Python that runs Harmonica's managed system (its virtual environment's)
    harmonica_python: str = "python3"
    #: take uploaded custom MAPE files and run that system, sandboxed (needs the tool folder)
    harmonica_custom_mape: bool = False
    #: let effector and tactic URLs be link-local or cloud-metadata addresses (off: an
    #: application could otherwise make the server call ``169.254.169.254``)
    allow_link_local_targets: bool = False
    #: how far ahead of the server's clock a sample's timestamp may be (seconds); later
    #: samples are refused with 422
    max_clock_skew_s: float = 300.0
    #: this server's name among the replicas sharing a PostgreSQL database (unique to each,
    #: the same across its restarts); empty: ``<hostname>:<port>``
    replica_id: str = Field(default="", max_length=128)
    #: how long a replica's lease on a live loop lasts without renewal (seconds; renewed
    #: every third of it): a dead replica's loops are taken over that long after it died.
    #: 0: no leases, for a single server on PostgreSQL. Unused on SQLite
    lease_seconds: float = Field(default=3.0, ge=0, le=3600)
    #: samples older than this many days are dropped, once a day (on PostgreSQL by whole
    #: days: a day's partition goes once all of it is older); unset: kept for ever
    telemetry_retention_days: float | None = Field(default=None, gt=0)
    #: the key QoA4ML/ROHE clients register with (``POST /registration``, as a Bearer token
    #: or ``?key=``); empty: only the admin token registers, unless registration is open
    registration_key: str = ""
    #: let anyone register a QoA4ML client, without a key (a lab broker, a demo)
    open_registration: bool = False
    #: register a missing application on a QoA4ML client's first registration
    qoa4ml_create_apps: bool = True
    #: the broker address handed to QoA4ML clients (their ``end_point``); empty: the host of
    #: ``amqp_url`` (an ``amqps://`` URL as it is)
    qoa4ml_endpoint: str = ""
    #: grid carbon intensity (gCO2e/kWh) of a node with neither its own label
    #: ``carbon_g_per_kwh`` nor a region below
    carbon_g_per_kwh: Intensity = DEFAULT_CARBON_G_PER_KWH
    #: intensity per region, for nodes labelled ``region`` (JSON: ``{"se": 25, "pl": 650}``)
    carbon_g_per_kwh_by_region: dict[str, Intensity] = Field(default_factory=dict)
    #: the kubeconfig context `harmonia deploy apply` targets; empty: the file's current one
    kube_context: str = ""
    #: the namespace manifests are rendered into and applied to
    kube_namespace: str = "default"
    #: the kubeconfig file; unset: ``$KUBECONFIG`` or ``~/.kube/config`` (in a pod without
    #: either, its service account)
    kube_config: Path | None = None
    #: put in front of images that name no registry host (``registry.lab:5000``); empty: none
    kube_image_registry: str = ""
    kube_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    #: extended resource per accelerator type, over the built-in table (``gpu``:
    #: ``nvidia.com/gpu``…); JSON: ``{"npu": "vendor.example/npu"}``
    kube_accelerator_resources: dict[str, str] = Field(default_factory=dict)
    #: seconds a cluster has to accept a connection before apply says that none answers
    kube_connect_timeout_s: float = Field(default=3.0, gt=0, le=120)
    #: the Kubernetes version whose schemas manifests are validated against; empty: the
    #: version Harmonia pins
    kube_version: str = ""

    #: where the registry keeps the bytes of models and datasets: ``file:///dir`` or
    #: ``s3://bucket/prefix``; empty: ``artifacts/`` in ``data_dir``
    artifact_store: str = ""
    #: the S3-compatible server of an ``s3://`` store (MinIO: ``http://minio:9000``); empty:
    #: AWS. Credentials come from boto3's chain (``AWS_ACCESS_KEY_ID``...)
    s3_endpoint_url: str = ""
    s3_region: str = ""
    #: the largest model or dataset the server takes (bytes); larger uploads get 413
    max_artifact_bytes: int = Field(default=2 * 1024**3, ge=1)

    def artifacts(self) -> ArtifactStore:
        """The registry's artifact store as these settings name it."""
        from harmonia.registry.artifacts import open_artifact_store

        uri = self.artifact_store or str((self.data_dir / "artifacts").resolve())
        s3 = {"endpoint_url": self.s3_endpoint_url, "region_name": self.s3_region}
        return open_artifact_store(uri, {"s3": s3})

    def carbon(self) -> CarbonIntensity:
        """Where the energy view takes each node's carbon intensity from."""
        return CarbonIntensity(self.carbon_g_per_kwh, dict(self.carbon_g_per_kwh_by_region))

    def kube_target(self, context: str | None = None, namespace: str | None = None) -> KubeTarget:
        """The cluster and namespace to apply to; arguments override the settings."""
        from harmonia.orchestration.kubernetes import KubeTarget

        return KubeTarget(
            context=context or self.kube_context or None,
            kubeconfig=self.kube_config,
            namespace=namespace or self.kube_namespace,
            connect_timeout_s=self.kube_connect_timeout_s,
        )

    def kube_render_options(
        self, namespace: str | None = None, app: str | None = None
    ) -> RenderOptions:
        """How plans are rendered as manifests; arguments override the settings."""
        from harmonia.orchestration.kubernetes import KUBERNETES_VERSION, RenderOptions

        return RenderOptions(
            namespace=namespace or self.kube_namespace,
            app=app,
            image_registry=self.kube_image_registry,
            image_pull_policy=self.kube_image_pull_policy,
            accelerator_resources=dict(self.kube_accelerator_resources),
            kubernetes_version=self.kube_version or KUBERNETES_VERSION,
        )

    def replica(self, port: int | None = None) -> ReplicaOptions:
        """This server as one replica: its id (``replica_id``, else the host's name and
        ``port``) and its leases' length."""
        import socket

        from harmonia.server.leases import ReplicaOptions

        name = self.replica_id or f"{socket.gethostname()}:{port or self.port}"
        return ReplicaOptions(id=name, lease_seconds=self.lease_seconds)

    def guards(self) -> Guards:
        """The server's guards as these settings relax them."""
        from harmonia.server.service import Guards

        origins = tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())
        return Guards(
            cors_origins=origins,
            allow_link_local_targets=self.allow_link_local_targets,
            max_clock_skew_s=self.max_clock_skew_s,
        )
