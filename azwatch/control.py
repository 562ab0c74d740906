"""Maintenance pauses from outside: durations, reasons and who may ask. Pure.

``azwatch pause NAME --for 2h --reason TEXT`` and ``azwatch resume NAME`` reach the running
watcher as ``POST /control/pause`` and ``POST /control/resume`` (JSON bodies) on its HTTP
endpoint; this module holds the rules both ends share:

* :func:`parse_duration`: ``90s``, ``30m``, ``2h``, ``1h30m`` or a number of seconds; more
  than zero and at most :data:`PAUSE_MAX` (24 h); :data:`PAUSE_DEFAULT` (1 h) when not given;
* :func:`clean_reason`: the operator's words, one line, at most :data:`REASON_MAX` characters;
* :class:`ControlAccess`: who may pause. On a loopback ``HTTP_HOST`` anyone who can reach the
  port may (as anyone on the host can reach the Docker socket's group), unless
  ``CONTROL_TOKEN`` is set; on any other address ``CONTROL_TOKEN`` is required, and without it
  the control endpoint refuses everything. The token is a bearer token
  (``Authorization: Bearer …``), compared in constant time.

A pause lives in the watcher's memory only: a restart of azwatch ends it.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from dataclasses import dataclass, field

#: A pause without ``--for`` lasts one hour.
PAUSE_DEFAULT = 3600.0
#: No pause lasts longer than a day: a forgotten pause must not disable azwatch for good.
PAUSE_MAX = 24 * 3600.0
#: Characters of a pause's reason.
REASON_MAX = 200

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)([smh])")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
DURATION_FORMS = "a duration such as 90s, 30m, 2h or 1h30m"


class ControlError(ValueError):
    """A control request that cannot be carried out, said in one line."""


def parse_duration(text: str | float | None) -> float:
    """Seconds of a pause: *text* such as ``90s``, ``30m``, ``2h``, ``1h30m`` or ``600``.

    ``None`` (not given) is :data:`PAUSE_DEFAULT`. Raises :class:`ControlError` for anything
    else, zero, or more than :data:`PAUSE_MAX`.
    """
    if text is None:
        return PAUSE_DEFAULT
    if isinstance(text, bool):
        raise ControlError(f"pause duration {text!r}: expected {DURATION_FORMS}")
    if isinstance(text, int | float):
        seconds = float(text)
        shown = f"{text!r}"
    else:
        raw = text.strip().lower()
        shown = repr(text)
        if _NUMBER_RE.fullmatch(raw):
            seconds = float(raw)
        else:
            parts = _PART_RE.findall(raw)
            if not raw or "".join(number + unit for number, unit in parts) != raw:
                raise ControlError(f"pause duration {shown}: expected {DURATION_FORMS}")
            if len({unit for _, unit in parts}) != len(parts):
                raise ControlError(f"pause duration {shown}: each unit at most once")
            seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ControlError(f"pause duration {shown}: expected more than 0s")
    if seconds > PAUSE_MAX:
        raise ControlError(f"pause duration {shown}: at most 24h")
    return seconds


def clean_reason(text: object) -> str:
    """The reason given for a pause, on one line; empty when none was given."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ControlError("reason: expected text")
    reason = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(reason) > REASON_MAX:
        raise ControlError(f"reason: at most {REASON_MAX} characters ({len(reason)} given)")
    return reason


def is_loopback(host: str) -> bool:
    """Whether *host* (``HTTP_HOST``, or a request's Host) names this machine's loopback only.

    ``localhost`` counts; every other name, the wildcard addresses and any address outside
    127.0.0.0/8 and ::1 do not.
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host part of an HTTP ``Host`` header (``127.0.0.1:9616`` → ``127.0.0.1``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a control request is refused: its HTTP status and one line for the operator."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class ControlAccess:
    """Who may use the control endpoint of a watcher bound to *http_host*."""

    http_host: str
    token: str | None = field(default=None, repr=False)

    @property
    def open_on_loopback(self) -> bool:
        """No token needed: the endpoint listens on loopback and no token was set."""
        return self.token is None and is_loopback(self.http_host)

    def refusal(self, authorization: str | None, request_host: str | None) -> Refusal | None:
        """Why a request with these headers may not pause or resume; ``None`` if it may."""
        if self.token is None:
            if not is_loopback(self.http_host):
                return Refusal(
                    403,
                    f"control is off: HTTP_HOST={self.http_host} is not a loopback address "
                    "and CONTROL_TOKEN is not set",
                )
            # A page from another site whose name resolves to 127.0.0.1 (DNS rebinding)
            # sends its own name as Host: only requests that name the loopback get through.
            if request_host is None or not is_loopback(host_of(request_host)):
                return Refusal(403, "control without CONTROL_TOKEN takes loopback hosts only")
            return None
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Refusal(401, "control needs Authorization: Bearer <CONTROL_TOKEN>")
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return Refusal(401, "wrong control token")
        return None
