"""examples/systemd: the unit for a pip install, and its settings file.

The unit's sections and keys are always checked with configparser; ``systemd-analyze verify``
and ``systemd-analyze security --offline`` check it where systemd-analyze can run (Debian's
systemd package; without it the test skips, and fails under ``CI=true``; where it is
installed but cannot verify even a trivial unit, as in some containers, it skips with that
error, also under CI). The settings file must be a valid azwatch configuration.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest
from distkit import ROOT, env_lines, run, tool

from azwatch.config import SETTINGS, Config

UNIT = ROOT / "examples" / "systemd" / "azwatch.service"
UNIT_ENV = ROOT / "examples" / "systemd" / "azwatch.env"
VARIABLES = {setting.variable for setting in SETTINGS}


def unit() -> configparser.ConfigParser:
    """The unit file; a key given twice (SystemCallFilter=) keeps its last value here."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"), source=str(UNIT))
    return parser


def test_the_unit_runs_azwatch_unprivileged_with_its_settings_file() -> None:
    service = unit()["Service"]
    assert service["User"] == "azwatch"
    assert "docker" in service["SupplementaryGroups"].split()
    assert service["EnvironmentFile"] == "/etc/azwatch/azwatch.env"
    program, *args = service["ExecStart"].split()
    assert Path(program).is_absolute()
    assert Path(program).name == "azwatch"
    assert args == ["run"]
    assert service["Restart"] == "on-failure"
    assert "2" in service["RestartPreventExitStatus"].split()  # a configuration error
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
    assert "docker.service" in unit()["Unit"]["After"].split()


def test_the_unit_is_hardened_but_can_reach_the_docker_socket() -> None:
    service = unit()["Service"]
    wanted = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "CapabilityBoundingSet": "",
    }
    assert {key: service.get(key) for key in wanted} == wanted
    families = service["RestrictAddressFamilies"].split()
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)  # the socket, RPC_URL, HTTP_PORT
    # Nothing hides the socket or cuts the network.
    for key in ("InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths"):
        assert not any(
            path.lstrip("-+").startswith(("/run", "/var/run", "/var"))
            for path in service.get(key, "").split()
        ), key
    assert service.get("PrivateNetwork", "no") == "no"
    assert service.get("IPAddressDeny", "") == ""
    assert service.get("PrivateUsers", "no") == "no"  # it would hide the docker group


def verifiable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart= pointed at this environment's azwatch (verify needs the
    program to exist); nothing else changed."""
    azwatch = Path(sys.executable).with_name("azwatch")
    if not azwatch.exists():
        pytest.fail(f"{azwatch} is missing: pip install -e . first")
    text = UNIT.read_text(encoding="utf-8")
    program = unit()["Service"]["ExecStart"].split()[0]
    path = tmp_path / UNIT.name
    path.write_text(text.replace(f"ExecStart={program} ", f"ExecStart={azwatch} "))
    return path


def analyze(tmp_path: Path) -> str:
    """systemd-analyze, once it has shown it can verify a trivial unit here.

    Not installed: skip (fail under CI=true: .ci/run installs Debian's systemd). Installed but
    unable to run in this environment (some containers): skip with its error, even under CI,
    since then it checks nothing about the unit.
    """
    systemd_analyze = tool("systemd-analyze", "Debian package systemd")
    probe = tmp_path / "probe" / "azwatch-probe.service"
    probe.parent.mkdir()
    probe.write_text("[Service]\nExecStart=/bin/true\n")
    result = run(systemd_analyze, "verify", probe)
    if result.returncode != 0 or result.stdout.strip() or result.stderr.strip():
        pytest.skip(
            "systemd-analyze verify cannot run here (even on a trivial unit): "
            + (result.stderr or result.stdout).strip()
        )
    return systemd_analyze


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    systemd_analyze = analyze(tmp_path)
    path = verifiable_unit(tmp_path)
    result = run(systemd_analyze, "verify", path)
    # verify exits 0 even on an unknown key or a bad value, but says so.
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


def test_systemd_analyze_rates_the_unit_safe(tmp_path: Path) -> None:
    """Exposure 2.0 or less of 10 ("OK"; the unit rates 1.5 on Debian 12's systemd 252)."""
    systemd_analyze = analyze(tmp_path)
    path = verifiable_unit(tmp_path)
    result = run(systemd_analyze, "security", "--offline=true", "--threshold=20", path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_the_unit_env_file_is_a_valid_azwatch_configuration() -> None:
    values = env_lines(UNIT_ENV)
    assert set(values) <= VARIABLES, set(values) - VARIABLES
    assert values["CONTAINER_NAME"]
    assert values.get("HTTP_PORT"), "Prometheus needs HTTP_PORT (docs/prometheus.md)"
    # Only for the image started as root; a unit with User= must not ask azwatch to switch.
    assert not {"MONITOR_UID", "MONITOR_GID"} & set(values)
    Config.from_env(values)  # raises on a bad value


def test_the_unit_env_file_comments_name_real_settings() -> None:
    """Commented-out examples (`# VARIABLE=value`) are settings azwatch knows, too."""
    for line in UNIT_ENV.read_text(encoding="utf-8").splitlines():
        body = line.lstrip("# ")
        key, sep, _ = body.partition("=")
        if line.startswith("# ") and sep and key.isupper() and " " not in key:
            assert key in VARIABLES, line
