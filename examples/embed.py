"""Run azwatch inside your own asyncio application.

``watch(config)`` is an ordinary coroutine: it shares your event loop with your other tasks,
installs no signal handler, configures no logging, and closes everything it opened when you
cancel it. Here it runs beside a heartbeat task for a while, then the application cancels it
and carries on.

    CONTAINER_NAME=aleph-node python examples/embed.py

Settings come from the same environment variables as the CLI; ``AZWATCH_EMBED_SECONDS``
(default 30) says how long this example watches before cancelling.
"""

from __future__ import annotations

import asyncio
import logging
import os

from azwatch import Config, ConfigError, watch


async def heartbeat() -> None:
    """Stands in for the rest of your application."""
    beats = 0
    while True:
        beats += 1
        logging.getLogger("app").info("application heartbeat %d", beats)
        await asyncio.sleep(5)


async def main() -> None:
    config = Config.from_env(os.environ)
    seconds = float(os.environ.get("AZWATCH_EMBED_SECONDS", "30"))
    async with asyncio.TaskGroup() as group:
        beating = group.create_task(heartbeat(), name="app.heartbeat")
        watching = group.create_task(watch(config), name="azwatch")
        await asyncio.sleep(seconds)
        watching.cancel()  # azwatch stops: its sessions, sockets and tasks are closed
        await asyncio.sleep(0.5)
        logging.getLogger("app").info("azwatch stopped; the application goes on")
        beating.cancel()


if __name__ == "__main__":
    # Logging is the application's business; azwatch only uses loggers named "azwatch.*".
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(main())
    except ConfigError as error:
        raise SystemExit(f"configuration error: {error}") from None
