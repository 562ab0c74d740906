"""A fake watched node's own interfaces for tests: JSON-RPC and a metrics page on 127.0.0.1.

It answers as aleph-node r-15 does (``reference/aleph-node-logs.md`` §7, §8): jsonrpsee's
member order, hex ``number``, ``chain_getFinalizedHead`` then ``chain_getHeader([hash])``,
``system_health`` as ``{peers, isSyncing, shouldHavePeers}``, ``alephNode_ready`` or "method not
found" (-32601) where the release does not offer it, and ``GET /metrics`` in the Prometheus text
format. A test drives it through attributes, between requests::

    async with FakeNodeRpc(best=100, finalized=98) as node:
        node.url            # http://127.0.0.1:<port>/
        node.metrics_url    # http://127.0.0.1:<port>/metrics
        node.best = 101
        node.ready = None   # alephNode_ready: method not found
        node.mode = "hang"  # every request hangs (see Mode)
        node.fail_method = "system_health"   # only this method answers an error
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final, Literal, get_args

from aiohttp import web
from fakerpc import (
    HANG_SECONDS,
    MAINNET_GENESIS,
    broken_answer,
    header_json,
    rpc_answer,
    rpc_error,
)
from loopback import LoopbackServer

#: The failures of the reference's fake (:func:`fakerpc.broken_answer`), and two of JSON-RPC.
Mode = Literal["ok", "hang", "close", "http_500", "html", "bad_json", "rpc_error", "wrong_id"]
MODES: Final[tuple[str, ...]] = get_args(Mode)

_JSON = "application/json"


def block_hash(number: int) -> str:
    """The fake chain's hash of block *number* (full 0x-hex, 32 bytes)."""
    return "0x" + hashlib.sha256(f"block:{number}".encode()).hexdigest()


class FakeNodeRpc(LoopbackServer):
    """One fake node; ``async with FakeNodeRpc() as node`` starts and stops it."""

    def __init__(
        self,
        best: int = 105_499_803,
        finalized: int | None = None,
        *,
        peers: int = 26,
        syncing: bool = False,
        ready: bool | None = True,
    ) -> None:
        super().__init__()
        self.best = best
        self.finalized = best - 2 if finalized is None else finalized
        self.peers = peers
        self.syncing = syncing
        #: ``alephNode_ready``'s answer; ``None``: the method is not offered (-32601).
        self.ready = ready
        self.mode: Mode = "ok"
        #: A method that alone answers JSON-RPC error -32000 (others stay healthy).
        self.fail_method: str | None = None
        #: ``GET /metrics`` answers this status (200: the page) and this page, if set.
        self.metrics_status = 200
        self.metrics_text: str | None = None
        #: JSON-RPC methods asked, in order; HTTP requests of any kind.
        self.methods: list[str] = []
        self.requests = 0

    @property
    def metrics_url(self) -> str:
        """``http://127.0.0.1:<port>/metrics``: the Prometheus page (same server, for tests)."""
        return self.url + "metrics"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._metrics)
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def metrics_page(self) -> str:
        """The node's metrics page as aleph-node r-15 renders the series azwatch reads."""
        chain = 'chain="mainnet"'
        return (
            "# HELP substrate_block_height Block height info of the chain\n"
            "# TYPE substrate_block_height gauge\n"
            f'substrate_block_height{{{chain},status="best"}} {self.best}\n'
            f'substrate_block_height{{{chain},status="finalized"}} {self.finalized}\n'
            "# HELP substrate_sub_libp2p_peers_count Number of connected peers\n"
            "# TYPE substrate_sub_libp2p_peers_count gauge\n"
            f"substrate_sub_libp2p_peers_count{{{chain}}} {self.peers}\n"
            "# HELP aleph_sync_is_major_syncing Whether the node is performing a major sync\n"
            "# TYPE aleph_sync_is_major_syncing gauge\n"
            f"aleph_sync_is_major_syncing{{{chain}}} {int(self.syncing)}\n"
            "# HELP aleph_best_block Best block\n"
            "# TYPE aleph_best_block gauge\n"
            f"aleph_best_block{{{chain}}} {self.best}\n"
            "# HELP aleph_top_finalized_block Top finalized block\n"
            "# TYPE aleph_top_finalized_block gauge\n"
            f"aleph_top_finalized_block{{{chain}}} {self.finalized}\n"
        )

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "hang":
            await self.hang(HANG_SECONDS)
        text = self.metrics_text if self.metrics_text is not None else self.metrics_page()
        return web.Response(
            text=text,
            status=self.metrics_status,
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Prometheus-Format": "0.0.4"},
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        raw = await request.read()
        try:
            body: object = json.loads(raw)
        except ValueError:
            return rpc_answer(rpc_error(None, -32700, "Parse error"))
        request_id = body.get("id") if isinstance(body, dict) else None
        mode = self.mode
        failed = await broken_answer(self, mode, request, request_id)
        if failed is not None:
            return failed
        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            return rpc_answer(rpc_error(request_id, -32600, "Invalid request"))
        method = body["method"]
        params = body.get("params") or []
        self.methods.append(method)
        if mode == "rpc_error" or method == self.fail_method:
            return rpc_answer(rpc_error(request_id, -32000, "oneshot canceled"))
        if mode == "wrong_id":
            request_id = request_id + 1 if isinstance(request_id, int) else "wrong"
        return rpc_answer({"jsonrpc": "2.0", **self._answer(method, params, request_id)})

    def _answer(self, method: str, params: list[Any], request_id: object) -> dict[str, Any]:
        """``result`` or ``error``, then ``id``, in jsonrpsee's member order."""
        if method == "chain_getHeader":
            number = self.best if not params or params[0] is None else self._number_of(params[0])
            if number is None:
                return {"result": None, "id": request_id}  # unknown hash: null
            return {"result": _header(number), "id": request_id}
        if method in ("chain_getFinalizedHead", "chain_getFinalisedHead"):
            return {"result": block_hash(self.finalized), "id": request_id}
        if method == "chain_getBlockHash" and params == [0]:
            return {"result": MAINNET_GENESIS, "id": request_id}
        if method == "system_health":
            health = {"peers": self.peers, "isSyncing": self.syncing, "shouldHavePeers": True}
            return {"result": health, "id": request_id}
        if method == "alephNode_ready" and self.ready is not None:
            return {"result": self.ready, "id": request_id}
        return rpc_error(request_id, -32601, "Method not found")

    def _number_of(self, wanted: object) -> int | None:
        """The block number of a hash the fake chain has handed out (best or finalized)."""
        for number in (self.finalized, self.best):
            if wanted == block_hash(number):
                return number
        return None


def _header(number: int) -> dict[str, Any]:
    header = header_json(number)
    header["parentHash"] = block_hash(number - 1)
    return header
