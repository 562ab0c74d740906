"""azwatch: restart an Aleph Zero node container when it falls out of sync.

Library use::

    from azwatch import Config, watch

    await watch(Config(container_names=("aleph-node",)))

``watch`` runs until cancelled; it installs no signal handlers and configures no logging.
"""

from azwatch.config import Config, ConfigError

__all__ = ["Config", "ConfigError", "__version__", "watch"]
__version__ = "0.1.0"


async def watch(config: Config) -> None:
    """Watch the containers of *config* until cancelled (see :func:`azwatch.watcher.watch`)."""
    # Imported here so that `azwatch replay` and `Config` do not load aiodocker and aiohttp.
    from azwatch.watcher import watch as watch_forever

    await watch_forever(config)
