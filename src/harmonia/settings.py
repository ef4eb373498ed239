"""Settings from the environment (``HARMONIA_*``) and a ``.env`` file, never module globals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from harmonia.server.service import Guards


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
    #: let effector and tactic URLs be link-local or cloud-metadata addresses (off: an
    #: application could otherwise make the server call ``169.254.169.254``)
    allow_link_local_targets: bool = False
    #: how far ahead of the server's clock a sample's timestamp may be (seconds); later
    #: samples are refused with 422
    max_clock_skew_s: float = 300.0
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

    def guards(self) -> Guards:
        """The server's guards as these settings relax them."""
        from harmonia.server.service import Guards

        origins = tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())
        return Guards(
            cors_origins=origins,
            allow_link_local_targets=self.allow_link_local_targets,
            max_clock_skew_s=self.max_clock_skew_s,
        )
