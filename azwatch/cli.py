"""The command line: ``azwatch [run|check|replay|status|pause|resume]``.

This is the only place that reads ``os.environ``, configures logging, handles signals and
chooses exit codes. Every setting is an environment variable and a flag of the same name
(``BLOCK_LAG_20`` ↔ ``--block-lag-20``); a flag wins over the variable.

Exit codes: 0 success (``check``: healthy); 1 ``check`` would restart; 2 bad configuration
or bad scenario; 3 ``check`` cannot observe (or ``run`` cannot reach Docker at start); 141
``replay``'s reader closed the pipe. ``status``, ``pause`` and ``resume`` ask the running
watcher and have their own (:mod:`azwatch.remote`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from azwatch import __version__
from azwatch.config import SETTINGS, Config, ConfigError
from azwatch.logsetup import configure
from azwatch.replay import ScenarioError, read_records, replay

EXIT_OK = 0
EXIT_WOULD_RESTART = 1
EXIT_CONFIG = 2
EXIT_BLIND = 3
#: ``replay``'s reader closed the pipe: 128 + SIGPIPE, what the shell reports for a filter
#: that the signal ended (``yes | head -1``).
EXIT_PIPE_CLOSED = 141

#: Config always names a container to watch, so that watch() can never be handed none; the
#: commands that look at no container (replay, check --watcher) give it this stand-in.
_STAND_IN_CONTAINER = "none"

#: ``azwatch demo``'s image (the README's set-up builds it) and status page port (the image's
#: own HTTP_PORT, where an operator will look later).
DEMO_IMAGE = "azwatch"
DEMO_PORT = 9616


def add_settings(parser: argparse.ArgumentParser) -> None:
    """Give *parser* a flag for every setting of :data:`~azwatch.config.SETTINGS`.

    A flag not given leaves no attribute (``SUPPRESS``): the top-level parser and each
    subcommand's both have the flags, and argparse copies the subcommand's namespace over
    the top-level one, so a default there would erase a flag given before the subcommand.
    """
    group = parser.add_argument_group(
        "settings (each also read from the variable named; before or after the command)"
    )
    for setting in SETTINGS:
        # argparse expands %-formats in help; a setting's own text is meant literally.
        text = f"{setting.help} [{setting.variable}, default: {setting.shown_default}]"
        text = text.replace("%", "%%")
        if setting.variable == "DRY_RUN":
            group.add_argument(
                setting.flag,
                dest=setting.variable,
                action="store_const",
                const="true",
                default=argparse.SUPPRESS,
                help=text,
            )
        else:
            group.add_argument(
                setting.flag,
                dest=setting.variable,
                metavar="VALUE",
                default=argparse.SUPPRESS,
                help=text,
            )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every setting is a flag, before or after the subcommand."""
    parser = argparse.ArgumentParser(
        prog="azwatch",
        description="Watch an Aleph Zero node container and restart it when it falls out of sync.",
    )
    parser.add_argument("--version", action="version", version=f"azwatch {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="{run,check,replay,status,pause,resume,demo}"
    )
    run_parser = commands.add_parser("run", help="watch until SIGTERM/SIGINT (the default)")
    check_parser = commands.add_parser(
        "check",
        help="one look: exit 0 healthy, 1 would restart, 2 bad configuration, 3 cannot observe",
    )
    check_parser.add_argument(
        "--watcher",
        action="store_true",
        help="ask the running watcher's /healthz (HTTP_PORT) instead: exit 0 if it is working, "
        "3 if not (a Docker HEALTHCHECK for the azwatch container itself)",
    )
    check_parser.add_argument(
        "--permissions",
        action="store_true",
        help="probe what DOCKER_HOST lets azwatch do (list, inspect, logs, events, restart), "
        "restarting and creating nothing; warn if it also allows creating containers; exit 0 "
        "if all five work, 3 if not",
    )
    replay_parser = commands.add_parser(
        "replay",
        help="feed a recorded scenario through the decision rules; print JSON Lines",
    )
    replay_parser.add_argument(
        "file", help="scenario (JSON Lines) or `docker logs -t` capture; - for stdin"
    )
    replay_parser.add_argument(
        "--all",
        action="store_true",
        dest="all_decisions",
        help="print hold decisions too (every CHECK_INTERVAL and whenever the reason changes)",
    )
    remote_parsers = _add_remote_commands(commands)
    _add_demo_command(commands)
    for each in (parser, run_parser, check_parser, replay_parser, *remote_parsers):
        add_settings(each)
    return parser


#: The commands that ask the running watcher (no container needed).
REMOTE_COMMANDS = ("status", "pause", "resume")


def _add_remote_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """``status``, ``pause`` and ``resume`` (see :mod:`azwatch.remote`)."""
    status_parser = commands.add_parser(
        "status", help="ask the running watcher: one line per container (exit 3: none answers)"
    )
    status_parser.add_argument(
        "--json", action="store_true", dest="as_json", help="print the /status document"
    )
    pause_parser = commands.add_parser(
        "pause", help="pause restarts of a container for maintenance (the watcher keeps deciding)"
    )
    pause_parser.add_argument("name", help="the watched container")
    pause_parser.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="how long: 90s, 30m, 2h, 1h30m (default 1h, at most 24h)",
    )
    pause_parser.add_argument("--reason", help="why, for the log, the page and /status")
    resume_parser = commands.add_parser("resume", help="end a container's pause now")
    resume_parser.add_argument("name", help="the watched container")
    remote = [status_parser, pause_parser, resume_parser]
    for each in remote:
        each.add_argument(
            "--url",
            help="the watcher's endpoint (default: http://HTTP_HOST:HTTP_PORT, "
            "0.0.0.0 as 127.0.0.1)",
        )
        each.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="how long to wait for the answer (default 10)",
        )
    return remote


def _add_demo_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``demo`` (see :mod:`azwatch.demo`); it takes no settings: its own are scaled down."""
    demo_parser = commands.add_parser(
        "demo",
        help="see azwatch restart a stalled stand-in node within a minute (needs Docker)",
        description=(
            "Start a stand-in node container from the azwatch image (no network, nothing "
            "pulled) that prints a scripted aleph-node life: start-up, major sync, in sync, "
            "then a stall. Watch it with short settings and a reference head on 127.0.0.1, and "
            "show the status page's address. Within about a minute azwatch detects the stall, "
            "restarts the container and says 'helped: yes'; the demo then removes everything it "
            "started (also on Ctrl+C) and exits 0."
        ),
        epilog=(
            "Its settings are its own, scaled down (COOLDOWN 15 s, STALL_TIMEOUT 10 s, "
            "CHECK_INTERVAL 5 s); of the variables and flags only DOCKER_HOST applies. "
            "Exit codes: 0 shown (or --duration over); 1 the demo did not show it (the line "
            "says why); 2 the image is missing, the port is in use or the name is taken; 3 no "
            "Docker Engine answers; 130/143 stopped by SIGINT/SIGTERM."
        ),
    )
    demo_parser.add_argument(
        "--image",
        default=DEMO_IMAGE,
        help=f"the azwatch image to run the stand-in from (default {DEMO_IMAGE}; build it "
        f"with `docker build -t {DEMO_IMAGE} .`)",
    )
    demo_parser.add_argument(
        "--port",
        type=int,
        default=DEMO_PORT,
        help=f"the status page's port on 127.0.0.1 (default {DEMO_PORT}; 0: any free one)",
    )
    demo_parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="keep running this long, the status page with it, then stop "
        "(default: stop once the restart's verdict is shown)",
    )
    demo_parser.add_argument(
        "--name", help="the stand-in container's name (default azwatch-demo-<random>)"
    )


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment with every flag given on the command line laid over it.

    A flag given both before and after the subcommand takes the value after it.
    """
    merged = dict(environ)
    for setting in SETTINGS:
        value = getattr(args, setting.variable, None)
        if value is not None:
            merged[setting.variable] = value
    return merged


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    settings = settings_from(args, os.environ if environ is None else environ)
    command = args.command or "run"
    if command == "demo":
        return _run_demo(args, settings)
    named = bool(settings.get("CONTAINER_NAME", "").strip())
    if not _looks_at_containers(command, args) and not (
        settings.get("CONTAINER_NAME", "").strip() or settings.get("CONTAINER_LABEL", "").strip()
    ):
        settings["CONTAINER_NAME"] = _STAND_IN_CONTAINER
    try:
        config = Config.from_env(settings)
    except ConfigError as error:
        for problem in error.problems:
            print(f"azwatch: configuration error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if command == "replay":
        return run_replay(args.file, config, all_decisions=args.all_decisions, out=sys.stdout)
    if command in REMOTE_COMMANDS:
        return _run_remote(command, args, config)
    # The live commands import aiodocker and aiohttp; replay does not need them.
    from azwatch import commands

    if "MONITOR_UID" in settings or "MONITOR_GID" in settings:
        # As root with these set (the image run with --user 0), become that user first.
        switch_failed = commands.drop_privileges(config)
        if switch_failed is not None:
            print(f"azwatch: {switch_failed}", file=sys.stderr)
            return EXIT_BLIND
    configure(config.log_format, config.log_level, sys.stderr if command == "check" else None)
    if command == "check":
        if config.restart_via == "kubelet" and not args.watcher:
            print(
                "azwatch: check looks through Docker, which RESTART_VIA=kubelet has not; ask the "
                "running watcher instead: azwatch check --watcher, or GET /livez",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        if args.watcher:
            return commands.check_watcher(config)
        if args.permissions:
            # inspect and logs look at the named container, if one was named
            return commands.check_permissions(config, config.container_names[0] if named else None)
        return commands.check(config)
    return commands.run(config)


def _looks_at_containers(command: str, args: argparse.Namespace) -> bool:
    """Whether *command* needs CONTAINER_NAME or CONTAINER_LABEL: replay, the commands that
    ask a running watcher, check --watcher (its /healthz) and check --permissions do not."""
    if command == "replay" or command in REMOTE_COMMANDS:
        return False
    return not (command == "check" and (args.watcher or args.permissions))


def _run_remote(command: str, args: argparse.Namespace, config: Config) -> int:
    from azwatch import remote  # imports aiohttp, which replay does not need

    if command == "status":
        return remote.status(
            config, url=args.url, as_json=args.as_json, timeout=args.timeout, out=sys.stdout
        )
    if command == "pause":
        return remote.pause(
            config,
            args.name,
            url=args.url,
            duration=args.duration,
            reason=args.reason,
            timeout=args.timeout,
            out=sys.stdout,
        )
    return remote.resume(config, args.name, url=args.url, timeout=args.timeout, out=sys.stdout)


def _run_demo(args: argparse.Namespace, settings: Mapping[str, str]) -> int:
    from azwatch import demo  # imports aiodocker and aiohttp

    if not 0 <= args.port <= 65535 or (args.duration is not None and args.duration <= 0):
        print("azwatch demo: --port must be 0-65535 and --duration above 0", file=sys.stderr)
        return EXIT_CONFIG
    options = demo.DemoOptions(
        image=args.image,
        port=args.port,
        duration=args.duration,
        name=args.name,
        docker_host=settings.get("DOCKER_HOST", "").strip() or None,
    )
    return demo.run(options)


class _OutputFailed(Exception):
    """Writing the decisions failed; *error* says why (not the scenario's fault)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def run_replay(path: str, config: Config, *, all_decisions: bool, out: TextIO) -> int:
    """Validate the scenario at *path* whole, then replay it, printing JSON Lines to *out*.

    When the reader of *out* goes away (``azwatch replay FILE | head -1``) it ends quietly
    with :data:`EXIT_PIPE_CLOSED`, as a filter killed by SIGPIPE would.
    """
    try:
        if path == "-":
            lines = sys.stdin.readlines()
            for _ in read_records(lines):
                pass
            records = read_records(lines)
        else:
            for _ in read_records(_lines_of(path)):
                pass
            records = read_records(_lines_of(path))
        for decision in replay(records, config, all_decisions=all_decisions):
            with _writing():
                out.write(json.dumps(decision, ensure_ascii=False) + "\n")
        with _writing():
            out.flush()  # a closed pipe may only show when the last of the buffer goes out
    except ScenarioError as error:
        print(f"azwatch: {path}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except _OutputFailed as failure:
        if isinstance(failure.error, BrokenPipeError):
            _discard_buffered(out)
            return EXIT_PIPE_CLOSED
        print(f"azwatch: cannot write the decisions: {failure.error}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as error:
        print(f"azwatch: cannot read {path}: {error.strerror or error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


@contextmanager
def _writing() -> Iterator[None]:
    """Around a write of the decisions: an OSError there is not a read error of the scenario."""
    try:
        yield
    except OSError as error:
        raise _OutputFailed(error) from error


def _discard_buffered(out: TextIO) -> None:
    """Point *out*'s descriptor at /dev/null: what is still buffered is flushed at exit, and
    into the closed pipe that would fail again ("Exception ignored ... BrokenPipeError")."""
    try:
        descriptor = out.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture): nothing is flushed
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


def _lines_of(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as scenario:
        yield from scenario
