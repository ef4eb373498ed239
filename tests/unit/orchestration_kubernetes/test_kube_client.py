"""Finding the cluster: a missing kubeconfig or an unknown context is a clear error, before
any connection is tried. (Connecting to no cluster: tests/integration/test_kubernetes_apply.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harmonia.orchestration.kubernetes import KubeConfigError, KubeTarget, connect

CONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "edge", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "edge",
}


@pytest.fixture(autouse=True)
def _outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def test_no_kubeconfig_says_where_it_looked_and_what_to_set(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config"
    with pytest.raises(KubeConfigError) as caught:
        connect(KubeTarget(kubeconfig=missing))
    assert str(missing) in str(caught.value)
    assert "HARMONIA_KUBE_CONFIG" in str(caught.value)


def test_an_unknown_context_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(CONFIG))
    with pytest.raises(KubeConfigError, match="context 'prod'"):
        connect(KubeTarget(kubeconfig=path, context="prod"))


def test_a_connection_names_its_context_and_host_without_connecting(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(CONFIG))
    connection = connect(KubeTarget(kubeconfig=path))
    try:
        assert (connection.context, connection.host) == ("edge", "https://10.0.0.1:6443")
        assert connection.api.configuration.retries == 0  # fail fast, never retry
    finally:
        connection.close()
