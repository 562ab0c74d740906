"""The node channel: ask the watched node itself, over its own RPC and metrics, how it is.

One poll asks the node's JSON-RPC (``NODE_RPC_URL``) for its best block (``chain_getHeader``),
its finalized block (``chain_getFinalizedHead`` then ``chain_getHeader`` of that hash), its
peers and major-sync flag (``system_health``) and ``alephNode_ready``; and, when
``NODE_METRICS_URL`` is set, scrapes the node's Prometheus page for the same numbers. The result
is a :class:`~azwatch.events.NodeSample` or a :class:`~azwatch.events.NodeUnavailable`.

Failures are classified exactly as the reference poller classifies them (:mod:`azwatch.head`'s
:func:`~azwatch.head.rpc_call` and :class:`~azwatch.head.FailureKind`): a failing node is a
fact to report, never an exception. A poll in which any required RPC call failed gives no
sample: half an answer from a node that is going down is not a picture of it. Only
``alephNode_ready`` is optional: "method not found" means the release does not offer it,
logged once, not an error.

URLs are never logged: the node is named by :func:`azwatch.redaction.endpoint_label`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace

import aiohttp
import anyio
import anyio.abc
from prometheus_client.parser import text_string_to_metric_families

from azwatch.events import NodeSample, NodeUnavailable
from azwatch.head import (
    FailureKind,
    HeadError,
    fetch_finalized,
    genesis_of,
    header_number,
    rpc_call,
)
from azwatch.redaction import endpoint_label

__all__ = [
    "METHOD_NOT_FOUND",
    "NodeFailure",
    "NodePoller",
    "NodeSample",
    "fetch_metrics",
    "fetch_node",
    "parse_metrics",
]

_log = logging.getLogger(__name__)

#: JSON-RPC "method not found": the node does not offer the method (``alephNode_ready`` on
#: releases without aleph's RPC extension).
METHOD_NOT_FOUND = -32601

# A metrics page of aleph-node is ~200 KiB; far larger is not a metrics page.
_MAX_METRICS_BODY = 4 << 20


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """Why one poll of one node interface gave no sample; safe to log (no URL, no secrets)."""

    #: ``rpc`` or ``metrics``: which of the node's interfaces failed.
    interface: str
    kind: FailureKind
    detail: str

    @property
    def summary(self) -> str:
        """One line naming the interface, the kind and the detail."""
        return f"node {self.interface} {self.kind.value}: {self.detail}"

    def event(self) -> NodeUnavailable:
        """The supervisor's message for this failure."""
        return NodeUnavailable(self.kind.value, f"{self.interface}: {self.detail}")


@dataclass(slots=True)
class _RpcAnswers:
    """The raw results of one poll's calls, filled in by concurrent tasks (working state)."""

    best: int | None = None
    finalized: int | None = None
    health: object = None
    ready: bool | None = None
    #: ``alephNode_ready`` answered "method not found".
    ready_missing: bool = False


async def fetch_node(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - one budget for the whole poll, applied inside
    request_ids: Iterator[int] | None = None,
) -> tuple[NodeSample, bool]:
    """One RPC poll of the node at *url*: its sample, and whether ``alephNode_ready`` is missing.

    The whole poll stays within *timeout* seconds: the questions are asked at once, and the
    finalized block's two calls one after the other. Raises
    :class:`~azwatch.head.HeadError` for the first required call that failed, classified as
    the reference poller classifies it; cancellation propagates untouched.
    """
    ids = request_ids if request_ids is not None else itertools.count(1)
    deadline = anyio.current_time() + timeout
    errors: list[HeadError] = []
    answers = _RpcAnswers()

    def remaining() -> float:
        # rpc_call wants a positive budget; an exhausted one times out at once.
        return max(deadline - anyio.current_time(), 1e-3)

    async def call(method: str, params: list[object] | None = None) -> object:
        return await rpc_call(
            session, url, method, params or [], timeout=remaining(), request_id=next(ids)
        )

    async def best() -> None:
        answers.best = header_number(await call("chain_getHeader"))

    async def finalized() -> None:
        answers.finalized = await fetch_finalized(
            session, url, timeout=remaining(), request_ids=ids
        )

    async def health() -> None:
        answers.health = await call("system_health")

    async def ready() -> None:
        try:
            result = await call("alephNode_ready")
        except HeadError as exc:
            if exc.kind is FailureKind.RPC_ERROR and exc.code == METHOD_NOT_FOUND:
                answers.ready_missing = True
                return
            raise
        if not isinstance(result, bool):
            raise HeadError(FailureKind.BAD_RESULT, "alephNode_ready answered a non-boolean")
        answers.ready = result

    async def guarded(step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except HeadError as exc:
            errors.append(exc)

    # The independent questions at once, so a slow node costs two round trips, not five.
    with anyio.fail_after(timeout + 1.0):  # rpc_call bounds each call; this bounds the poll
        async with anyio.create_task_group() as tg:
            for step in (best, finalized, health, ready):
                tg.start_soon(guarded, step)
    if errors:
        raise errors[0]
    peers, syncing = _health_fields(answers.health)
    sample = NodeSample(
        best=answers.best,
        finalized=answers.finalized,
        peers=peers,
        syncing=syncing,
        ready=answers.ready,
    )
    return sample, answers.ready_missing


def _health_fields(health: object) -> tuple[int, bool]:
    """``peers`` and ``isSyncing`` of a ``system_health`` result."""
    if not isinstance(health, dict):
        raise HeadError(FailureKind.BAD_RESULT, "system_health did not answer an object")
    peers = health.get("peers")
    syncing = health.get("isSyncing")
    if type(peers) is not int or peers < 0:
        raise HeadError(FailureKind.BAD_RESULT, "system_health has no peer count")
    if not isinstance(syncing, bool):
        raise HeadError(FailureKind.BAD_RESULT, "system_health has no isSyncing flag")
    return peers, syncing


# --- the metrics page -------------------------------------------------------------------------


def parse_metrics(text: str) -> NodeSample:
    """The node's numbers from a Prometheus text page (``reference/aleph-node-logs.md`` §8).

    Best and finalized prefer ``substrate_block_height{status=…}`` and fall back to
    ``aleph_best_block`` / ``aleph_top_finalized_block``. A page without a number leaves that
    field ``None``; a page that is not Prometheus text raises ``ValueError``.
    """
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name
            if sample.name == "substrate_block_height":
                key = f"substrate_block_height:{sample.labels.get('status', '')}"
            if math.isfinite(sample.value):
                values.setdefault(key, sample.value)

    def number(*names: str) -> int | None:
        for name in names:
            if name in values and values[name] >= 0:
                return int(values[name])
        return None

    syncing = values.get("aleph_sync_is_major_syncing")
    return NodeSample(
        best=number("substrate_block_height:best", "aleph_best_block"),
        finalized=number("substrate_block_height:finalized", "aleph_top_finalized_block"),
        peers=number("substrate_sub_libp2p_peers_count"),
        syncing=None if syncing is None else syncing != 0,
    )


async def fetch_metrics(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-scrape budget, applied inside with fail_after
) -> NodeSample:
    """Scrape the node's Prometheus page at *url* into a sample (no ``ready``: it has none).

    Raises :class:`~azwatch.head.HeadError` with the reference poller's kinds.
    """
    try:
        with anyio.fail_after(timeout):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                body = await resp.content.read(_MAX_METRICS_BODY + 1)
                status = resp.status
    except TimeoutError:
        raise HeadError(FailureKind.TIMEOUT, f"no answer within {timeout:g}s") from None
    except aiohttp.ClientError as exc:
        # str() of aiohttp errors may embed the URL: name the error only.
        raise HeadError(FailureKind.REFUSED, f"request failed: {type(exc).__name__}") from None
    except OSError as exc:
        raise HeadError(FailureKind.REFUSED, f"connection error: {type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise HeadError(FailureKind.HTTP_STATUS, f"HTTP {status}")
    if len(body) > _MAX_METRICS_BODY:
        raise HeadError(FailureKind.BAD_RESULT, f"body larger than {_MAX_METRICS_BODY} bytes")
    try:
        return parse_metrics(body.decode("utf-8", "replace"))
    except ValueError as exc:
        raise HeadError(
            FailureKind.BAD_RESULT,
            f"not a Prometheus text page ({type(exc).__name__})",
        ) from None


# --- the poller -------------------------------------------------------------------------------


def _merge(primary: NodeSample | None, secondary: NodeSample | None) -> NodeSample | None:
    """Each field from *primary* (the RPC) when it told it, else from *secondary* (metrics)."""
    if primary is None or secondary is None:
        return primary or secondary
    return NodeSample(
        best=primary.best if primary.best is not None else secondary.best,
        finalized=primary.finalized if primary.finalized is not None else secondary.finalized,
        peers=primary.peers if primary.peers is not None else secondary.peers,
        syncing=primary.syncing if primary.syncing is not None else secondary.syncing,
        ready=primary.ready if primary.ready is not None else secondary.ready,
    )


class NodePoller:
    """Polls one node's RPC and/or metrics page with a shared :class:`aiohttp.ClientSession`.

    Remembers between polls whether each interface is failing, so an outage logs one warning
    when it starts and one line when it ends, and counts failures per (interface, kind).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        rpc_url: str = "",
        metrics_url: str = "",
        timeout: float,
        logger: logging.Logger | None = None,
    ) -> None:
        if not rpc_url and not metrics_url:
            raise ValueError("NodePoller needs a node RPC URL or a node metrics URL")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self._session = session
        self._rpc_url = rpc_url
        self._metrics_url = metrics_url
        self._timeout = timeout
        self._log = logger if logger is not None else _log
        self._ids = itertools.count(1)
        self._failing: dict[str, int] = {}
        self._ready_missing_logged = False
        #: The node's chain, asked once it answers (and again after it failed: it may have
        #: been started on another chain meanwhile).
        self._genesis: str | None = None
        #: Failed polls per (interface, failure kind), for a Prometheus counter.
        self.errors: collections.Counter[tuple[str, str]] = collections.Counter()

    def error_counts(self) -> tuple[tuple[str, str, int], ...]:
        """The failed polls so far as (interface, kind, count), sorted (the snapshot's form)."""
        return tuple((interface, kind, n) for (interface, kind), n in sorted(self.errors.items()))

    @property
    def label(self) -> str:
        """The node's name in logs: its RPC (or metrics) host and port, no secrets."""
        return endpoint_label(self._rpc_url or self._metrics_url)

    async def poll(self) -> NodeSample | NodeFailure:
        """One poll of every configured interface at once, each under the timeout.

        A sample when at least one interface answered (the RPC's fields first); otherwise the
        failure of the RPC (or of the metrics page when there is no RPC URL).
        """
        outcomes: dict[str, NodeSample | NodeFailure] = {}
        async with anyio.create_task_group() as tg:
            if self._rpc_url:
                tg.start_soon(self._poll_rpc, outcomes)
            if self._metrics_url:
                tg.start_soon(self._poll_metrics, outcomes)
        samples = {name: o for name, o in outcomes.items() if isinstance(o, NodeSample)}
        for name in ("rpc", "metrics"):
            if name in outcomes:
                self._record(name, outcomes[name])
        merged = _merge(samples.get("rpc"), samples.get("metrics"))
        if merged is not None:
            return merged
        first = outcomes["rpc" if self._rpc_url else "metrics"]
        assert isinstance(first, NodeFailure)
        return first

    async def _poll_rpc(self, outcomes: dict[str, NodeSample | NodeFailure]) -> None:
        answered: list[tuple[NodeSample, bool]] = []
        async with anyio.create_task_group() as tg:
            # The chain is asked beside the poll, so both stay within one timeout.
            if self._genesis is None or self._failing.get("rpc", 0):
                tg.start_soon(self._ask_genesis)
            try:
                answered.append(
                    await fetch_node(
                        self._session, self._rpc_url, timeout=self._timeout, request_ids=self._ids
                    )
                )
            except HeadError as exc:
                outcomes["rpc"] = NodeFailure("rpc", exc.kind, exc.detail)
            except TimeoutError:
                outcomes["rpc"] = NodeFailure(
                    "rpc", FailureKind.TIMEOUT, f"no answer within {self._timeout:g}s"
                )
        if not answered:
            return
        sample, ready_missing = answered[0]
        if ready_missing and not self._ready_missing_logged:
            self._ready_missing_logged = True
            self._log.info(
                "node %s does not offer alephNode_ready (method not found); its readiness "
                "stays unknown",
                self.label,
            )
        outcomes["rpc"] = replace(sample, genesis=self._genesis)

    async def _ask_genesis(self) -> None:
        """Learn the node's chain: ``chain_getBlockHash(0)``; unknown if it does not tell."""
        try:
            result = await rpc_call(
                self._session,
                self._rpc_url,
                "chain_getBlockHash",
                [0],
                timeout=self._timeout,
                request_id=next(self._ids),
            )
        except HeadError:
            result = None
        self._genesis = genesis_of(result)

    async def _poll_metrics(self, outcomes: dict[str, NodeSample | NodeFailure]) -> None:
        try:
            outcomes["metrics"] = await fetch_metrics(
                self._session, self._metrics_url, timeout=self._timeout
            )
        except HeadError as exc:
            outcomes["metrics"] = NodeFailure("metrics", exc.kind, exc.detail)

    def _record(self, interface: str, outcome: NodeSample | NodeFailure) -> None:
        """Count a failure; log only the transitions (starts failing, answers again)."""
        failed = self._failing.get(interface, 0)
        if isinstance(outcome, NodeSample):
            if failed:
                self._log.info(
                    "node %s %s answers again after %d failed poll%s",
                    self.label,
                    interface,
                    failed,
                    "" if failed == 1 else "s",
                )
            self._failing[interface] = 0
            return
        self.errors[(interface, outcome.kind.value)] += 1
        self._failing[interface] = failed + 1
        if not failed:
            self._log.warning("node %s %s is failing: %s", self.label, interface, outcome.summary)

    async def run(
        self,
        emit: Callable[[NodeSample | NodeFailure], Awaitable[None]],
        *,
        interval: float,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Poll every *interval* seconds at a fixed rate and ``await emit(outcome)``.

        Late rounds are dropped, never bunched up; ``task_status.started()`` fires after the
        first outcome was emitted.
        """
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        next_round = anyio.current_time()
        started = False
        while True:
            await emit(await self.poll())
            if not started:
                task_status.started()
                started = True
            next_round = max(next_round + interval, anyio.current_time())
            await anyio.sleep_until(next_round)
