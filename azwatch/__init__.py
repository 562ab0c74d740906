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
    """Watch the containers of *config* until cancelled (see :func:`azwatch.watcher.watch`);
    with ``RESTART_VIA=kubelet``, serve the verdict instead (:mod:`azwatch.probewatch`)."""
    # Imported here so that `azwatch replay` and `Config` do not load aiodocker and aiohttp.
    if config.restart_via == "kubelet":
        from azwatch.probewatch import watch_via_kubelet

        await watch_via_kubelet(config)
        return
    from azwatch.watcher import watch as watch_forever

    await watch_forever(config)
