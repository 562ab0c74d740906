"""The azwatch container image, run as operators run it: against the real daemon with the
socket mounted, as a non-root user, read-only, watching a fake node container.

The image is built by `.ci/build-image` (tag ``azwatch:ci``) before the tests run in CI.
Locally these tests are skipped when that image is missing or ``AZWATCH_SKIP_IMAGE=1``;
under ``CI=true`` they never skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from dockerkit import DockerEvents, FakeNodeFactory, docker, in_ci
from fakerpc import FakeRpc
from watchkit import NODE, HeadMover

pytestmark = [pytest.mark.docker, pytest.mark.image]

IMAGE = os.environ.get("AZWATCH_IMAGE", "azwatch:ci")
SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def image(docker_engine: str) -> str:
    """The image under test; skipped locally when absent or when asked to."""
    if not in_ci():
        if os.environ.get("AZWATCH_SKIP_IMAGE") == "1":
            pytest.skip("AZWATCH_SKIP_IMAGE=1")
        if docker("image", "inspect", IMAGE, check=False).returncode != 0:
            pytest.skip(f"image {IMAGE} not built (run .ci/build-image)")
    docker("image", "inspect", IMAGE)  # in CI a missing image fails here
    return IMAGE


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names of azwatch containers a test runs; removed at teardown."""
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "-f", name, check=False)


def health(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()


def socket_gid() -> str:
    return str(os.stat(SOCKET).st_gid)


def azwatch_args(name: str, *env: str, group: bool = True, socket: bool = True) -> list[str]:
    """`docker run` options: non-root (the image's user), read-only, host network (to reach
    the fake RPC on 127.0.0.1), the socket mounted and its group added."""
    args = ["run", "--name", name, "--read-only", "--network", "host"]
    if socket:
        args += ["-v", f"{SOCKET}:{SOCKET}"]
    if group:
        args += ["--group-add", socket_gid()]
    for item in env:
        args += ["-e", item]
    return args


def test_image_runs_non_root_read_only_and_restarts_a_lagging_node(
    image: str, fake_node: FakeNodeFactory, containers: list[str]
) -> None:
    """The image restarts the node on severe lag and reports itself healthy; `docker stop`
    ends it with exit 0 quickly, and its logs never show the RPC URL's key."""
    node = fake_node(**NODE)
    name = f"azwatch-test-image-{uuid.uuid4().hex[:8]}"
    containers.append(name)

    async def scenario() -> None:
        async with FakeRpc() as rpc, anyio.create_task_group() as group:
            group.start_soon(HeadMover(rpc, node, offset=500).run)
            with DockerEvents(node.name) as events:
                args = azwatch_args(
                    name,
                    f"CONTAINER_NAME={node.name}",
                    f"RPC_URL={rpc.url}?apikey=S3CRETKEY",
                    "COOLDOWN=3",
                    "RPC_POLL_INTERVAL=0.5",
                    "RPC_TIMEOUT=0.4",
                    "CHECK_INTERVAL=1",
                    "STOP_TIMEOUT=1",
                )
                # The image's own HEALTHCHECK, checked every second instead of every 30 s.
                run = [*args[:1], "-d", "--health-interval=1s", *args[1:], image]
                await anyio.to_thread.run_sync(lambda: docker(*run))
                with anyio.fail_after(30):
                    await events.wait_for_async("restart")
                with anyio.fail_after(30):
                    while await anyio.to_thread.run_sync(health, name) != "healthy":
                        await anyio.sleep(0.5)
            group.cancel_scope.cancel()

    anyio.run(scenario)
    info = docker("inspect", "-f", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", name)
    assert info.stdout.split() == ["1000:996", "true"]
    began = time.monotonic()
    docker("stop", "-t", "10", name)
    took = time.monotonic() - began
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    assert took < 3, f"docker stop took {took:.1f}s"
    logs = docker("logs", name).stdout + docker("logs", name).stderr
    assert "restarting: severe_lag" in logs
    assert "S3CRETKEY" not in logs
    assert "Traceback" not in logs


def run_to_exit(image: str, name: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args, image], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("case", "env", "options", "code", "says"),
    [
        pytest.param(
            "no-container", (), {}, 2, "CONTAINER_NAME is not set", id="missing-container-name"
        ),
        pytest.param(
            "no-socket",
            ("CONTAINER_NAME=x",),
            {"socket": False},
            3,
            "does not exist: mount it",
            id="socket-not-mounted",
        ),
        pytest.param(
            "wrong-group",
            ("CONTAINER_NAME=x",),
            {"group": False},
            3,
            "set MONITOR_GID=",
            id="socket-group-mismatch",
        ),
        pytest.param(
            "bad-value",
            ("CONTAINER_NAME=x", "BLOCK_LAG_20=lots"),
            {},
            2,
            "BLOCK_LAG_20='lots'",
            id="bad-value",
        ),
    ],
)
def test_bad_setups_give_one_clear_line(
    image: str,
    containers: list[str],
    case: str,
    env: tuple[str, ...],
    options: dict[str, bool],
    code: int,
    says: str,
) -> None:
    """Each bad set-up: one line saying what is wrong and how to fix it; no traceback."""
    name = f"azwatch-test-image-{case}-{uuid.uuid4().hex[:6]}"
    containers.append(name)
    result = run_to_exit(image, name, azwatch_args(name, *env, **options))
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == code, output
    assert says in output
    assert len(output.splitlines()) == 1, output
    assert "Traceback" not in output


def test_started_as_root_it_switches_to_monitor_uid_and_gid(
    image: str, fake_node: FakeNodeFactory, containers: list[str]
) -> None:
    """Like the original image: started as root with MONITOR_UID/MONITOR_GID, azwatch runs as
    those ids (and that group opens the socket), with no wrapper process and no chown."""
    node = fake_node(**NODE)
    name = f"azwatch-test-image-root-{uuid.uuid4().hex[:8]}"
    containers.append(name)
    args = azwatch_args(
        name,
        f"CONTAINER_NAME={node.name}",
        "MONITOR_UID=1234",
        f"MONITOR_GID={socket_gid()}",
        "RPC_URL=http://127.0.0.1:9/",
        group=False,
    )
    docker(args[0], "-d", "--user", "0", *args[1:], image)
    pid = docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()

    def ids() -> tuple[str, str] | None:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        uid = next(line.split()[1] for line in status if line.startswith("Uid:"))
        gid = next(line.split()[1] for line in status if line.startswith("Gid:"))
        return (uid, gid) if uid != "0" else None

    deadline = time.monotonic() + 10
    while (found := ids()) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found == ("1234", socket_gid())
    time.sleep(1.5)
    logs = docker("logs", name)
    assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true", logs
    assert "permission" not in logs.stdout + logs.stderr
