"""The command line: where settings may be given, what it says, how it ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from azwatch.cli import main

SCENARIO = str(Path(__file__).resolve().parent.parent / "examples" / "scenario.jsonl")


def test_every_configuration_problem_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """One line per problem, all of them, before anything runs."""
    env = {"BLOCK_LAG_20": "abc", "COOLDOWN": "-5", "HTTP_PORT": "99999", "DRY_RUN": "maybe"}
    assert main(["replay", SCENARIO], environ=env) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line.split("=")[0] for line in captured.err.splitlines()] == [
        "azwatch: configuration error: BLOCK_LAG_20",
        "azwatch: configuration error: COOLDOWN",
        "azwatch: configuration error: DRY_RUN",
        "azwatch: configuration error: HTTP_PORT",
    ]
