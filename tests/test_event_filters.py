"""Which Docker events the watcher asks the daemon for, in each way of naming containers."""

from __future__ import annotations

from azwatch.config import Config
from azwatch.watcher import Watcher

RPC = ("http://127.0.0.1:9933",)


async def test_by_name_the_filter_names_the_containers_and_their_current_ids() -> None:
    watcher = Watcher(Config(container_names=("alpha", "beta"), rpc_urls=RPC))
    assert watcher._narrowing() == {"container": ["alpha", "beta"]}
    watcher._ids["alpha"] = "0f" * 32  # what the follower's inspect records
    assert watcher._narrowing() == {"container": ["alpha", "beta", "0f" * 32]}


async def test_by_label_the_filter_is_the_label_as_given() -> None:
    for label in ("azwatch.enable", "azwatch.enable=true"):
        watcher = Watcher(Config(container_label=label, rpc_urls=RPC))
        assert watcher._narrowing() == {"label": [label]}


async def test_names_and_a_label_take_every_event() -> None:
    """Docker ANDs filter keys: no single filter selects 'this name or that label'."""
    config = Config(container_names=("alpha",), container_label="azwatch.enable", rpc_urls=RPC)
    assert Watcher(config)._narrowing() == {}
