"""Whether a domain's deployment target answers: its Kubernetes context reaches an API
server, and the namespace is there.

Through the orchestration package's client (`harmonia.orchestration.kubernetes.connect`),
which makes no retries and times out in seconds, so that ``harmonia domains check`` against
a cluster that is down says so at once instead of hanging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harmonia.store import Domain

if TYPE_CHECKING:
    from harmonia.orchestration.kubernetes import Connection

#: seconds to wait for a connection, then for an answer
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TargetCheck:
    """What checking a target found: whether an API server answered, through which
    kubeconfig context, and in words."""

    reachable: bool
    context: str | None
    detail: str


def check_target(domain: Domain) -> TargetCheck:
    """Ask the domain's target for its version, then for its namespace. Never raises for a
    cluster that is missing, down or refusing: the answer says which."""
    if domain.namespace is None and domain.kube_context is None:
        return TargetCheck(
            False,
            None,
            f"domain {domain.name!r} has no deployment target: nothing to check "
            "(give one with harmonia domains add --context/--namespace)",
        )
    try:
        from harmonia.orchestration.kubernetes import (
            ClusterUnreachable,
            KubeConfigError,
            KubeTarget,
            connect,
        )
    except ImportError as error:  # the kubernetes client is an optional dependency
        return TargetCheck(False, None, f"cannot check: the kubernetes client is missing: {error}")
    namespace = domain.namespace or "default"
    target = KubeTarget(
        context=domain.kube_context,
        namespace=namespace,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        read_timeout_s=READ_TIMEOUT_S,
    )
    try:
        connection = connect(target)
    except KubeConfigError as error:
        return TargetCheck(False, None, f"no cluster: {error}")
    try:
        connection.check_reachable()
        return TargetCheck(True, connection.context, _namespace(connection, namespace))
    except ClusterUnreachable as error:
        return TargetCheck(False, connection.context, f"the cluster does not answer: {error}")
    finally:
        connection.close()


def _namespace(connection: Connection, namespace: str) -> str:
    """The cluster answered: whether ``namespace`` is there, in words."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    where = f"{connection.context} ({connection.host})"
    try:
        CoreV1Api(connection.api).read_namespace(
            namespace, _request_timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        )
    except ApiException as error:
        if error.status == 404:
            return f"{where} answers, but namespace {namespace!r} does not exist"
        return (
            f"{where} answers; namespace {namespace!r} could not be read "
            f"({error.status} {error.reason})"
        )
    except HTTPError as error:
        return f"{where} answered, then failed reading namespace {namespace!r}: {error}"
    return f"{where} answers; namespace {namespace!r} exists"
