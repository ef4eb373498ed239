"""Settings from the environment (``HARMONIA_*``) and a ``.env`` file, never module globals."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


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
