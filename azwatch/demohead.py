"""The reference head of ``azwatch demo``: a JSON-RPC server on 127.0.0.1 for the scripted chain.

It answers what azwatch asks a reference endpoint, in the node's wire format (jsonrpsee's
member order ``jsonrpc``, ``result``, ``id``; block numbers as ``0x`` hex without leading
zeros; full ``0x`` hashes): ``chain_getHeader`` with the scripted chain's head at this instant
(:class:`~azwatch.demonode.Chain`, the clock the stand-in node imports by), and
``chain_getBlockHash`` with ``[0]`` with Aleph Zero mainnet's genesis, the chain the stand-in
announces. Anything else gets JSON-RPC's "method not found".
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
from aiohttp import web

from azwatch.demonode import GENESIS, Chain

#: JSON-RPC 2.0's standard error codes.
METHOD_NOT_FOUND = -32601
INVALID_REQUEST = -32600
PARSE_ERROR = -32700


def _full_hash(tag: str, number: int) -> str:
    return "0x" + hashlib.sha256(f"{tag}:{number}".encode()).hexdigest()


def header(number: int) -> dict[str, Any]:
    """A ``chain_getHeader`` result for block *number* (hashes derived from it)."""
    return {
        "parentHash": _full_hash("block", number - 1),
        "number": hex(number),
        "stateRoot": _full_hash("state", number),
        "extrinsicsRoot": _full_hash("extrinsics", number),
        "digest": {"logs": []},
    }


def answer(request: object, head: int) -> dict[str, Any]:
    """The JSON-RPC answer to one decoded *request*, with the chain at block *head*."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        return _error(None, INVALID_REQUEST, "Invalid request")
    request_id = request.get("id")
    method = request.get("method")
    params = request.get("params") or []
    if method == "chain_getHeader":
        return _result(header(head), request_id)
    if method in ("chain_getBlockHash", "chain_getHead"):
        number = params[0] if isinstance(params, list) and params else None
        if number is None:
            return _result(_full_hash("block", head), request_id)
        if isinstance(number, str):
            number = int(number, 16)
        if number == 0:
            return _result(GENESIS, request_id)
        found = isinstance(number, int) and 0 < number <= head
        return _result(_full_hash("block", number) if found else None, request_id)
    return _error(request_id, METHOD_NOT_FOUND, "Method not found")


def _result(result: object, request_id: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def _error(request_id: object, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


def build_app(head: Callable[[], int]) -> web.Application:
    """The aiohttp application; *head* gives the chain's head at each request."""

    async def handle(request: web.Request) -> web.Response:
        try:
            decoded: object = json.loads(await request.read())
        except ValueError:
            body = _error(None, PARSE_ERROR, "Parse error")
        else:
            body = answer(decoded, head())
        return web.json_response(body, dumps=lambda value: json.dumps(value, separators=(",", ":")))

    app = web.Application()
    app.router.add_post("/", handle)
    return app


async def serve_head(
    chain: Chain,
    *,
    clock: Callable[[], float] = time.time,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *chain*'s head on 127.0.0.1 (a free port) until cancelled; report its URL."""
    runner = web.AppRunner(
        build_app(lambda: chain.height(clock())),
        handle_signals=False,
        shutdown_timeout=1.0,
        access_log=None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        task_status.started(f"http://127.0.0.1:{port}/")
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await runner.cleanup()
