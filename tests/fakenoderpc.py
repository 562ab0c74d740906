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
from types import TracebackType
from typing import Any, Final, Literal, Self, get_args

import anyio
from aiohttp import web
from fakerpc import MAINNET_GENESIS, header_json
from loopback import start_on_loopback, stop

Mode = Literal["ok", "hang", "close", "http_500", "html", "bad_json", "rpc_error", "wrong_id"]
MODES: Final[tuple[str, ...]] = get_args(Mode)

#: Longer than any client timeout a test uses; a hanging handler is released at shutdown.
HANG_SECONDS: Final = 30.0

_JSON = "application/json"


def block_hash(number: int) -> str:
    """The fake chain's hash of block *number* (full 0x-hex, 32 bytes)."""
    return "0x" + hashlib.sha256(f"block:{number}".encode()).hexdigest()


class FakeNodeRpc:
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
        self._runner: web.AppRunner | None = None
        self._stopping: anyio.Event | None = None
        self._url = ""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``: the RPC."""
        if not self._url:
            raise RuntimeError("FakeNodeRpc is not running")
        return self._url

    @property
    def metrics_url(self) -> str:
        """``http://127.0.0.1:<port>/metrics``: the Prometheus page (same server, for tests)."""
        return self.url + "metrics"

    async def __aenter__(self) -> Self:
        self._stopping = anyio.Event()
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, port = await start_on_loopback(app)
        self._url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await stop(runner)
        self._url = ""

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
            await self._hang()
        text = self.metrics_text if self.metrics_text is not None else self.metrics_page()
        return web.Response(
            text=text,
            status=self.metrics_status,
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Prometheus-Format": "0.0.4"},
        )

    async def _hang(self) -> None:
        assert self._stopping is not None
        with anyio.move_on_after(HANG_SECONDS):
            await self._stopping.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        raw = await request.read()
        try:
            body: object = json.loads(raw)
        except ValueError:
            return _rpc(_error(None, -32700, "Parse error"))
        request_id = body.get("id") if isinstance(body, dict) else None
        mode = self.mode
        if mode == "hang":
            await self._hang()
            return _rpc(_error(request_id, -32000, "shutting down"))
        if mode == "close":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)
        if mode == "http_500":
            return _rpc(_error(request_id, -32603, "Internal error"), status=500)
        if mode == "html":
            page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return web.Response(text=page, content_type="text/html")
        if mode == "bad_json":
            return web.Response(
                text='{"jsonrpc":"2.0","result":{"parentHash":"0x2aab',
                content_type=_JSON,
                charset="utf-8",
            )
        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            return _rpc(_error(request_id, -32600, "Invalid request"))
        method = body["method"]
        params = body.get("params") or []
        self.methods.append(method)
        if mode == "rpc_error" or method == self.fail_method:
            return _rpc(_error(request_id, -32000, "oneshot canceled"))
        if mode == "wrong_id":
            request_id = request_id + 1 if isinstance(request_id, int) else "wrong"
        return _rpc({"jsonrpc": "2.0", **self._answer(method, params, request_id)})

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
        return _error(request_id, -32601, "Method not found")

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


def _error(request_id: object, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


def _rpc(payload: dict[str, Any], *, status: int = 200) -> web.Response:
    """Compact JSON, ``application/json; charset=utf-8``, as jsonrpsee sends it."""
    return web.Response(
        text=json.dumps(payload, separators=(",", ":")),
        status=status,
        content_type=_JSON,
        charset="utf-8",
    )
