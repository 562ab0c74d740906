"""The floor of following a container's log: count what aiodocker delivers, nothing else.

``python benchmarks/_bare_follow.py CONTAINER`` follows the log from now on (``tail=0``) until
SIGTERM or SIGINT, then prints one JSON object: ``{"lines": N, "first": T, "last": T}``, the
number of log items received and the wall-clock times of the first and last one.
``benchmarks/follow_live.py`` runs it beside azwatch to compare their costs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import aiodocker


async def count_lines(name: str) -> dict[str, float | int | None]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    lines, first, last = 0, None, None
    docker = aiodocker.Docker()
    try:
        container = await docker.containers.get(name)
        stream = container.log(stdout=True, stderr=True, follow=True, timestamps=True, tail=0)
        async for _ in stream:
            lines += 1
            last = time.time()
            first = first or last
    except asyncio.CancelledError:
        pass
    finally:
        await docker.close()
    return {"lines": lines, "first": first, "last": last}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: _bare_follow.py CONTAINER")
    print(json.dumps(asyncio.run(count_lines(sys.argv[1]))), flush=True)


if __name__ == "__main__":
    main()
