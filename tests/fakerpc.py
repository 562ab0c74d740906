"""A fake Aleph Zero reference node for tests: JSON-RPC over HTTP on 127.0.0.1.

It speaks the node's wire format (jsonrpsee's member order, 0x-hex block numbers, the
standard error objects) and can be switched, between requests, into the ways real providers
fail: rate limits, proxy error pages, truncated JSON, hangs, dropped connections, malformed
headers. A test drives it through three attributes::

    async with FakeRpc(head=100) as server:
        server.url        # http://127.0.0.1:<port>/
        server.mode = "html"
        server.head = 101
        server.requests   # how many HTTP requests arrived
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from typing import Any, Final, Literal, get_args

from aiohttp import web
from loopback import LoopbackServer

Mode = Literal[
    "ok",
    "rpc_error",
    "rate_limit_http",
    "rate_limit_rpc",
    "http_500",
    "html",
    "html_502",
    "bad_json",
    "hang",
    "close",
    "no_number",
    "int_number",
    "bad_hex",
    "decimal_number",
    "long_hex",
    "null_result",
    "not_object",
    "wrong_id",
    "huge_body",
]
MODES: Final[tuple[str, ...]] = get_args(Mode)

#: Longer than any client timeout a test uses; a hanging handler is released at shutdown.
HANG_SECONDS: Final = 30.0

_JSON = "application/json"
_CHARSET = "utf-8"


def closed_port_url() -> str:
    """The URL of a 127.0.0.1 port nothing listens on: connecting to it is refused.

    The port is bound and released, so it was free a moment ago; the kernel does not hand
    it out again right away.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def header_json(number: int) -> dict[str, Any]:
    """A realistic ``chain_getHeader`` result for block *number* (hashes derived from it)."""

    def digest(tag: str) -> str:
        return "0x" + hashlib.sha256(f"{tag}:{number}".encode()).hexdigest()

    return {
        "parentHash": digest("parent"),
        "number": hex(number),
        "stateRoot": digest("state"),
        "extrinsicsRoot": digest("extrinsics"),
        "digest": {
            "logs": [
                "0x066175726120" + (number + 1_742_000_000).to_bytes(8, "little").hex(),
                "0x05617572610101" + digest("seal")[2:] * 2,
            ]
        },
    }


#: Aleph Zero mainnet's genesis hash; the node prints it short: /0x7025…344e/sync/0.
MAINNET_GENESIS = "0x70255b4d28de0fc4e1a193d7e175ad1ccef431598211c55538f1018651a0344e"
#: Aleph Zero testnet's, for a reference of another chain (any other hash would do).
TESTNET_GENESIS = "0x05d5279c52c484cc80396535a316add7d47b1c5b9e0398dd1f584149341460c5"


class FakeRpc(LoopbackServer):
    """One fake endpoint; ``async with FakeRpc() as server`` starts and stops it."""

    def __init__(self, head: int = 105_499_803, *, retry_after: str | None = "1") -> None:
        super().__init__()
        self.head = head
        self.mode: Mode = "ok"
        #: ``Retry-After`` header sent with ``rate_limit_http`` (``None``: no header).
        self.retry_after = retry_after
        #: HTTP requests received, whatever their content.
        self.requests = 0
        #: The last request body that parsed as JSON.
        self.last_request: object = None
        #: Client (host, port) pairs seen: one per TCP connection, so pooling is observable.
        self.peers: set[tuple[str, int]] = set()
        #: (Unix time, head) of every well-formed head answered, for recording a scenario.
        self.answered: list[tuple[float, int]] = []
        #: What ``chain_getBlockHash(0)`` answers: the chain's genesis hash (mainnet's).
        self.genesis: object = MAINNET_GENESIS
        #: The finalized block ``chain_getFinalizedHead`` names (``None``: "method not found").
        self.finalized: int | None = None
        #: JSON-RPC methods asked, in order.
        self.methods: list[str] = []
        #: Head questions (``chain_getHeader`` with no hash) asked.
        self.head_polls = 0

    @property
    def head_requests(self) -> int:
        """Requests other than the genesis question (``chain_getBlockHash(0)``)."""
        return self.requests - self.methods.count("chain_getBlockHash")

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    # --- request handling ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if request.transport is not None:
            host, port = request.transport.get_extra_info("peername")[:2]
            self.peers.add((host, port))
        raw = await request.read()
        try:
            body: object = json.loads(raw)
        except ValueError:
            return rpc_answer(rpc_error(None, -32700, "Parse error"))
        self.last_request = body
        request_id = body.get("id") if isinstance(body, dict) else None
        mode = self.mode

        failed = await broken_answer(self, mode, request, request_id)
        if failed is not None:
            return failed
        if mode == "rate_limit_http":
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return web.json_response(
                {"message": "API rate limit exceeded"}, status=429, headers=headers
            )
        if mode == "huge_body":
            filler = "0" * (2 << 20)
            return rpc_answer({"jsonrpc": "2.0", "result": {"filler": filler}, "id": request_id})
        if mode == "not_object":
            return web.Response(text="[1,2]", content_type=_JSON, charset=_CHARSET)

        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            return rpc_answer(rpc_error(request_id, -32600, "Invalid request"))
        self.methods.append(body["method"])
        if body["method"] == "chain_getBlockHash" and body.get("params") == [0]:
            if self.genesis is None:
                return rpc_answer(rpc_error(request_id, -32601, "Method not found"))
            return rpc_answer({"jsonrpc": "2.0", "result": self.genesis, "id": request_id})
        finalized = self.finalized
        if body["method"] == "chain_getFinalizedHead" and finalized is not None:
            return rpc_answer({"jsonrpc": "2.0", "result": _hash(finalized), "id": request_id})
        asks_finalized = finalized is not None and body.get("params") == [_hash(finalized)]
        if body["method"] == "chain_getHeader" and asks_finalized:
            header = header_json(finalized)
            return rpc_answer({"jsonrpc": "2.0", "result": header, "id": request_id})
        if body["method"] != "chain_getHeader":
            return rpc_answer(rpc_error(request_id, -32601, "Method not found"))
        self.head_polls += 1
        if mode == "rpc_error":
            return rpc_answer(rpc_error(request_id, -32000, "oneshot canceled"))
        if mode == "rate_limit_rpc":
            return rpc_answer(rpc_error(request_id, -32029, "Too many requests"))

        if mode == "null_result":
            return rpc_answer({"jsonrpc": "2.0", "result": None, "id": request_id})
        header = header_json(self.head)
        if mode == "no_number":
            del header["number"]
        elif mode == "int_number":
            header["number"] = self.head
        elif mode == "bad_hex":
            header["number"] = "0xZZ"
        elif mode == "decimal_number":
            header["number"] = "12"
        elif mode == "long_hex":
            header["number"] = "0x" + "f" * 200
        if mode == "wrong_id":
            request_id = request_id + 1 if isinstance(request_id, int) else "wrong"
        if mode == "ok":
            self.answered.append((time.time(), self.head))
        return rpc_answer({"jsonrpc": "2.0", "result": header, "id": request_id})


def _hash(number: int) -> str:
    """The fake chain's hash of block *number*, as ``chain_getFinalizedHead`` names it."""
    return "0x" + hashlib.sha256(f"finalized:{number}".encode()).hexdigest()


async def broken_answer(
    server: LoopbackServer, mode: str, request: web.Request, request_id: object
) -> web.StreamResponse | None:
    """The answer of a server broken in one of the ways that are not JSON-RPC's (a hang, a
    dropped connection, an HTTP 500, a proxy's HTML page, truncated JSON), or ``None``."""
    if mode == "hang":
        await server.hang(HANG_SECONDS)
        return rpc_answer(rpc_error(request_id, -32000, "shutting down"))
    if mode == "close":
        if request.transport is not None:
            request.transport.close()
        # aiohttp drops the response written to a closed transport (a debug log only).
        return web.Response(status=204)
    if mode == "http_500":
        return rpc_answer(rpc_error(request_id, -32603, "Internal error"), status=500)
    if mode in ("html", "html_502"):
        # Proxy pages often echo the request line: a URL secret must not leak through it.
        page = (
            f"<html><head><title>502 Bad Gateway</title></head><body>"
            f"<p>upstream failed for {request.path_qs}</p><hr><center>nginx</center>"
            "</body></html>"
        )
        status = 200 if mode == "html" else 502
        return web.Response(text=page, status=status, content_type="text/html")
    if mode == "bad_json":
        return web.Response(
            text='{"jsonrpc":"2.0","result":{"parentHash":"0x2aab',
            content_type=_JSON,
            charset=_CHARSET,
        )
    return None


def rpc_error(request_id: object, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


def rpc_answer(payload: dict[str, Any], *, status: int = 200) -> web.Response:
    """A JSON-RPC answer as jsonrpsee sends it: compact JSON, ``application/json; utf-8``."""
    return web.Response(
        text=json.dumps(payload, separators=(",", ":")),
        status=status,
        content_type=_JSON,
        charset=_CHARSET,
    )
