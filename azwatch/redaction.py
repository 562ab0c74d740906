"""Keep secrets in URLs out of logs, metrics and error messages.

RPC providers put API keys in three places: user info (``https://user:key@host``), query
parameters (``?apikey=…``) and path segments (``https://host/<key>``). :func:`redact_url`
masks all three and keeps what an operator needs to tell endpoints apart: scheme, host, port.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

_SECRET_PARAM_RE = re.compile(
    r"(api[-_]?key|apikey|key|token|access[-_]?token|auth|secret|password|passwd|pass|sig|signature)",
    re.IGNORECASE,
)
# A path segment that looks like a credential: long and mixing letters with digits (API keys,
# UUIDs, hex tokens), as opposed to words like "public", "rpc" or "ws".
_TOKEN_SEGMENT_RE = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-]{16,}")


def redact_url(url: str) -> str:
    """Return *url* with credentials masked; unparsable input is masked whole."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    path = "/".join(
        MASK if _TOKEN_SEGMENT_RE.fullmatch(segment) else segment
        for segment in parts.path.split("/")
    )
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(key, MASK if _SECRET_PARAM_RE.search(key) else value) for key, value in pairs],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def endpoint_label(url: str) -> str:
    """A short, secret-free name for an endpoint: its host (and port if not the default)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or MASK
        port = parts.port
    except ValueError:
        return MASK
    return host if port is None else f"{host}:{port}"
