"""azwatch: restart an Aleph Zero node container when it falls out of sync.

Library use::

    from azwatch import Config, watch

    await watch(Config(container_names=("aleph-node",)))

``watch`` runs until cancelled; it installs no signal handlers and configures no logging.
"""

from azwatch.config import Config, ConfigError

__all__ = ["Config", "ConfigError", "__version__"]
__version__ = "0.1.0"
