"""The Harmonia SDK: embed a `Probe` in a managed ML system to report telemetry and apply
the adaptation actions the server sends back.

It depends on the wire contract only, never on the server or store code, so a managed system
installs nothing of the control plane. `HTTPTransport` talks to a real server;
`MQTTTransport` and `AMQPTransport` reach it through a broker; `InMemoryTransport` calls
Python functions instead (tests, in-process deployments).
"""

from harmonia.sdk._amqp import AMQPTransport
from harmonia.sdk._effector import Effector, Handler
from harmonia.sdk._http import HTTPTransport
from harmonia.sdk._measured import Measured
from harmonia.sdk._messages import ActionKind, ActionMessage, ActionStatus
from harmonia.sdk._mqtt import MQTTTransport
from harmonia.sdk._probe import Probe
from harmonia.sdk._stats import ProbeStats
from harmonia.sdk._trace import new_trace_id, trace_id_of, traceparent
from harmonia.sdk._transport import InMemoryTransport, Transport, TransportError

__all__ = [
    "AMQPTransport",
    "ActionKind",
    "ActionMessage",
    "ActionStatus",
    "Effector",
    "HTTPTransport",
    "Handler",
    "InMemoryTransport",
    "MQTTTransport",
    "Measured",
    "Probe",
    "ProbeStats",
    "Transport",
    "TransportError",
    "new_trace_id",
    "trace_id_of",
    "traceparent",
]
