"""The head poller: ask the reference RPC endpoints for the network head.

Every round sends JSON-RPC ``chain_getHeader`` to all configured endpoints at once and keeps
the answers that are well formed. The median of those (:func:`azwatch.state.median_head`)
becomes a :class:`~azwatch.events.HeadSample`; a round in which nobody answered well becomes a
:class:`~azwatch.events.HeadUnavailable` that says why. A broken endpoint is a fact to report,
never a number and never an exception, so one bad provider cannot make a healthy node look
behind, and a dead one cannot crash the watcher.

Reference URLs may carry API keys (user info, query, path), so nothing here ever logs or
reports a URL: endpoints are named by :func:`azwatch.redaction.endpoint_label`, and text that
comes from the server is scrubbed of the URL's secrets before it reaches a message.
"""

from __future__ import annotations

import collections
import email.utils
import itertools
import json
import logging
import math
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

import aiohttp
import anyio
import anyio.abc

from azwatch.events import HeadSample, HeadUnavailable, ReferenceAnswer, ReferenceFinalized
from azwatch.redaction import MASK, endpoint_label, redact_url
from azwatch.state import median_head

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_RETRY_AFTER",
    "EndpointFailure",
    "FailureKind",
    "HeadError",
    "HeadPoller",
    "PollResult",
    "fetch_finalized",
    "fetch_head",
    "genesis_short",
    "header_number",
    "parse_retry_after",
    "rpc_call",
]

_log = logging.getLogger(__name__)

#: Seconds to leave a rate-limited endpoint alone when it gave no usable ``Retry-After`` and
#: the poller has no poll interval to fall back on (``poll()`` called outside ``run()``).
DEFAULT_RETRY_AFTER = 10.0
#: Upper bound on any back-off a server asks for, so a bogus header cannot silence an endpoint
#: for days.
MAX_RETRY_AFTER = 900.0

#: Blocks an endpoint's answer may fall below its own earlier answer and still be its lagging
#: twin behind a load balancer: its earlier head keeps counting. A larger fall is a new start.
STEP_BACK_LIMIT = 100
#: With three or more answers, one further than this from their median is left out.
OUTLIER_BLOCKS = 100

#: JSON-RPC error code that RPC providers answer with when they throttle a client.
RATE_LIMIT_CODE = -32029

# A header answer is ~1 KiB; anything far larger is not a header and is not worth buffering.
_MAX_BODY = 1 << 20
# How much server-supplied text a detail may quote.
_SNIPPET = 100
# `number` is a U256 rendered as 0x-hex without leading zeros; block numbers fit in u32 on
# Aleph Zero, so 16 digits (u64) is generous and anything longer is garbage, not a head.
_HEX_NUMBER_RE = re.compile(r"0x[0-9a-fA-F]{1,16}")
# A block hash: 32 bytes as 0x-hex.
_HASH_RE = re.compile(r"0x[0-9a-fA-F]{64}")
#: Seconds before asking again an endpoint that could not tell its genesis.
GENESIS_RETRY = 60.0


class FailureKind(StrEnum):
    """Why an endpoint gave no head in a round (the values are metric and log labels)."""

    #: No HTTP answer: connection refused or reset, DNS failure, closed mid-answer.
    REFUSED = "refused"
    TIMEOUT = "timeout"
    #: An HTTP status outside 2xx (other than 429).
    HTTP_STATUS = "http_status"
    #: HTTP 429 or JSON-RPC error -32029; the endpoint is left alone for ``retry_after``.
    RATE_LIMITED = "rate_limited"
    NOT_JSON = "not_json"
    RPC_ERROR = "rpc_error"
    #: Valid JSON, but not a well-formed answer to our request (no number, wrong id, …).
    BAD_RESULT = "bad_result"
    #: Not asked this round: an earlier ``Retry-After`` has not expired yet.
    WAITING = "waiting"


@dataclass(frozen=True, slots=True)
class EndpointFailure:
    """One endpoint's failure in one round; safe to log and to show (no URL, no secrets)."""

    endpoint: str
    kind: FailureKind
    detail: str
    retry_after: float | None = None

    @property
    def summary(self) -> str:
        """One line naming the endpoint, the kind and the detail."""
        return f"{self.endpoint} {self.kind.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one round produced: the good answers and the failures, each in URL order."""

    heads: tuple[int, ...]
    failures: tuple[EndpointFailure, ...]
    #: Endpoints that answered far from the others (three or more answers): left out.
    outliers: tuple[str, ...] = ()
    #: The answers in *heads*, each with its endpoint and the chain it serves.
    sources: tuple[ReferenceAnswer, ...] = field(default=(), compare=False)
    #: The finalized blocks told in this round (asked every ``finality_every`` rounds).
    finalized: tuple[int, ...] = ()

    def finality_event(self) -> ReferenceFinalized | None:
        """The reference's finalized block from this round, if it was asked and told."""
        if not self.finalized:
            return None
        return ReferenceFinalized(median_head(self.finalized))

    def event(self) -> HeadSample | HeadUnavailable:
        """The watcher event for this round: the median head, or why there is none."""
        if self.heads:
            return HeadSample(median_head(self.heads), len(self.heads), self.sources)
        if not self.failures:
            return HeadUnavailable("no reference endpoint configured")
        return HeadUnavailable("; ".join(failure.summary for failure in self.failures))


def genesis_short(block_hash: str) -> str:
    """A hash in the short form the node prints in its protocol names: ``0x7025…344e``."""
    lowered = block_hash.lower()
    return f"{lowered[:6]}…{lowered[-4:]}"


def genesis_of(answer: object) -> str | None:
    """The chain a ``chain_getBlockHash(0)`` *answer* names, in short form; ``None`` when the
    answer is not a block hash."""
    if isinstance(answer, str) and _HASH_RE.fullmatch(answer):
        return genesis_short(answer)
    return None


class HeadError(Exception):
    """An endpoint did not give a usable head: ``kind`` classifies it, ``detail`` explains it.

    ``retry_after`` is the back-off the server asked for (rate limiting only), in seconds.
    """

    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        retry_after: float | None = None,
        *,
        code: int | None = None,
    ) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after
        #: The JSON-RPC error code, for ``RPC_ERROR`` (-32601: the method is not offered).
        self.code = code


# --- one request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """The parts of an HTTP answer the classification needs, read while the connection is held."""

    status: int
    reason: str
    content_type: str
    retry_after: str | None
    body: bytes


async def fetch_head(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-endpoint budget, applied inside with fail_after
    request_id: int = 1,
) -> int:
    """Ask *url* for its best block number with ``chain_getHeader``.

    Bounded by *timeout* seconds in total (connect, send, read). Every way the endpoint can
    fail raises :class:`HeadError`; cancellation propagates untouched.
    """
    result = await rpc_call(session, url, "chain_getHeader", timeout=timeout, request_id=request_id)
    return header_number(result, _Scrubber(url))


async def rpc_call(
    session: aiohttp.ClientSession,
    url: str,
    method: str,
    params: Sequence[object] = (),
    *,
    timeout: float,  # noqa: ASYNC109 - a per-call budget, applied inside with fail_after
    request_id: int = 1,
) -> object:
    """The ``result`` of the JSON-RPC call *method* on *url* (it may be ``null``).

    Bounded by *timeout* seconds in total. Every way the endpoint can fail (no answer, an HTTP
    error, not JSON, a JSON-RPC error, an answer to another request) raises
    :class:`HeadError`, classified and safe to show; cancellation propagates untouched.
    """
    payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
    try:
        # Both deadlines: aiohttp's frees the connection its own way, anyio's is exact and
        # also covers what aiohttp's does not (pool waits, DNS on some resolvers).
        with anyio.fail_after(timeout):
            answer = await _post(session, url, payload, aiohttp.ClientTimeout(total=timeout))
    except TimeoutError:  # also aiohttp's ServerTimeoutError / SocketTimeoutError
        raise HeadError(FailureKind.TIMEOUT, f"no answer within {timeout:g}s") from None
    except aiohttp.ClientConnectorError as exc:
        raise HeadError(
            FailureKind.REFUSED, f"cannot connect: {_os_reason(exc.os_error)}"
        ) from None
    except aiohttp.ServerDisconnectedError:
        raise HeadError(
            FailureKind.REFUSED, "server closed the connection without answering"
        ) from None
    except aiohttp.ClientPayloadError:
        raise HeadError(FailureKind.REFUSED, "connection broke while reading the answer") from None
    except aiohttp.ClientOSError as exc:
        raise HeadError(FailureKind.REFUSED, f"connection error: {_os_reason(exc)}") from None
    except aiohttp.ClientError as exc:
        # str() of several aiohttp errors embeds the full URL (API key included): name only.
        raise HeadError(FailureKind.REFUSED, f"request failed: {type(exc).__name__}") from None
    except OSError as exc:
        raise HeadError(FailureKind.REFUSED, f"connection error: {_os_reason(exc)}") from None
    return _result_of(answer, request_id, _Scrubber(url))


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    client_timeout: aiohttp.ClientTimeout,
) -> _Answer:
    """POST *payload* and read the whole (bounded) body inside the response context."""
    async with session.post(url, json=payload, timeout=client_timeout) as resp:
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > _MAX_BODY:
                raise HeadError(
                    FailureKind.NOT_JSON,
                    f"HTTP {resp.status} body larger than {_MAX_BODY} bytes",
                )
        return _Answer(
            status=resp.status,
            reason=resp.reason or "",
            content_type=resp.content_type,
            retry_after=resp.headers.get("Retry-After"),
            body=bytes(body),
        )


def _result_of(answer: _Answer, request_id: int, scrub: _Scrubber) -> object:
    """Classify an HTTP answer: the call's result, or the :class:`HeadError` it amounts to."""
    status = f"HTTP {answer.status}"
    if answer.reason:
        status = f"{status} {scrub.snippet(answer.reason, 40)}"
    if answer.status == 429:
        retry_after = parse_retry_after(answer.retry_after)
        raise HeadError(
            FailureKind.RATE_LIMITED,
            f"{status}: {scrub.snippet(answer.body.decode('utf-8', 'replace'))}",
            retry_after,
        )
    try:
        body: object = json.loads(answer.body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, huge ints
        body = _NOT_JSON
    rpc_error = body.get("error") if isinstance(body, dict) else None
    if isinstance(rpc_error, dict) and rpc_error.get("code") == RATE_LIMIT_CODE:
        raise HeadError(
            FailureKind.RATE_LIMITED,
            _rpc_error_text(rpc_error, scrub),
            parse_retry_after(answer.retry_after),
        )
    if not 200 <= answer.status < 300:
        why = (
            _rpc_error_text(rpc_error, scrub)
            if rpc_error is not None
            else scrub.snippet(answer.body.decode("utf-8", "replace"))
        )
        raise HeadError(FailureKind.HTTP_STATUS, f"{status}: {why}" if why else status)
    if body is _NOT_JSON:
        raise HeadError(
            FailureKind.NOT_JSON,
            f"{answer.content_type or 'untyped'} body is not JSON: "
            f"{scrub.snippet(answer.body.decode('utf-8', 'replace'))}",
        )
    if not isinstance(body, dict):
        raise HeadError(
            FailureKind.BAD_RESULT, f"answer is a JSON {_json_type(body)}, not an object"
        )
    if rpc_error is not None:
        code = rpc_error.get("code") if isinstance(rpc_error, dict) else None
        raise HeadError(
            FailureKind.RPC_ERROR,
            _rpc_error_text(rpc_error, scrub),
            code=code if type(code) is int else None,
        )
    answer_id = body.get("id")
    # `type() is int`: JSON true would otherwise equal id 1.
    if type(answer_id) is not int or answer_id != request_id:
        raise HeadError(
            FailureKind.BAD_RESULT,
            f"answer id {scrub.snippet(json.dumps(answer_id), 30)} does not match request id "
            f"{request_id}",
        )
    if "result" not in body:
        raise HeadError(FailureKind.BAD_RESULT, "answer has neither result nor error")
    return body["result"]


async def fetch_finalized(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - one budget for both calls, applied inside
    request_ids: Iterator[int],
) -> int:
    """The number of *url*'s finalized block: ``chain_getFinalizedHead``, then the header of
    that hash (``chain_getHeader([hash])``), both within *timeout* seconds.

    Raises :class:`HeadError` as :func:`rpc_call` does, and for an answer that is not a hash
    or a hash the endpoint has no header for.
    """
    deadline = anyio.current_time() + timeout
    finalized_hash = await rpc_call(
        session, url, "chain_getFinalizedHead", timeout=timeout, request_id=next(request_ids)
    )
    if not isinstance(finalized_hash, str) or not _HASH_RE.fullmatch(finalized_hash):
        raise HeadError(FailureKind.BAD_RESULT, "chain_getFinalizedHead did not answer a hash")
    remaining = max(deadline - anyio.current_time(), 1e-3)
    header = await rpc_call(
        session,
        url,
        "chain_getHeader",
        [finalized_hash],
        timeout=remaining,
        request_id=next(request_ids),
    )
    if header is None:
        # A hash the endpoint does not know (a load balancer's other backend): no value.
        raise HeadError(FailureKind.BAD_RESULT, "no header for the finalized hash")
    return header_number(header, _Scrubber(url))


def header_number(result: object, scrub: _Scrubber | None = None) -> int:
    """The block number of a ``chain_getHeader`` result, or the :class:`HeadError` it is."""
    scrub = scrub or _Scrubber("")
    if not isinstance(result, dict):
        raise HeadError(
            FailureKind.BAD_RESULT, f"result is a JSON {_json_type(result)}, not a header"
        )
    if "number" not in result:
        raise HeadError(FailureKind.BAD_RESULT, "header has no number")
    number = result["number"]
    if not isinstance(number, str) or not _HEX_NUMBER_RE.fullmatch(number):
        raise HeadError(
            FailureKind.BAD_RESULT,
            f"header number {scrub.snippet(json.dumps(number), 40)} is not a 0x hex string",
        )
    return int(number, 16)


_NOT_JSON = object()


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _rpc_error_text(error: object, scrub: _Scrubber) -> str:
    """``JSON-RPC error <code>: <message>`` from an error object of any shape."""
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        code_text = str(code) if type(code) is int else scrub.snippet(json.dumps(code), 20)
        if isinstance(message, str):
            return f"JSON-RPC error {code_text}: {scrub.snippet(message)}"
        return f"JSON-RPC error {code_text}"
    return f"JSON-RPC error: {scrub.snippet(json.dumps(error))}"


def _os_reason(error: OSError) -> str:
    """A short reason for a socket error, without addresses or URLs."""
    if isinstance(error, socket.gaierror) and error.strerror:
        return f"DNS lookup failed ({error.strerror})"
    if isinstance(error.errno, int) and error.errno > 0:
        return os.strerror(error.errno)
    return type(error).__name__


class _Scrubber:
    """Make server-supplied text safe to quote: one short printable line, no URL secrets.

    Error pages like to echo the request line, which carries the path and query, and with
    them any API key; every part that :func:`redact_url` would mask is masked here too.
    """

    __slots__ = ("_secrets",)

    def __init__(self, url: str) -> None:
        secrets: set[str] = set()
        try:
            parts = urlsplit(url)
            redacted = urlsplit(redact_url(url))
            for part in (parts.username, parts.password):
                if part:
                    secrets.update((part, unquote(part)))
            for raw, masked in zip(parts.path.split("/"), redacted.path.split("/"), strict=False):
                if masked == MASK and raw != MASK:
                    secrets.update((raw, unquote(raw)))
            # parse_qsl drops empty items, so the raw items line up with its pairs.
            raw_items = [item for item in parts.query.split("&") if item]
            masked_pairs = parse_qsl(redacted.query, keep_blank_values=True)
            for item, (_, masked) in zip(raw_items, masked_pairs, strict=False):
                value = item.split("=", 1)[1] if "=" in item else ""
                if masked == MASK and value:
                    secrets.update((value, unquote_plus(value)))
        except ValueError:
            secrets.add(url)
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def snippet(self, text: str, limit: int = _SNIPPET) -> str:
        """*text* as one printable line of at most about *limit* characters, secrets masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = "".join(char if char.isprintable() else " " for char in text)
        text = " ".join(text.split())
        if len(text) > limit:
            text = text[: limit - 3].rstrip() + "..."
        return text


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    ``None`` when absent or unreadable (the caller applies its default). A date in the past
    gives 0; anything beyond :data:`MAX_RETRY_AFTER` is capped. *now* is the wall-clock time
    (Unix seconds) to measure a date against, for tests.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


# --- the poller -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Endpoint:
    """What the poller remembers about one endpoint between rounds."""

    url: str
    label: str
    #: Consecutive rounds without a head from this endpoint (0: it answered last time).
    failed_polls: int = 0
    last_kind: FailureKind | None = None
    #: ``anyio.current_time()`` before which the endpoint is not asked (rate limiting).
    not_before: float = -math.inf
    #: The highest head it answered: a load-balanced endpoint may answer lower a moment later.
    highest: int | None = None
    stepped_back: bool = False
    outlier: bool = False
    #: The genesis hash it serves, in the node's short form (``0x7025…344e``); ``None`` until
    #: it told, and asked again after it recovers from a failure (it may have been redeployed).
    genesis: str | None = None
    genesis_asked_at: float = -math.inf
    genesis_problem: str | None = None
    #: Its finalized block, when asked this round; why it could not tell, said once.
    finalized: int | None = None
    finality_problem: str | None = None


class HeadPoller:
    """Polls a fixed list of reference endpoints with a shared :class:`aiohttp.ClientSession`.

    Keeps per-endpoint memory across rounds: the rate-limit back-off, and whether the
    endpoint is failing, so a long outage logs one warning rather than one per round.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        timeout: float,
        logger: logging.Logger | None = None,
        default_retry_after: float | None = None,
        finality_every: int = 0,
    ) -> None:
        """*default_retry_after*: back-off for a rate limit without ``Retry-After``.

        When ``None``, :meth:`run` uses its poll interval (skip one round), and a bare
        :meth:`poll` uses :data:`DEFAULT_RETRY_AFTER`. *finality_every*: every how many
        rounds (the first included) the endpoints are also asked for their finalized block
        (0: never).
        """
        if not urls:
            raise ValueError("HeadPoller needs at least one reference URL")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self._session = session
        self._endpoints = [_Endpoint(url, endpoint_label(url)) for url in urls]
        self._timeout = timeout
        self._log = logger if logger is not None else _log
        self._default_retry_after = default_retry_after
        self._interval: float | None = None
        self._ids = itertools.count(1)
        self._finality_every = finality_every
        #: Rounds so far, for ``finality_every``.
        self._rounds = 0
        #: Failed polls per (endpoint label, failure kind), for a Prometheus counter.
        self.errors: collections.Counter[tuple[str, str]] = collections.Counter()

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints' labels, in URL order (safe to show)."""
        return tuple(endpoint.label for endpoint in self._endpoints)

    async def poll(self) -> PollResult:
        """One round: ask every endpoint at once, each under its own ``timeout``.

        Never raises for an endpoint's failure: each becomes an :class:`EndpointFailure`.
        """
        return await self._poll(anyio.current_time())

    async def _poll(self, slot: float) -> PollResult:
        """A round for the time *slot*: an endpoint backing off past *slot* is not asked.

        :meth:`run` passes the scheduled start, not the (later) actual one, so "skip the next
        round" does not depend on how promptly the timer fired.
        """
        now = anyio.current_time()
        outcomes: list[int | EndpointFailure | None] = []
        # The finality rule works on a 900 s scale and a 20-block rise, and a live chain
        # finalizes about a block a second: a finalized block a minute old loses nothing,
        # while asking every round would triple the requests to rate-limited providers.
        every = self._finality_every
        ask_finalized = every > 0 and self._rounds % every == 0
        self._rounds += 1
        for endpoint in self._endpoints:
            endpoint.finalized = None
        async with anyio.create_task_group() as tg:
            for index, endpoint in enumerate(self._endpoints):
                if endpoint.not_before > slot:
                    wait = max(0.0, endpoint.not_before - now)
                    outcomes.append(
                        EndpointFailure(
                            endpoint.label,
                            FailureKind.WAITING,
                            f"rate limited; not asked for another {wait:.1f}s",
                            retry_after=wait,
                        )
                    )
                else:
                    outcomes.append(None)
                    tg.start_soon(
                        self._ask, endpoint, outcomes, index, next(self._ids), ask_finalized
                    )
        answers: list[tuple[_Endpoint, int]] = []
        failures: list[EndpointFailure] = []
        for endpoint, outcome in zip(self._endpoints, outcomes, strict=True):
            assert outcome is not None, "every asked endpoint stores an outcome"
            self._record(endpoint, outcome)
            if isinstance(outcome, int):
                answers.append((endpoint, self._monotonic(endpoint, outcome)))
            else:
                failures.append(outcome)
        kept: list[tuple[_Endpoint, int]] = []
        outliers: list[str] = []
        # Endpoints of different chains are not each other's outliers: judge within a chain.
        for genesis in dict.fromkeys(endpoint.genesis for endpoint, _ in answers):
            group = [(endpoint, head) for endpoint, head in answers if endpoint.genesis == genesis]
            group_kept, group_outliers = self._without_outliers(group)
            kept += group_kept
            outliers += group_outliers
        kept.sort(key=lambda answer: self._endpoints.index(answer[0]))
        sources = tuple(ReferenceAnswer(e.label, head, e.genesis) for e, head in kept)
        finalized = tuple(e.finalized for e, _ in kept if e.finalized is not None)
        return PollResult(
            tuple(head for _, head in kept), tuple(failures), tuple(outliers), sources, finalized
        )

    def _monotonic(self, endpoint: _Endpoint, head: int) -> int:
        """*head*, or the endpoint's earlier higher head when it stepped back a little.

        Behind a load balancer an endpoint's backends lag each other by a few blocks; taken
        as they come, its answers go down and up again, and "up" would look like the chain
        moving while this node stalls. A fall of more than :data:`STEP_BACK_LIMIT` is taken
        as it is (the endpoint started over).
        """
        highest = endpoint.highest
        if highest is None or head >= highest or highest - head > STEP_BACK_LIMIT:
            if endpoint.stepped_back:
                endpoint.stepped_back = False
                self._log.info(
                    "head endpoint %s no longer answers below its own earlier head", endpoint.label
                )
            endpoint.highest = head
            return head
        if not endpoint.stepped_back:
            endpoint.stepped_back = True
            self._log.info(
                "head endpoint %s answered #%d, below its own earlier #%d (a load balancer's "
                "lagging backend?); its earlier head counts",
                endpoint.label,
                head,
                highest,
            )
        return highest

    def _without_outliers(
        self, answers: list[tuple[_Endpoint, int]]
    ) -> tuple[list[tuple[_Endpoint, int]], list[str]]:
        """The answers to take the median of, and the endpoints left out as far from the rest."""
        heads = [head for _, head in answers]
        middle = median_head(heads) if len(heads) >= 3 else None
        kept: list[tuple[_Endpoint, int]] = []
        outliers: list[str] = []
        for endpoint, head in answers:
            far = middle is not None and abs(head - middle) > OUTLIER_BLOCKS
            if far != endpoint.outlier:
                endpoint.outlier = far
                if far:
                    self._log.warning(
                        "head endpoint %s answered #%d, %d blocks from the others' median #%d; "
                        "left out of the median while it is that far",
                        endpoint.label,
                        head,
                        abs(head - (middle or 0)),
                        middle,
                    )
                else:
                    self._log.info("head endpoint %s agrees with the others again", endpoint.label)
            if far:
                outliers.append(endpoint.label)
            else:
                kept.append((endpoint, head))
        return kept, outliers

    async def _ask(
        self,
        endpoint: _Endpoint,
        outcomes: list[int | EndpointFailure | None],
        index: int,
        request_id: int,
        ask_finalized: bool = False,
    ) -> None:
        """Fetch one endpoint's head into ``outcomes[index]``; arm its back-off if throttled."""
        try:
            outcomes[index] = await fetch_head(
                self._session, endpoint.url, timeout=self._timeout, request_id=request_id
            )
            if endpoint.failed_polls or endpoint.genesis is None:
                await self._ask_genesis(endpoint, request_id)
            if ask_finalized:
                await self._ask_finalized(endpoint)
        except HeadError as exc:
            retry_after = exc.retry_after
            if exc.kind is FailureKind.RATE_LIMITED:
                if retry_after is None:
                    retry_after = self._backoff()
                endpoint.not_before = anyio.current_time() + retry_after
            outcomes[index] = EndpointFailure(endpoint.label, exc.kind, exc.detail, retry_after)

    async def _ask_genesis(self, endpoint: _Endpoint, request_id: int) -> None:
        """Learn which chain *endpoint* serves: ``chain_getBlockHash(0)``, its genesis hash."""
        now = anyio.current_time()
        if endpoint.genesis is None and now - endpoint.genesis_asked_at < GENESIS_RETRY:
            return
        endpoint.genesis_asked_at = now
        try:
            result = await rpc_call(
                self._session,
                endpoint.url,
                "chain_getBlockHash",
                [0],
                timeout=self._timeout,
                request_id=request_id,
            )
        except HeadError as exc:
            problem = f"cannot tell which chain it serves: {exc.kind.value}: {exc.detail}"
        else:
            genesis = genesis_of(result)
            if genesis is not None:
                if endpoint.genesis is not None and genesis != endpoint.genesis:
                    self._log.warning(
                        "head endpoint %s now serves another chain: genesis %s, was %s",
                        endpoint.label,
                        genesis,
                        endpoint.genesis,
                    )
                endpoint.genesis, endpoint.genesis_problem = genesis, None
                return
            shown = _Scrubber(endpoint.url).snippet(json.dumps(result), 80)
            problem = f"answered its genesis hash in an unexpected form: {shown}"
        # Asked again after a failure (a redeploy?), the chain it told before no longer holds.
        endpoint.genesis = None
        if problem != endpoint.genesis_problem:
            endpoint.genesis_problem = problem
            self._log.warning("head endpoint %s %s", endpoint.label, problem)

    async def _ask_finalized(self, endpoint: _Endpoint) -> None:
        """Ask *endpoint* for its finalized block; a failure is said once, never the head's."""
        try:
            endpoint.finalized = await fetch_finalized(
                self._session, endpoint.url, timeout=self._timeout, request_ids=self._ids
            )
        except HeadError as exc:
            problem = f"cannot tell its finalized block: {exc.kind.value}: {exc.detail}"
            if problem != endpoint.finality_problem:
                self._log.warning("head endpoint %s %s", endpoint.label, problem)
            endpoint.finality_problem = problem
            return
        if endpoint.finality_problem is not None:
            self._log.info("head endpoint %s tells its finalized block again", endpoint.label)
        endpoint.finality_problem = None

    def _backoff(self) -> float:
        """The back-off for a rate limit that named none."""
        if self._default_retry_after is not None:
            return self._default_retry_after
        if self._interval is not None:
            return self._interval
        return DEFAULT_RETRY_AFTER

    def _record(self, endpoint: _Endpoint, outcome: int | EndpointFailure) -> None:
        """Count a failure and log the transitions only: starts failing, recovers."""
        if isinstance(outcome, int):
            if endpoint.failed_polls:
                polls = endpoint.failed_polls
                self._log.info(
                    "head endpoint %s answers again after %d failed poll%s",
                    endpoint.label,
                    polls,
                    "" if polls == 1 else "s",
                )
            endpoint.failed_polls = 0
            endpoint.last_kind = None
            return
        self.errors[(endpoint.label, outcome.kind.value)] += 1
        endpoint.failed_polls += 1
        if endpoint.failed_polls == 1:
            self._log.warning(
                "head endpoint %s is failing: %s: %s",
                endpoint.label,
                outcome.kind.value,
                outcome.detail,
            )
        elif outcome.kind is not endpoint.last_kind:
            self._log.debug(
                "head endpoint %s still failing, now %s: %s",
                endpoint.label,
                outcome.kind.value,
                outcome.detail,
            )
        endpoint.last_kind = outcome.kind

    async def run(
        self,
        emit: Callable[[PollResult], Awaitable[None]],
        *,
        interval: float,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Poll every *interval* seconds and ``await emit(result)``, until cancelled.

        Fixed rate: round *k* starts at ``start + k × interval`` however long the rounds and
        ``emit`` take, so there is no drift. A round that overruns its slot is followed at once
        by the next, and the schedule restarts from there: late rounds are dropped, never
        bunched up. ``task_status.started()`` fires once the first round has been emitted.
        """
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self._interval = interval
        next_round = anyio.current_time()
        started = False
        while True:
            await emit(await self._poll(next_round))
            if not started:
                task_status.started()
                started = True
            next_round += interval
            now = anyio.current_time()
            if next_round < now:
                next_round = now
            await anyio.sleep_until(next_round)
