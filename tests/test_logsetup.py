"""Log output: JSON objects per line, readable text by default."""

from __future__ import annotations

import io
import json
import logging

import pytest

from azwatch.logsetup import JsonFormatter, configure


def test_json_formatter_carries_structure() -> None:
    """Container, event and the event's numbers become JSON fields."""
    record = logging.makeLogRecord(
        {
            "name": "azwatch.watcher",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "%s: restarting",
            "args": ("node",),
            "container": "node",
            "event": "restart",
            "fields": {"rule": "severe_lag", "lag": 230},
        }
    )
    payload = json.loads(JsonFormatter().format(record))
    assert payload["container"] == "node"
    assert payload["event"] == "restart"
    assert payload["rule"] == "severe_lag"
    assert payload["lag"] == 230
    assert payload["message"] == "node: restarting"
    assert payload["level"] == "WARNING"
    assert payload["time"].endswith("+00:00")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configure_writes_azwatch_logs_in_the_format(log_format: str) -> None:
    """The CLI's logging goes to the stream in the chosen format; other libraries stay quiet."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("azwatch").level)
    try:
        configure(log_format, "INFO", stream)
        logging.getLogger("azwatch.test").info("hello %s", "there", extra={"event": "greet"})
        logging.getLogger("some.library").info("chatter")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("azwatch").setLevel(saved[2])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    if log_format == "json":
        assert json.loads(lines[0])["event"] == "greet"
    else:
        assert lines[0].endswith("INFO    hello there")
