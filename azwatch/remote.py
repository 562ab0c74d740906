"""``azwatch status``, ``azwatch pause`` and ``azwatch resume``: ask the running watcher.

Each talks to the watcher's HTTP endpoint (``--url``, by default ``http://HTTP_HOST:HTTP_PORT``
with a wildcard address replaced by 127.0.0.1) and needs no container setting:

* ``status`` gets ``/status`` and prints one line per container, in columns like
  ``docker ps``; ``--json`` prints the document itself;
* ``pause NAME [--for 2h] [--reason TEXT]`` and ``resume NAME`` post to ``/control/pause``
  and ``/control/resume``, with ``Authorization: Bearer $CONTROL_TOKEN`` when it is set.

Exit codes: 0 done; 1 the watcher answered but refused (unknown container, bad token, control
off); 2 bad command line or settings (no ``HTTP_PORT`` and no ``--url``, a bad duration);
3 no watcher answers (refused, timed out, or what answered is not the watcher's JSON).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, TypeGuard

import aiohttp
import anyio

from azwatch.config import Config
from azwatch.control import ControlError, clean_reason, parse_duration
from azwatch.progress import format_duration

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NO_WATCHER = 3

COLUMNS = ("NAME", "STATE", "BEST", "HEAD", "LAG", "DECISION", "COOLDOWN", "RESTARTS")


class NoWatcher(Exception):
    """Nothing that looks like the watcher answered; the message says what happened."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    document: Any


def watcher_url(config: Config, url: str | None) -> str | None:
    """The watcher's base URL: *url*, or one made of ``HTTP_HOST`` and ``HTTP_PORT``."""
    if url:
        return url.rstrip("/")
    if config.http_port is None:
        return None
    host = config.http_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # the wildcard address is not one to connect to
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.http_port}"


def ask(
    url: str,
    *,
    timeout: float,
    body: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> Answer:
    """GET *url* (or POST *body* as JSON) and return its JSON; :class:`NoWatcher` otherwise."""

    async def call() -> Answer:
        headers = {"Accept": "application/json"}
        if token is not None and body is not None:
            headers["Authorization"] = f"Bearer {token}"
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            if body is None:
                request = session.get(url, headers=headers, allow_redirects=False)
            else:
                request = session.post(url, json=dict(body), headers=headers, allow_redirects=False)
            async with request as reply:
                text = await reply.text(errors="replace")
                try:
                    return Answer(reply.status, json.loads(text))
                except ValueError:
                    kind = reply.content_type or "no content type"
                    raise NoWatcher(
                        f"{url} did not answer JSON (HTTP {reply.status}, {kind}): "
                        "is this azwatch's HTTP_PORT?"
                    ) from None

    try:
        return anyio.run(call, backend="asyncio")
    except NoWatcher:
        raise
    except TimeoutError:
        raise NoWatcher(f"no watcher answers at {url}: no answer within {timeout:g}s") from None
    except aiohttp.ClientConnectorError as error:
        why = error.strerror or type(error).__name__
        raise NoWatcher(f"no watcher answers at {url}: {why}") from None
    except (aiohttp.ClientError, OSError) as error:
        raise NoWatcher(f"no watcher answers at {url}: {type(error).__name__}") from None


# --- status -----------------------------------------------------------------------------------


def status_rows(document: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row of :data:`COLUMNS` per container of a ``/status`` document."""
    rows: list[tuple[str, ...]] = []
    containers = document.get("containers")
    if not isinstance(containers, dict):
        return rows
    for name, view in sorted(containers.items()):
        if not isinstance(view, dict):
            continue
        run: dict[str, Any] = view["run"] if isinstance(view.get("run"), dict) else {}
        state = str(view.get("status") or "unknown")
        if view.get("paused"):
            pause = view.get("pause") or {}
            left = pause.get("left") if isinstance(pause, dict) else None
            state += ", restarts paused" + (f" {format_duration(left)}" if _number(left) else "")
        decision = view.get("decision")
        if isinstance(decision, dict):
            action = decision.get("action")
            why = decision.get("rule") or decision.get("reason") or "unknown"
            shown = f"{action}: {why}"
        else:
            shown = "unknown"
        cooldown = view.get("cooldown_left")
        rows.append(
            (
                str(name),
                state,
                _shown(run.get("best")),
                _shown(view.get("head")),
                _shown(view.get("lag")),
                shown,
                format_duration(cooldown) if _number(cooldown) else "unknown",
                _shown(view.get("restarts")),
            )
        )
    return rows


def table(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> list[str]:
    """*rows* under *header*, each column as wide as its widest cell, three spaces apart."""
    everything = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]
    return [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in everything
    ]


def status(config: Config, *, url: str | None, as_json: bool, timeout: float, out: TextIO) -> int:
    """``azwatch status``: print the watcher's containers (or its /status document)."""
    base = watcher_url(config, url)
    if base is None:
        return _usage("status needs HTTP_PORT (the watcher's endpoint) or --url")
    try:
        answer = ask(f"{base}/status", timeout=timeout)
    except NoWatcher as error:
        return _fail(str(error), EXIT_NO_WATCHER)
    document = answer.document
    if answer.status != 200 or not isinstance(document, dict) or "containers" not in document:
        return _fail(
            f"{base}/status is not azwatch's status (HTTP {answer.status})", EXIT_NO_WATCHER
        )
    if as_json:
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write("\n".join(table(status_rows(document))) + "\n")
    return EXIT_OK


# --- pause and resume -------------------------------------------------------------------------


def pause(
    config: Config,
    name: str,
    *,
    url: str | None,
    duration: str | None,
    reason: str | None,
    timeout: float,
    out: TextIO,
) -> int:
    """``azwatch pause NAME``: no restart of NAME for *duration* (1 h unless given)."""
    try:
        seconds = parse_duration(duration)
        words = clean_reason(reason)
    except ControlError as error:
        return _usage(str(error))
    body: dict[str, Any] = {"container": name, "for": seconds}
    if words:
        body["reason"] = words
    code, reply = _control(config, url, "pause", body, timeout)
    if code != EXIT_OK:
        return code
    until = reply.get("until")
    when = (
        f" (until {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(until))})"
        if _number(until)
        else ""
    )
    said = f": {words}" if words else ""
    out.write(f"paused {name} for {format_duration(seconds)}{when}{said}\n")
    return EXIT_OK


def resume(config: Config, name: str, *, url: str | None, timeout: float, out: TextIO) -> int:
    """``azwatch resume NAME``: end NAME's pause now."""
    code, reply = _control(config, url, "resume", {"container": name}, timeout)
    if code != EXIT_OK:
        return code
    out.write(f"resumed {name}\n" if reply.get("was_paused") else f"{name} was not paused\n")
    return EXIT_OK


def _control(
    config: Config, url: str | None, action: str, body: dict[str, Any], timeout: float
) -> tuple[int, dict[str, Any]]:
    base = watcher_url(config, url)
    if base is None:
        return _usage(f"{action} needs HTTP_PORT (the watcher's endpoint) or --url"), {}
    target = f"{base}/control/{action}"
    try:
        answer = ask(target, timeout=timeout, body=body, token=config.control_token)
    except NoWatcher as error:
        return _fail(str(error), EXIT_NO_WATCHER), {}
    reply = answer.document if isinstance(answer.document, dict) else {}
    if answer.status == 200:
        return EXIT_OK, reply
    why = reply.get("error")
    if not isinstance(why, str):
        text = f"{target} is not azwatch's control endpoint (HTTP {answer.status})"
        return _fail(text, EXIT_NO_WATCHER), {}
    return _fail(f"{action} refused (HTTP {answer.status}): {why}", EXIT_REFUSED), {}


# --- words ------------------------------------------------------------------------------------


def _shown(value: object) -> str:
    return "unknown" if value is None else str(value)


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _usage(message: str) -> int:
    return _fail(message, EXIT_USAGE)


def _fail(message: str, code: int) -> int:
    print(f"azwatch: {message}", file=sys.stderr)
    return code
