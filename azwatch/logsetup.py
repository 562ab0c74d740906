"""Logging output for the CLI: readable text by default, one JSON object per line on request.

Only the CLI calls :func:`configure`; the library never touches logging configuration. Log
calls across azwatch pass their structure in ``extra``: ``container``, ``event`` and a
``fields`` dict of the numbers behind the event. Text output shows the message (which already
reads well); JSON output carries all of it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD = frozenset(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "container", "event", "message", ...fields}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "container": getattr(record, "container", None),
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                payload.setdefault(str(key), value)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in payload and key != "fields":
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure(log_format: str, level: str, stream: TextIO | None = None) -> None:
    """Send azwatch's logs (and only its own at INFO) to *stream* in *log_format*."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # other libraries: warnings and errors only
    logging.getLogger("azwatch").setLevel(level)
    # apprise's own messages may quote a notification URL (tokens); azwatch logs each
    # failed notification itself, without the URL.
    logging.getLogger("apprise").setLevel(logging.CRITICAL)
