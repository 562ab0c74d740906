"""examples/kubernetes/: the StatefulSet's probe reaches azwatch's verdict, as configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from azwatch.config import Config
from azwatch.http import LIVEZ_PATH, build_app
from azwatch.snapshot import HeadView, Snapshot

MANIFEST = Path(__file__).resolve().parent.parent / "examples" / "kubernetes" / "aleph-node.yaml"


def documents() -> dict[str, dict[str, Any]]:
    """The manifest's objects by kind (one of each)."""
    objects = [doc for doc in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if doc]
    by_kind = {doc["kind"]: doc for doc in objects}
    assert len(by_kind) == len(objects), "one object of each kind"
    return by_kind


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    statefulset = documents()["StatefulSet"]
    template = statefulset["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    return template["spec"]  # type: ignore[no-any-return]


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    everyone = pod.get("initContainers", []) + pod["containers"]
    (found,) = [each for each in everyone if each["name"] == name]
    return found  # type: ignore[no-any-return]


def sidecar_config(pod: dict[str, Any]) -> Config:
    env = {item["name"]: item["value"] for item in container(pod, "azwatch")["env"]}
    return Config.from_env(env)


def test_the_sidecar_is_azwatch_in_probe_mode(pod: dict[str, Any]) -> None:
    """A native sidecar (it starts before the node and keeps running), configured for the
    kubelet, reaching the node's RPC through the pod's shared network."""
    azwatch = container(pod, "azwatch")
    assert azwatch in pod["initContainers"]
    assert azwatch["restartPolicy"] == "Always"
    config = sidecar_config(pod)
    assert config.restart_via == "kubelet"
    node_rpc = urlsplit(config.node_rpc_url)
    assert node_rpc.hostname == "127.0.0.1"
    node = container(pod, "aleph-node")
    rpc_ports = {port["containerPort"] for port in node["ports"] if port["name"] == "rpc"}
    assert rpc_ports == {node_rpc.port}
    node_env = documents()["ConfigMap"]["data"]
    assert int(node_env["RPC_PORT"]) == node_rpc.port
    # Its own health is /healthz, on its own port: the node starts once azwatch answers, and
    # a stuck azwatch is restarted alone.
    for kind in ("startupProbe", "livenessProbe"):
        own = azwatch[kind]["httpGet"]
        assert own["path"] == "/healthz"
        assert _port_number(azwatch, own["port"]) == config.http_port


def test_the_node_probe_gets_the_verdict(pod: dict[str, Any]) -> None:
    """The node's livenessProbe is an httpGet on the sidecar's HTTP_PORT and azwatch's
    /livez route, every PROBE_PERIOD, and the sidecar listens where the kubelet probes."""
    config = sidecar_config(pod)
    node = container(pod, "aleph-node")
    probe = node["livenessProbe"]
    get = probe["httpGet"]
    assert _port_number(container(pod, "azwatch"), get["port"]) == config.http_port
    assert get["path"] == LIVEZ_PATH
    assert get.get("scheme", "HTTP") == "HTTP"
    routes = {
        resource.canonical
        for resource in build_app(_no_snapshot, livez=lambda: {"alive": True}).router.resources()
    }
    assert get["path"] in routes
    assert probe["periodSeconds"] == config.probe_period
    assert probe["failureThreshold"] >= 2, "one refused connection must not kill the node"
    assert config.http_host not in {"127.0.0.1", "localhost", "::1"}
    # The official image ignores SIGTERM: the node gets its whole shutdown budget.
    assert pod["terminationGracePeriodSeconds"] >= 60


def test_the_node_probe_is_explained_in_the_manifest() -> None:
    """periodSeconds and failureThreshold of the node's probe each come after a comment."""
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    probe = lines.index("          livenessProbe:", lines.index("        - name: aleph-node"))
    for word in ("periodSeconds:", "failureThreshold:"):
        index = next(i for i in range(probe, len(lines)) if lines[i].strip().startswith(word))
        assert lines[index - 1].strip().startswith("#"), f"{word} has no comment before it"


def _port_number(owner: dict[str, Any], port: int | str) -> int:
    """A probe's port: a number, or the name of one of *owner*'s container ports."""
    if isinstance(port, int):
        return port
    (number,) = [each["containerPort"] for each in owner["ports"] if each["name"] == port]
    return int(number)


def _no_snapshot() -> Snapshot:
    return Snapshot(time=0.0, dry_run=False, head=HeadView(None, None), containers=(), problems=())
