"""The floor of azwatch's work: follow a container's log, optionally poll a reference head.

``python benchmarks/_bare_follow.py CONTAINER [--rpc URL [--interval SECONDS]]``

It follows the log from now on (``tail=0``) with aiodocker and counts the log items received,
nothing else. With ``--rpc`` it also asks URL for ``chain_getHeader`` every ``--interval``
seconds (default 10, fixed rate) through one aiohttp session, reading the answer's JSON. On
SIGUSR1 it prints a snapshot, and on SIGTERM, SIGINT or the end of the log stream (the
container stopped, the daemon restarted) a final one before it exits, each one JSON object on
a line of its own::

    {"lines": N, "first": T, "last": T, "polls": P, "heads": H}

the number of log items received, the wall-clock times of the first and the last one, the
polls sent and the answers that carried a block number. ``benchmarks/follow_live.py`` runs it
beside azwatch to compare their costs (part A: the log only; ``--idle``: log and head).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

import aiodocker
import aiohttp

PAYLOAD = {"jsonrpc": "2.0", "id": 1, "method": "chain_getHeader", "params": []}


class Counts:
    def __init__(self) -> None:
        self.lines = 0
        self.first: float | None = None
        self.last: float | None = None
        self.polls = 0
        self.heads = 0

    def report(self) -> None:
        snapshot = {"lines": self.lines, "first": self.first, "last": self.last}
        print(json.dumps(snapshot | {"polls": self.polls, "heads": self.heads}), flush=True)


async def follow(docker: aiodocker.Docker, name: str, counts: Counts) -> None:
    container = await docker.containers.get(name)
    stream = container.log(stdout=True, stderr=True, follow=True, timestamps=True, tail=0)
    async for _ in stream:
        counts.lines += 1
        counts.last = time.time()
        counts.first = counts.first or counts.last


async def poll(url: str, interval: float, counts: Counts) -> None:
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        next_round = loop.time()
        while True:
            counts.polls += 1
            try:
                async with session.post(url, json=PAYLOAD) as response:
                    answer = await response.json()
                int(answer["result"]["number"], 16)
                counts.heads += 1
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
                pass
            next_round += interval
            await asyncio.sleep(max(0.0, next_round - loop.time()))


async def run(name: str, rpc: str | None, interval: float) -> Counts:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    counts = Counts()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    loop.add_signal_handler(signal.SIGUSR1, counts.report)
    docker = aiodocker.Docker()
    polling = None if rpc is None else asyncio.create_task(poll(rpc, interval, counts))
    try:
        await follow(docker, name, counts)  # the end of the stream ends the process
    except asyncio.CancelledError:
        pass
    finally:
        if polling is not None:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
        await docker.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("container")
    parser.add_argument("--rpc", metavar="URL", help="also poll this JSON-RPC endpoint's head")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls")
    args = parser.parse_args()
    asyncio.run(run(args.container, args.rpc, args.interval)).report()


if __name__ == "__main__":
    main()
