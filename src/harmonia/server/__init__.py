"""The Harmonia server: registration, telemetry, policies and the live loop over HTTP."""

from harmonia.server.app import create_app

__all__ = ["create_app"]
