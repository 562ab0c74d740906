"""examples/aleph-node.env, the env_file of examples/docker-compose.yml.

Always: every env_file the compose file names exists, and the node's settings agree with the
compose file (data directory, published ports). Where ``docker compose`` or
``docker-compose`` is installed (Debian's docker-compose; without it the test skips, and
fails under ``CI=true``), its ``config`` must accept the whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from distkit import ROOT, env_lines, run
from dockerkit import skip_or_fail

COMPOSE = ROOT / "examples" / "docker-compose.yml"


def compose() -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def env_files() -> list[Path]:
    """Every env_file the compose file names, resolved against its directory."""
    found = []
    for service in compose()["services"].values():  # type: ignore[attr-defined]
        names = service.get("env_file", [])
        for name in [names] if isinstance(names, str | dict) else names:
            found.append(COMPOSE.parent / (name["path"] if isinstance(name, dict) else name))
    return found


def test_the_compose_files_env_files_exist() -> None:
    files = env_files()
    assert files, "the compose example names no env_file"
    for path in files:
        assert path.is_file(), f"{COMPOSE.name} names {path.name}, which is not shipped"


def test_the_node_env_file_agrees_with_the_compose_file() -> None:
    node = compose()["services"]["aleph-node"]  # type: ignore[index]
    (path,) = [COMPOSE.parent / node["env_file"]]
    values = env_lines(path)
    # What the image's entrypoint requires, and a validator's public addresses.
    for key in ("NAME", "BASE_PATH", "CHAIN", "NODE_KEY_PATH"):
        assert values.get(key), key
    if values.get("VALIDATOR", "true") == "true":
        assert values.get("PUBLIC_VALIDATOR_ADDRESS")
    # The data directory is the volume's target, and the ports are the ones published.
    targets = {volume.split(":")[1] for volume in node["volumes"]}
    assert values["BASE_PATH"] in targets
    assert values["CHAIN"].startswith(values["BASE_PATH"] + "/")
    assert values["NODE_KEY_PATH"].startswith(values["BASE_PATH"] + "/")
    published = {port.rsplit(":", 1)[-1] for port in node["ports"]}
    assert {values["PORT"], values["VALIDATOR_PORT"], values["RPC_PORT"]} <= published


def compose_command() -> list[str]:
    """``docker compose`` (the v2 plugin) if it answers, else ``docker-compose``."""
    docker = shutil.which("docker")
    if docker is not None and run(docker, "compose", "version").returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    skip_or_fail(
        "neither `docker compose` nor docker-compose is installed"
        " (Debian package docker-compose; bash .ci/run installs it)"
    )


def test_docker_compose_accepts_the_example() -> None:
    result = run(*compose_command(), "--file", COMPOSE, "config", cwd=COMPOSE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    merged = yaml.safe_load(result.stdout)
    environment = merged["services"]["aleph-node"]["environment"]
    assert environment["BASE_PATH"] == "/data"  # the env_file was read
