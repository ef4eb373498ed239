"""Which cluster to talk to, and a client for it that fails fast.

The official client retries a refused connection and waits on an unanswered one for as long
as the operating system lets it; an operator who typed ``harmonia deploy apply`` against a
cluster that is down should hear so in seconds. So the client here makes no retries and
every request carries a short connect timeout, and a first request (``GET /version``) tells
"no cluster answers" apart from "the cluster refused this object".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonia.orchestration.kubernetes._errors import ClusterUnreachable, KubeConfigError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

#: the context name reported for a pod's own service account
IN_CLUSTER = "in-cluster"


@dataclass(frozen=True)
class KubeTarget:
    """A cluster and a namespace: ``context`` of ``kubeconfig`` (None: the current context of
    ``$KUBECONFIG`` or ``~/.kube/config``; with no file, the pod's service account when
    running in a cluster)."""

    context: str | None = None
    kubeconfig: Path | None = None
    namespace: str = "default"
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` seconds, as the client takes them per request."""
        return (self.connect_timeout_s, self.read_timeout_s)


@dataclass
class Connection:
    """A configured client, and the context and host that errors name."""

    api: ApiClient
    context: str
    host: str
    target: KubeTarget

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call, unused-ignore]

    def unreachable(self, error: Exception) -> ClusterUnreachable:
        """The error to raise for a transport failure (refused, timed out, TLS)."""
        return ClusterUnreachable(self.context, self.host, _why(error, self.target))

    def check_reachable(self) -> None:
        """Raise `ClusterUnreachable` unless an API server answers ``GET /version``."""
        from kubernetes.client import VersionApi
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            # raw (a urllib3 response): whether it answers matters, not what it says
            raw: Any = VersionApi(self.api).get_code(
                _preload_content=False, _request_timeout=self.target.timeout
            )
            raw.read()
        except ApiException:
            return  # it answered, if only to refuse: the requests that follow say why
        except HTTPError as error:
            raise self.unreachable(error) from None


def connect(target: KubeTarget) -> Connection:
    """A client for ``target``, configured but not yet used; `KubeConfigError` if no cluster
    is configured (no kubeconfig, an unknown context)."""
    from kubernetes import config
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config.config_exception import ConfigException

    configuration = Configuration()
    file = str(target.kubeconfig) if target.kubeconfig is not None else None
    try:
        _, active = config.list_kube_config_contexts(file)  # type: ignore[no-untyped-call, unused-ignore]
        context = target.context or str((active or {}).get("name", "?"))
        config.load_kube_config(  # type: ignore[no-untyped-call, unused-ignore]
            config_file=file,
            context=target.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError) as error:
        if file is None and target.context is None and "KUBERNETES_SERVICE_HOST" in os.environ:
            config.load_incluster_config(  # type: ignore[no-untyped-call, unused-ignore]
                client_configuration=configuration
            )
            context = IN_CLUSTER
        else:
            where = file or os.environ.get("KUBECONFIG") or "~/.kube/config"
            wanted = f" (context {target.context!r})" if target.context else ""
            raise KubeConfigError(
                f"no Kubernetes cluster is configured{wanted}: {where}: {error}; set "
                "HARMONIA_KUBE_CONFIG and HARMONIA_KUBE_CONTEXT"
            ) from None
    configuration.retries = 0  # fail fast: the caller reports, the operator retries
    return Connection(ApiClient(configuration), context, configuration.host, target)


def _why(error: Exception, target: KubeTarget) -> str:
    """A transport failure in words, with the timeout that expired, if one did."""
    from urllib3.exceptions import (
        ConnectTimeoutError,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
        SSLError,
    )

    cause: BaseException = error
    if isinstance(error, MaxRetryError) and error.reason is not None:
        cause = error.reason
    if isinstance(cause, NewConnectionError):  # before its base class, ConnectTimeoutError
        return f"cannot connect: {cause.__cause__ or cause}"
    if isinstance(cause, ConnectTimeoutError):
        return f"no connection within {target.connect_timeout_s:g} s (connect timeout)"
    if isinstance(cause, ReadTimeoutError):
        return f"connected, but no answer within {target.read_timeout_s:g} s"
    if isinstance(cause, SSLError):
        return f"TLS failed: {cause}"
    if isinstance(cause, ProtocolError):
        return f"the connection broke: {cause}"
    return str(cause)
