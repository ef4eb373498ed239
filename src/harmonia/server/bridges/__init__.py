"""The broker bridges: a probe's calls carried by MQTT (`mqtt`) or AMQP (`amqp`) instead of
HTTP, answered by the service layer (`harmonia.server.service.Server`) with the statuses and
bodies the HTTP routes would give (`messaging`)."""

from __future__ import annotations

from typing import Protocol

from harmonia.server.service import Server


class Bridge(Protocol):
    """A broker's side of the server: started with the app, stopped at its shutdown."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def bridges_for(server: Server, mqtt_url: str = "", amqp_url: str = "") -> list[Bridge]:
    """A bridge for each broker URL given, not started yet. A broker's client library is
    imported only when its bridge is asked for."""
    bridges: list[Bridge] = []
    if mqtt_url:
        from harmonia.server.bridges.mqtt import MQTTBridge

        bridges.append(MQTTBridge(server, mqtt_url))
    if amqp_url:
        from harmonia.server.bridges.amqp import AMQPBridge

        bridges.append(AMQPBridge(server, amqp_url))
    return bridges
