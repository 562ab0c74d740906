"""The head poller against a real HTTP server on 127.0.0.1 (no mocks): every way a reference
endpoint can fail becomes a classified failure, never a number and never an exception."""

from __future__ import annotations

import email.utils
import gc
import itertools
import logging
import warnings
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest
from fakenoderpc import FakeNodeRpc
from fakerpc import TESTNET_GENESIS, FakeRpc, Mode, closed_port_url

from azwatch.events import HeadSample, HeadUnavailable, ReferenceFinalized
from azwatch.head import (
    MAX_RETRY_AFTER,
    EndpointFailure,
    FailureKind,
    HeadError,
    HeadPoller,
    PollResult,
    fetch_head,
    parse_retry_after,
)
from azwatch.redaction import endpoint_label

HEAD = 0x649CC9B  # 105499803, the block in the reference transcript
TIMEOUT = 1.0


@pytest.fixture
async def server() -> AsyncIterator[FakeRpc]:
    async with FakeRpc(head=HEAD) as fake:
        yield fake


def head_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "azwatch.head"]


# --- one endpoint -----------------------------------------------------------------------------


async def test_fetch_head_speaks_the_node_wire_format(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    """The request is a JSON-RPC 2.0 chain_getHeader; the answer's 0x-hex number is the head."""
    assert await fetch_head(session, server.url, timeout=TIMEOUT, request_id=7) == HEAD
    assert server.last_request == {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "chain_getHeader",
        "params": [],
    }


FAILURES: list[tuple[Mode, FailureKind]] = [
    ("rpc_error", FailureKind.RPC_ERROR),
    ("rate_limit_http", FailureKind.RATE_LIMITED),
    ("rate_limit_rpc", FailureKind.RATE_LIMITED),
    ("http_500", FailureKind.HTTP_STATUS),
    ("html", FailureKind.NOT_JSON),
    ("html_502", FailureKind.HTTP_STATUS),
    ("bad_json", FailureKind.NOT_JSON),
    ("huge_body", FailureKind.NOT_JSON),
    ("close", FailureKind.REFUSED),
    ("no_number", FailureKind.BAD_RESULT),
    ("int_number", FailureKind.BAD_RESULT),
    ("bad_hex", FailureKind.BAD_RESULT),
    ("decimal_number", FailureKind.BAD_RESULT),
    ("long_hex", FailureKind.BAD_RESULT),
    ("null_result", FailureKind.BAD_RESULT),
    ("not_object", FailureKind.BAD_RESULT),
    ("wrong_id", FailureKind.BAD_RESULT),
]


@pytest.mark.parametrize(("mode", "kind"), FAILURES, ids=[mode for mode, _ in FAILURES])
async def test_each_failure_mode_is_classified_and_gives_no_number(
    session: aiohttp.ClientSession, server: FakeRpc, mode: Mode, kind: FailureKind
) -> None:
    server.mode = mode
    with pytest.raises(HeadError) as caught:
        await fetch_head(session, server.url, timeout=TIMEOUT)
    assert caught.value.kind is kind

    result = await HeadPoller(session, [server.url], timeout=TIMEOUT).poll()
    assert result.heads == ()
    [failure] = result.failures
    assert (failure.endpoint, failure.kind) == (endpoint_label(server.url), kind)
    assert "\n" not in failure.detail
    assert len(failure.detail) <= 160
    event = result.event()
    assert isinstance(event, HeadUnavailable)
    assert kind.value in event.reason


async def test_failure_details_say_what_happened(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    """Status codes and JSON-RPC codes/messages reach the detail."""
    details = {}
    for mode in ("http_500", "rpc_error", "rate_limit_http", "html", "int_number"):
        server.mode = mode
        with pytest.raises(HeadError) as caught:
            await fetch_head(session, server.url, timeout=TIMEOUT)
        details[mode] = caught.value.detail
    assert "HTTP 500" in details["http_500"]
    assert "-32000" in details["rpc_error"]
    assert "oneshot canceled" in details["rpc_error"]
    assert "429" in details["rate_limit_http"]
    assert "text/html" in details["html"]
    assert "0x" in details["int_number"]


async def test_refused(session: aiohttp.ClientSession) -> None:
    url = closed_port_url()
    result = await HeadPoller(session, [url], timeout=TIMEOUT).poll()
    assert result.heads == ()
    assert [(f.endpoint, f.kind) for f in result.failures] == [
        (endpoint_label(url), FailureKind.REFUSED)
    ]


async def test_timeout_takes_about_the_timeout(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    server.mode = "hang"
    poller = HeadPoller(session, [server.url], timeout=0.3)
    start = anyio.current_time()
    result = await poller.poll()
    elapsed = anyio.current_time() - start
    assert [f.kind for f in result.failures] == [FailureKind.TIMEOUT]
    assert result.heads == ()
    assert 0.25 <= elapsed < 0.8


# --- several endpoints ------------------------------------------------------------------------


async def test_median_of_three_and_lower_median_of_two(session: aiohttp.ClientSession) -> None:
    async with FakeRpc(100) as a, FakeRpc(103) as b, FakeRpc(101) as c:
        poller = HeadPoller(session, [a.url, b.url, c.url], timeout=TIMEOUT)
        result = await poller.poll()
        assert result == PollResult(heads=(100, 103, 101), failures=())
        assert result.event() == HeadSample(101, answers=3)

        c.mode = "http_500"
        result = await poller.poll()
        assert result.heads == (100, 103)
        assert [f.endpoint for f in result.failures] == [endpoint_label(c.url)]
        assert result.event() == HeadSample(100, answers=2)


async def test_endpoints_are_asked_concurrently(session: aiohttp.ClientSession) -> None:
    """Three hanging endpoints cost one timeout, not three; the healthy one still counts."""
    async with FakeRpc(7) as ok, FakeRpc() as slow1, FakeRpc() as slow2, FakeRpc() as slow3:
        slow1.mode = slow2.mode = slow3.mode = "hang"
        poller = HeadPoller(session, [slow1.url, ok.url, slow2.url, slow3.url], timeout=0.4)
        start = anyio.current_time()
        result = await poller.poll()
        elapsed = anyio.current_time() - start
    assert result.heads == (7,)
    assert [f.kind for f in result.failures] == [FailureKind.TIMEOUT] * 3
    assert 0.35 <= elapsed < 0.8  # one after the other would take 1.2 s


async def test_all_failing_reason_names_every_endpoint(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    refused = closed_port_url()
    server.mode = "rpc_error"
    event = (await HeadPoller(session, [server.url, refused], timeout=TIMEOUT).poll()).event()
    assert isinstance(event, HeadUnavailable)
    assert f"{endpoint_label(server.url)} rpc_error" in event.reason
    assert f"{endpoint_label(refused)} refused" in event.reason


# --- rate limiting ----------------------------------------------------------------------------


async def test_retry_after_is_honoured(session: aiohttp.ClientSession, server: FakeRpc) -> None:
    server.mode = "rate_limit_http"
    server.retry_after = "1"
    poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
    first = await poller.poll()
    assert [(f.kind, f.retry_after) for f in first.failures] == [(FailureKind.RATE_LIMITED, 1.0)]
    assert server.head_requests == 1

    server.mode = "ok"
    second = await poller.poll()
    [waiting] = second.failures
    assert waiting.kind is FailureKind.WAITING
    assert waiting.retry_after is not None
    assert 0 < waiting.retry_after <= 1.0
    assert server.head_requests == 1, "a waiting endpoint is not asked"

    await anyio.sleep(waiting.retry_after + 0.05)
    third = await poller.poll()
    assert third.heads == (HEAD,)
    assert server.head_requests == 2
    label = endpoint_label(server.url)
    assert poller.errors == {(label, "rate_limited"): 1, (label, "waiting"): 1}


async def test_rate_limit_without_retry_after_waits_the_default(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    server.mode = "rate_limit_rpc"
    poller = HeadPoller(session, [server.url], timeout=TIMEOUT, default_retry_after=0.3)
    first = await poller.poll()
    assert [(f.kind, f.retry_after) for f in first.failures] == [(FailureKind.RATE_LIMITED, 0.3)]
    assert [f.kind for f in (await poller.poll()).failures] == [FailureKind.WAITING]
    await anyio.sleep(0.35)
    assert [f.kind for f in (await poller.poll()).failures] == [FailureKind.RATE_LIMITED]
    assert server.head_requests == 2


async def test_run_skips_one_round_for_a_rate_limit_without_retry_after(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    """Under run(), the default back-off is the poll interval: the next round is skipped."""
    server.mode = "rate_limit_rpc"
    kinds: list[FailureKind] = []

    async def emit(result: PollResult) -> None:
        kinds.extend(f.kind for f in result.failures)

    poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
    with anyio.move_on_after(0.7):
        await poller.run(emit, interval=0.2)
    assert kinds[:4] == [
        FailureKind.RATE_LIMITED,
        FailureKind.WAITING,
        FailureKind.RATE_LIMITED,
        FailureKind.WAITING,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("99999999", MAX_RETRY_AFTER),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    in_a_minute = email.utils.formatdate(now + 60, usegmt=True)
    assert parse_retry_after(in_a_minute, now=now) == pytest.approx(60.0)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


# --- logging, metrics and secrets -------------------------------------------------------------


async def test_one_warning_while_failing_and_one_info_on_recovery(
    session: aiohttp.ClientSession, server: FakeRpc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch.head")
    label = endpoint_label(server.url)
    poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
    server.mode = "http_500"
    for _ in range(3):
        await poller.poll()
    [warning] = head_records(caplog)
    assert warning.levelno == logging.WARNING
    assert label in warning.getMessage()
    assert "http_status" in warning.getMessage()
    assert "HTTP 500" in warning.getMessage()

    caplog.clear()
    server.mode = "ok"
    await poller.poll()
    await poller.poll()
    [info] = head_records(caplog)
    assert info.levelno == logging.INFO
    assert info.getMessage() == f"head endpoint {label} answers again after 3 failed polls"
    assert poller.errors == {(label, "http_status"): 3}


async def test_a_change_of_kind_is_logged_at_debug_only(
    session: aiohttp.ClientSession, server: FakeRpc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="azwatch.head")
    poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
    for mode in ("http_500", "html", "html", "http_500"):
        server.mode = mode
        await poller.poll()
    levels = [record.levelno for record in head_records(caplog)]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    label = endpoint_label(server.url)
    assert poller.errors == {(label, "http_status"): 2, (label, "not_json"): 2}


async def test_an_injected_logger_is_used(session: aiohttp.ClientSession) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test_head.injected")
    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await HeadPoller(session, [closed_port_url()], timeout=TIMEOUT, logger=logger).poll()
    finally:
        logger.removeHandler(handler)
    assert [record.levelno for record in records] == [logging.WARNING]


async def test_no_secret_from_the_url_reaches_logs_or_details(
    session: aiohttp.ClientSession, server: FakeRpc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = ("secret", "SECRET123", "k3y0123456789abcdefXYZ")
    secret_url = (
        f"http://user:secret@127.0.0.1:{server.port}/k3y0123456789abcdefXYZ?apikey=SECRET123"
    )
    refused = closed_port_url().replace("http://", "http://user:secret@") + "?apikey=SECRET123"
    poller = HeadPoller(session, [secret_url, refused], timeout=0.3)
    texts: list[str] = []
    # html echoes the request path and query back, as proxy error pages do.
    for mode in ("html", "html_502", "rpc_error", "http_500", "wrong_id", "hang", "ok"):
        server.mode = mode
        result = await poller.poll()
        texts.extend(f.summary for f in result.failures)
        event = result.event()
        if isinstance(event, HeadUnavailable):
            texts.append(event.reason)
    assert server.head_requests == 7
    assert any("Bad Gateway" in text for text in texts), "the echoing page was quoted"
    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(" ".join(key) for key in poller.errors)
    for text in texts:
        for secret in secrets:
            assert secret.lower() not in text.lower(), text


# --- run() ------------------------------------------------------------------------------------


async def test_run_emits_at_a_fixed_rate_without_drift(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    """A slow emit (30 ms of back-pressure per round) does not push the schedule back."""
    emitted: list[float] = []

    async def emit(result: PollResult) -> None:
        assert result.heads == (HEAD,)
        emitted.append(anyio.current_time())
        await anyio.sleep(0.03)

    poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: poller.run(emit, interval=0.1, task_status=task_status))
        assert len(emitted) == 1, "started() comes after the first round was emitted"
        await anyio.sleep(0.55)
        tg.cancel_scope.cancel()
        cancelled_at = anyio.current_time()
    assert anyio.current_time() - cancelled_at < 0.05, "stops promptly"
    assert 5 <= len(emitted) <= 7
    for index, at in enumerate(emitted):
        assert at - emitted[0] == pytest.approx(0.1 * index, abs=0.06)  # drift: 0.03/round


async def test_run_after_an_overrun_starts_the_next_round_at_once_without_a_burst(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    emitted: list[float] = []

    async def emit(result: PollResult) -> None:
        emitted.append(anyio.current_time())
        if len(emitted) == 1:
            await anyio.sleep(0.45)  # the first round overruns two slots and a quarter

    poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
    with anyio.move_on_after(0.9):
        await poller.run(emit, interval=0.2)
    offsets = [at - emitted[0] for at in emitted]
    assert len(offsets) >= 3, offsets
    # At once, not at the next slot (0.6); then every 0.2 s, not two rounds in a row (burst).
    assert 0.44 <= offsets[1] < 0.55, offsets
    assert all(later - earlier >= 0.15 for earlier, later in itertools.pairwise(offsets[1:])), (
        offsets
    )


async def test_run_cancels_promptly_in_the_middle_of_a_round(
    session: aiohttp.ClientSession, server: FakeRpc
) -> None:
    server.mode = "hang"
    emitted: list[PollResult] = []

    async def emit(result: PollResult) -> None:
        emitted.append(result)

    poller = HeadPoller(session, [server.url], timeout=5.0)
    start = anyio.current_time()
    with anyio.move_on_after(0.2) as scope:
        await poller.run(emit, interval=1.0)
    assert scope.cancelled_caught
    assert anyio.current_time() - start < 0.5  # not the 5 s request timeout
    assert emitted == []
    assert poller.errors == {}
    assert server.head_requests == 1


# --- resources --------------------------------------------------------------------------------


async def test_connections_return_to_the_pool(session: aiohttp.ClientSession) -> None:
    """Bodies are read inside the request context, so one keep-alive connection serves all."""
    async with FakeRpc() as server:
        poller = HeadPoller(session, [server.url], timeout=TIMEOUT)
        for mode in ("ok", "ok", "html", "rpc_error", "http_500", "ok"):
            server.mode = mode
            await poller.poll()
        assert server.head_requests == 6
        assert len(server.peers) == 1


async def test_nothing_leaks() -> None:
    """A session used for every failure mode and then closed leaves no unclosed resource."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with FakeRpc() as server, aiohttp.ClientSession() as session:
            poller = HeadPoller(session, [server.url, closed_port_url()], timeout=0.3)
            for mode in ("ok", *(mode for mode, _ in FAILURES), "hang", "ok"):
                server.mode = mode
                await poller.poll()
        del poller, session, server
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_failure_summary_and_error_fields() -> None:
    failure = EndpointFailure("rpc.example", FailureKind.TIMEOUT, "no answer within 5s")
    assert failure.summary == "rpc.example timeout: no answer within 5s"
    error = HeadError(FailureKind.RATE_LIMITED, "HTTP 429", 3.0)
    assert (error.kind, error.detail, error.retry_after) == (
        FailureKind.RATE_LIMITED,
        "HTTP 429",
        3.0,
    )
    assert PollResult((), ()).event() == HeadUnavailable("no reference endpoint configured")


async def test_an_endpoint_that_steps_back_keeps_its_earlier_head(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A load balancer's lagging backend answers lower a moment later: that fall, and the
    rise after it, must not look like the chain moving (the stall rule's proof)."""
    caplog.set_level(logging.INFO, logger="azwatch.head")
    async with FakeRpc(1000) as rpc:
        poller = HeadPoller(session, [rpc.url], timeout=TIMEOUT)
        seen = []
        for head in (1000, 995, 994, 1000, 1001, 700):
            rpc.head = head
            seen.append((await poller.poll()).heads)
    # Small falls keep the earlier head; a fall of more than STEP_BACK_LIMIT is a new start.
    assert seen == [(1000,), (1000,), (1000,), (1000,), (1001,), (700,)]
    said = [r.getMessage() for r in caplog.records if "below its own earlier" in r.getMessage()]
    assert len(said) == 2  # once when it stepped back, once when it stopped
    assert "answered #995, below its own earlier #1000" in said[0]


async def test_one_endpoint_far_from_the_others_is_left_out_and_said_once(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch.head")
    async with FakeRpc(1000) as a, FakeRpc(1002) as b, FakeRpc(5000) as far:
        poller = HeadPoller(session, [a.url, b.url, far.url], timeout=TIMEOUT)
        label = endpoint_label(far.url)
        first = await poller.poll()
        second = await poller.poll()
        far.head = 1003
        back = await poller.poll()
    assert (first.heads, first.outliers) == ((1000, 1002), (label,))
    assert first.event() == HeadSample(1000, answers=2)  # never the far answer's lag
    assert second.outliers == (label,)
    assert (back.heads, back.outliers) == ((1000, 1002, 1003), ())
    warned = [r for r in caplog.records if "left out of the median" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelname == "WARNING"
    assert any("agrees with the others again" in r.getMessage() for r in caplog.records)


async def test_two_endpoints_are_never_outliers(session: aiohttp.ClientSession) -> None:
    """With two answers there is no majority to judge by: the lower median, as before."""
    async with FakeRpc(1000) as a, FakeRpc(5000) as b:
        result = await HeadPoller(session, [a.url, b.url], timeout=TIMEOUT).poll()
    assert (result.heads, result.outliers) == ((1000, 5000), ())
    assert result.event() == HeadSample(1000, answers=2)


async def test_each_endpoint_is_asked_its_chain_once_and_again_after_a_failure(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch.head")
    async with FakeRpc(1000) as rpc:
        poller = HeadPoller(session, [rpc.url], timeout=TIMEOUT)
        first = await poller.poll()
        await poller.poll()
        assert rpc.methods.count("chain_getBlockHash") == 1
        assert [s.genesis for s in first.sources] == ["0x7025…344e"]
        assert first.event().sources == first.sources  # type: ignore[union-attr]
        # Redeployed on another chain: it fails a round, then answers with a new genesis.
        rpc.mode = "http_500"
        await poller.poll()
        rpc.mode, rpc.genesis = "ok", TESTNET_GENESIS
        again = await poller.poll()
    assert rpc.methods.count("chain_getBlockHash") == 2
    assert [s.genesis for s in again.sources] == ["0x05d5…60c5"]
    assert any("now serves another chain" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "answer",
    ["0x1234", 42, None, "70255b4d28de0fc4e1a193d7e175ad1ccef431598211c55538f1018651a0344e"],
)
async def test_a_genesis_in_an_unexpected_form_is_said_once_and_never_a_chain(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, answer: object
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch.head")
    async with FakeRpc(1000) as rpc:
        rpc.genesis = answer
        poller = HeadPoller(session, [rpc.url], timeout=TIMEOUT)
        results = [await poller.poll() for _ in range(3)]
    assert all(r.heads == (1000,) and r.sources[0].genesis is None for r in results)
    said = [
        r
        for r in caplog.records
        if "which chain" in r.getMessage() or "unexpected form" in r.getMessage()
    ]
    assert len(said) == 1


# --- the reference's finalized block (the finality rule) ---------------------------------------


async def test_the_finalized_block_is_asked_every_few_rounds(
    session: aiohttp.ClientSession,
) -> None:
    """chain_getFinalizedHead then chain_getHeader([hash]), on the first round of every three."""
    async with FakeNodeRpc(best=HEAD, finalized=HEAD - 3) as reference:
        poller = HeadPoller(session, [reference.url], timeout=TIMEOUT, finality_every=3)
        told = []
        for _ in range(4):
            result = await poller.poll()
            told.append(result.finality_event())
            assert result.heads == (HEAD,)
        assert told == [ReferenceFinalized(HEAD - 3), None, None, ReferenceFinalized(HEAD - 3)]
        assert reference.methods.count("chain_getFinalizedHead") == 2


async def test_a_reference_that_cannot_tell_its_finalized_block_still_gives_the_head(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeNodeRpc(best=HEAD) as reference:
        reference.fail_method = "chain_getFinalizedHead"
        poller = HeadPoller(session, [reference.url], timeout=TIMEOUT, finality_every=1)
        with caplog.at_level(logging.INFO, logger="azwatch.head"):
            for _ in range(3):
                result = await poller.poll()
                assert result.heads == (HEAD,)
                assert result.finality_event() is None
            reference.fail_method = None
            assert (await poller.poll()).finality_event() == ReferenceFinalized(HEAD - 2)
    messages = [r.getMessage() for r in head_records(caplog)]
    assert sum("cannot tell its finalized block: rpc_error" in m for m in messages) == 1
    assert sum("tells its finalized block again" in m for m in messages) == 1


async def test_a_known_chain_is_forgotten_when_the_endpoint_comes_back_unable_to_tell_it(
    session: aiohttp.ClientSession,
) -> None:
    """Redeployed, it answers heads but its genesis in an unexpected form: it is no longer
    taken for the chain it served before."""
    async with FakeRpc(1000) as rpc:
        poller = HeadPoller(session, [rpc.url], timeout=TIMEOUT)
        first = await poller.poll()
        rpc.mode = "http_500"
        await poller.poll()
        rpc.mode, rpc.genesis = "ok", "0x1234"
        again = await poller.poll()
    assert [s.genesis for s in first.sources] == ["0x7025…344e"]
    assert [(s.head, s.genesis) for s in again.sources] == [(1000, None)]
