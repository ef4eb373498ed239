"""Settings from the environment (``HARMONIA_*``) and a ``.env`` file, never module globals."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Harmonia keeps its state, and how it behaves; read fresh by each command."""

    model_config = SettingsConfigDict(env_prefix="HARMONIA_", env_file=".env", extra="ignore")

    #: trained models (the registry), replay results and, later, the database
    data_dir: Path = Path(".harmonia")
