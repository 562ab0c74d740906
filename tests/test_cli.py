"""The command line: where settings may be given, what it says, how it ends."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from loopback import start_on_loopback, stop

from azwatch import __version__
from azwatch.cli import build_parser, main, run_replay, settings_from
from azwatch.config import SETTINGS, Config

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


def given(*argv: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The settings the command line *argv* hands to the configuration."""
    return settings_from(build_parser().parse_args(argv), environ or {})


@pytest.mark.parametrize(
    "argv",
    [
        ("--cooldown", "60", "replay", SCENARIO),
        ("replay", "--cooldown", "60", SCENARIO),
        ("replay", SCENARIO, "--cooldown", "60"),
        ("--cooldown", "30", "replay", "--cooldown", "60", SCENARIO),
    ],
)
def test_a_flag_counts_before_or_after_the_command(argv: tuple[str, ...]) -> None:
    """Flags may come before or after the subcommand; after it wins when both are given."""
    assert given(*argv, environ={"COOLDOWN": "1", "RPC_URL": "http://x"}) == {
        "COOLDOWN": "60",
        "RPC_URL": "http://x",
    }


def test_flags_before_each_command_are_kept() -> None:
    """Before `check`, `run` or no command at all, a flag is not lost either."""
    assert given("--container-name", "X", "check") == {"CONTAINER_NAME": "X"}
    assert given("--dry-run", "--block-lag-100", "500", "run") == {
        "DRY_RUN": "true",
        "BLOCK_LAG_100": "500",
    }
    assert given("--cooldown", "5") == {"COOLDOWN": "5"}
    assert given("check", "--watcher") == {}


def test_a_flag_before_replay_changes_the_replay(capsys: pytest.CaptureFixture[str]) -> None:
    """`azwatch --cooldown 400 replay FILE` replays with that cooldown, as the same flag after
    `replay` does."""

    def restarts(*argv: str) -> list[float]:
        assert main(list(argv), environ={}) == 0
        decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        return [decision["at"] for decision in decisions]

    assert restarts("replay", SCENARIO) == [300.0]
    before = restarts("--cooldown", "400", "replay", SCENARIO)
    assert before != [300.0]
    assert before == restarts("replay", "--cooldown", "400", SCENARIO)


def test_help_gives_each_setting_its_variable_and_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--help`, top-level and per command, names each flag's variable and its default."""
    monkeypatch.setenv("COLUMNS", "400")  # one line per flag, to read them whole
    for argv in ([], ["run"], ["check"], ["replay"]):
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--help"], environ={})
        assert exited.value.code == 0
        shown = capsys.readouterr().out
        for item in SETTINGS:
            assert f"[{item.variable}, default: {item.shown_default}]" in shown, item.variable
    assert "[COOLDOWN, default: 300]" in shown
    assert "[CONTAINER_NAME, default: required (unless CONTAINER_LABEL)]" in shown
    assert "[DRY_RUN, default: false]" in shown


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`azwatch --version` prints the package's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"], environ={})
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"azwatch {__version__}\n" == "azwatch 0.1.0\n"


def test_python_m_azwatch_is_azwatch() -> None:
    """`python -m azwatch` runs the same command line."""
    done = subprocess.run(
        [sys.executable, "-m", "azwatch", "--version"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"azwatch {__version__}\n", "")


def without_containers(**settings: str) -> dict[str, str]:
    """This process's environment with no container configured, and *settings* added."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CONTAINER_NAME", "CONTAINER_LABEL", "HTTP_PORT"}
    }
    return {**environ, "PYTHONWARNINGS": "error", **settings}


async def check_watcher(**settings: str) -> tuple[int, str, str]:
    """`python -m azwatch check --watcher` with no container configured."""
    done = await anyio.run_process(
        [sys.executable, "-m", "azwatch", "check", "--watcher"],
        env=without_containers(**settings),
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_check_watcher_needs_no_container() -> None:
    """`check --watcher` asks /healthz only: no CONTAINER_NAME or CONTAINER_LABEL needed."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"problems": []})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner, port = await start_on_loopback(app)
    try:
        code, out, err = await check_watcher(HTTP_PORT=str(port))
    finally:
        await stop(runner)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"problems": []}
    code, out, err = await check_watcher(HTTP_PORT=str(port))  # nothing listens any more
    assert code == 3
    assert f"no watcher answers at http://127.0.0.1:{port}/healthz" in err
    code, out, err = await check_watcher()
    assert code == 2
    assert err == "azwatch: check --watcher needs HTTP_PORT (the watcher's /healthz)\n"


def test_commands_that_watch_still_need_a_container(capsys: pytest.CaptureFixture[str]) -> None:
    """`check` and `run` without a container stop at the configuration, exit 2."""
    for argv in (["check"], ["run"], []):
        assert main(argv, environ={}) == 2
        assert "CONTAINER_NAME is not set" in capsys.readouterr().err


def test_replay_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`azwatch replay FILE | head -1`: when the reader goes, replay stops with 141 (128 +
    SIGPIPE, as the shell reports a filter the signal ended) and says nothing."""
    scenario = tmp_path / "long.jsonl"
    records = [{"at": 0, "start": True}] + [{"at": at, "head": 1000 + at} for at in range(1, 2001)]
    scenario.write_text("".join(json.dumps(record) + "\n" for record in records), "utf-8")
    # Far more output than a pipe holds, so the writer is still writing when the reader goes.
    argv = ["replay", "--all", "--check-interval", "1", str(scenario)]
    with subprocess.Popen(
        [sys.executable, "-m", "azwatch", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = json.loads(process.stdout.readline())
        process.stdout.close()
        complaint = process.stderr.read()
        code = process.wait(timeout=60)
    assert first["at"] == 0.0
    assert (code, complaint) == (141, b"")


class FailingOutput(io.StringIO):
    """An output whose every write fails with *error*."""

    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), 141, ""),
        (OSError(errno.ENOSPC, "No space left on device"), 2, "cannot write the decisions"),
    ],
)
def test_a_failed_write_is_not_a_read_error_of_the_scenario(
    capsys: pytest.CaptureFixture[str], error: OSError, code: int, said: str
) -> None:
    """Only the scenario's own errors say "cannot read" it."""
    config = Config(container_names=("n",))
    assert run_replay(SCENARIO, config, all_decisions=True, out=FailingOutput(error)) == code
    complaint = capsys.readouterr().err
    assert "cannot read" not in complaint
    assert said in complaint
    assert bool(complaint) == bool(said)
