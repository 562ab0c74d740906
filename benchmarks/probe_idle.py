"""The probe mode's idle cost: what the azwatch sidecar of examples/kubernetes/ asks of a pod.

Run ``.venv/bin/python benchmarks/probe_idle.py [--seconds N] [--warmup N]`` (defaults 300
and 30). No Docker is needed. What runs, all on 127.0.0.1:

* a fake node RPC (tests/fakenoderpc.py) and a fake reference (tests/fakerpc.py), both
  rising one block a second, the node two blocks behind;
* ``python -m azwatch run`` with RESTART_VIA=kubelet and the manifest's settings otherwise
  at their defaults (RPC_POLL_INTERVAL=10, CHECK_INTERVAL=60);
* a kubelet stand-in that GETs ``/livez`` every 10 s (the probe's periodSeconds).

Measures, over the window after the warm-up: the azwatch process's CPU time (user + system)
as a share of one core, its RSS at the end (psutil), and the time each ``/livez`` answer
took as the stand-in saw it. Exit code 0 when every answer was 200, else 1.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import anyio
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakenoderpc import FakeNodeRpc  # noqa: E402
from fakerpc import FakeRpc  # noqa: E402

PROBE_PERIOD = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def move(rpc: FakeRpc, node: FakeNodeRpc) -> None:
    began = time.monotonic()
    while True:
        head = 1000 + int(time.monotonic() - began)
        rpc.head = head
        node.best, node.finalized = head - 2, head - 4
        await anyio.sleep(0.2)


async def measure(seconds: float, warmup: float) -> int:
    async with FakeRpc(head=1000) as rpc, FakeNodeRpc(best=998) as node:
        port = free_port()
        env = {
            **os.environ,
            "RESTART_VIA": "kubelet",
            "CONTAINER_NAME": "aleph-node",
            "NODE_RPC_URL": node.url,
            "RPC_URL": rpc.url,
            "HTTP_PORT": str(port),
            "PROBE_PERIOD": f"{PROBE_PERIOD:g}",
            "LOG_LEVEL": "WARNING",
        }
        process = await anyio.open_process(
            [sys.executable, "-m", "azwatch", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        statuses: list[int] = []
        latencies: list[float] = []
        async with process, anyio.create_task_group() as group, aiohttp.ClientSession() as http:
            group.start_soon(move, rpc, node)
            watched = psutil.Process(process.pid)
            await anyio.sleep(warmup)
            cpu_start, started = watched.cpu_times(), time.monotonic()
            while time.monotonic() - started < seconds:
                asked = time.perf_counter()
                with anyio.fail_after(5):
                    async with http.get(f"http://127.0.0.1:{port}/livez") as resp:
                        await resp.read()
                        statuses.append(resp.status)
                latencies.append(time.perf_counter() - asked)
                await anyio.sleep(PROBE_PERIOD)
            cpu_end, ended = watched.cpu_times(), time.monotonic()
            rss = watched.memory_info().rss
            process.terminate()
            with anyio.fail_after(10):
                await process.wait()
            group.cancel_scope.cancel()
    used = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    window = ended - started
    print(f"window: {window:.0f} s after a {warmup:.0f} s warm-up; {len(statuses)} probes")
    print(f"cpu: {used:.2f} s = {100 * used / window:.3f} % of one core")
    print(f"rss: {rss / 2**20:.1f} MiB")
    print(
        f"/livez: median {1000 * statistics.median(latencies):.1f} ms, "
        f"max {1000 * max(latencies):.1f} ms; statuses {sorted(set(statuses))}"
    )
    return 0 if set(statuses) == {200} else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    args = parser.parse_args()
    return anyio.run(measure, args.seconds, args.warmup)


if __name__ == "__main__":
    sys.exit(main())
