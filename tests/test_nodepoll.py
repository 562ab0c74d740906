"""The node channel's poller against a fake node on 127.0.0.1 (no mocks): the node's own RPC
and metrics page become a sample, and every way they fail a classified failure, logged once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest
from fakenoderpc import FakeNodeRpc, Mode
from fakerpc import closed_port_url

from azwatch.events import NodeSample, NodeUnavailable
from azwatch.head import FailureKind
from azwatch.nodepoll import NodeFailure, NodePoller, fetch_node, parse_metrics

BEST = 105_499_803
TIMEOUT = 1.0


@pytest.fixture
async def node() -> AsyncIterator[FakeNodeRpc]:
    async with FakeNodeRpc(best=BEST, finalized=BEST - 2, peers=26) as fake:
        yield fake


async def test_fetch_node_reads_best_finalized_health_and_ready(
    session: aiohttp.ClientSession, node: FakeNodeRpc
) -> None:
    sample, ready_missing = await fetch_node(session, node.url, timeout=TIMEOUT)
    assert sample == NodeSample(best=BEST, finalized=BEST - 2, peers=26, syncing=False, ready=True)
    assert not ready_missing
    # The finalized number comes from the header of the finalized hash, asked after it.
    assert node.methods.index("chain_getFinalizedHead") < len(node.methods) - 1
    assert node.methods[-1] == "chain_getHeader"
    asked = ["chain_getFinalizedHead", "system_health", "alephNode_ready", "chain_getHeader"]
    assert sorted(node.methods) == sorted([*asked, "chain_getHeader"])


async def test_method_not_found_for_ready_is_not_offered_not_an_error(
    session: aiohttp.ClientSession, node: FakeNodeRpc, caplog: pytest.LogCaptureFixture
) -> None:
    node.ready = None
    node.syncing = True
    poller = NodePoller(session, rpc_url=node.url, timeout=TIMEOUT)
    with caplog.at_level(logging.INFO, logger="azwatch.nodepoll"):
        first = await poller.poll()
        second = await poller.poll()
    assert first == second == NodeSample(BEST, BEST - 2, 26, True, None, genesis="0x7025…344e")
    notes = [r for r in caplog.records if "alephNode_ready" in r.getMessage()]
    assert len(notes) == 1, "not offered is logged once"
    assert poller.errors == {}


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("http_500", FailureKind.HTTP_STATUS),
        ("html", FailureKind.NOT_JSON),
        ("bad_json", FailureKind.NOT_JSON),
        ("rpc_error", FailureKind.RPC_ERROR),
        ("wrong_id", FailureKind.BAD_RESULT),
        ("close", FailureKind.REFUSED),
    ],
)
async def test_each_failure_is_classified_as_the_reference_poller_does(
    session: aiohttp.ClientSession, node: FakeNodeRpc, mode: Mode, kind: FailureKind
) -> None:
    node.mode = mode
    poller = NodePoller(session, rpc_url=node.url, timeout=TIMEOUT)
    outcome = await poller.poll()
    assert isinstance(outcome, NodeFailure)
    assert outcome.kind is kind
    assert outcome.event() == NodeUnavailable(kind.value, f"rpc: {outcome.detail}")
    assert poller.errors == {("rpc", kind.value): 1}


async def test_a_hanging_node_times_out_within_the_budget(
    session: aiohttp.ClientSession, node: FakeNodeRpc
) -> None:
    node.mode = "hang"
    poller = NodePoller(session, rpc_url=node.url, timeout=0.3)
    started = anyio.current_time()
    outcome = await poller.poll()
    assert isinstance(outcome, NodeFailure)
    assert outcome.kind is FailureKind.TIMEOUT
    assert anyio.current_time() - started < 1.0


async def test_refused_connection(session: aiohttp.ClientSession) -> None:
    outcome = await NodePoller(session, rpc_url=closed_port_url(), timeout=TIMEOUT).poll()
    assert isinstance(outcome, NodeFailure)
    assert outcome.kind is FailureKind.REFUSED


async def test_one_failing_required_method_gives_no_sample(
    session: aiohttp.ClientSession, node: FakeNodeRpc
) -> None:
    node.fail_method = "system_health"
    outcome = await NodePoller(session, rpc_url=node.url, timeout=TIMEOUT).poll()
    assert isinstance(outcome, NodeFailure)
    assert outcome.kind is FailureKind.RPC_ERROR


async def test_an_outage_logs_once_when_it_starts_and_once_when_it_ends(
    session: aiohttp.ClientSession, node: FakeNodeRpc, caplog: pytest.LogCaptureFixture
) -> None:
    poller = NodePoller(session, rpc_url=node.url + "?apikey=s3cret", timeout=TIMEOUT)
    with caplog.at_level(logging.INFO, logger="azwatch.nodepoll"):
        node.mode = "http_500"
        for _ in range(3):
            assert isinstance(await poller.poll(), NodeFailure)
        node.mode = "ok"
        assert isinstance(await poller.poll(), NodeSample)
        assert isinstance(await poller.poll(), NodeSample)
    messages = [r.getMessage() for r in caplog.records if r.name == "azwatch.nodepoll"]
    assert sum("is failing" in m for m in messages) == 1
    assert sum("answers again after 3 failed polls" in m for m in messages) == 1
    assert all("s3cret" not in m for m in messages)
    assert poller.errors == {("rpc", "http_status"): 3}


# --- the metrics page -------------------------------------------------------------------------


async def test_metrics_alone_give_a_sample_without_ready(
    session: aiohttp.ClientSession, node: FakeNodeRpc
) -> None:
    node.syncing = True
    outcome = await NodePoller(session, metrics_url=node.metrics_url, timeout=TIMEOUT).poll()
    assert outcome == NodeSample(best=BEST, finalized=BEST - 2, peers=26, syncing=True)


async def test_metrics_fill_in_when_the_rpc_fails(
    session: aiohttp.ClientSession, node: FakeNodeRpc
) -> None:
    node.fail_method = "chain_getFinalizedHead"
    poller = NodePoller(session, rpc_url=node.url, metrics_url=node.metrics_url, timeout=TIMEOUT)
    outcome = await poller.poll()
    assert outcome == NodeSample(best=BEST, finalized=BEST - 2, peers=26, syncing=False)
    assert poller.errors == {("rpc", "rpc_error"): 1}


async def test_a_broken_metrics_page_is_classified(
    session: aiohttp.ClientSession, node: FakeNodeRpc
) -> None:
    node.metrics_status = 503
    poller = NodePoller(session, metrics_url=node.metrics_url, timeout=TIMEOUT)
    outcome = await poller.poll()
    assert isinstance(outcome, NodeFailure)
    assert (outcome.interface, outcome.kind) == ("metrics", FailureKind.HTTP_STATUS)


def test_parse_metrics_falls_back_to_aleph_gauges() -> None:
    page = (
        'aleph_best_block{chain="mainnet"} 120\n'
        'aleph_top_finalized_block{chain="mainnet"} 118\n'
        'aleph_sync_is_major_syncing{chain="mainnet"} 0\n'
    )
    assert parse_metrics(page) == NodeSample(best=120, finalized=118, syncing=False)


def test_parse_metrics_of_an_unrelated_page_knows_nothing() -> None:
    assert parse_metrics("process_cpu_seconds_total 1.5\n") == NodeSample()


async def test_a_poller_needs_an_interface(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="node RPC URL or a node metrics URL"):
        NodePoller(session, timeout=1.0)
