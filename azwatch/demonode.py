"""The stand-in node of ``azwatch demo``: a scripted aleph-node life, printed as the node prints it.

Run as the demo container's command (``python -m azwatch.demonode``, from the azwatch image
itself), it writes to stderr, line for line in aleph-node's detailed docker format, the life
of a node that goes wrong:

* **first run**: the start-up banner, a major sync that catches up with the chain, some
  time in sync, then a **stall**: it loses its peers and imports nothing more, while its
  20 s status lines (scaled down here) keep coming with the same numbers;
* **every later run** (after ``docker restart``, which keeps the container's writable
  layer and so :data:`MEMORY_FILE`): the banner again, a short major sync from where it
  stalled, then in sync for good. So a restart helps.

Both the stand-in and the demo's reference head (:mod:`azwatch.demohead`) derive the chain's
height from the wall clock (:class:`Chain`: one block a second since an epoch the demo
chooses), so the node's best and the network head agree while it is in sync; the container
and the host share the kernel's clock.

The script itself (:class:`StandIn`) is pure and takes the wall time as an argument; only
:func:`main` sleeps, writes and handles SIGTERM. It uses the standard library alone, so it
starts at once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Final

#: Where a run leaves what the next run of the same container needs (its best, how many
#: runs came before); ``DEMONODE_MEMORY`` names another file. ``/tmp`` is writable by the
#: image's user and lives in the container's writable layer, which ``docker restart`` keeps
#: and ``docker rm`` removes.
MEMORY_FILE: Final = Path("/tmp/azwatch-demonode")

#: The chain's short genesis hash as the node prints it (Aleph Zero mainnet's).
GENESIS_SHORT: Final = "0x7025…344e"
#: Mainnet's full genesis hash, which the reference answers to ``chain_getBlockHash(0)``.
GENESIS: Final = "0x70255b4d28de0fc4e1a193d7e175ad1ccef431598211c55538f1018651a0344e"

#: Blocks of a session (``Running session N.`` with N = block / 900).
SESSION_BLOCKS: Final = 900
VERSION: Final = "15.2.0-36ed9faa3fd"
WORKER: Final = "tokio-runtime-worker"


@dataclass(frozen=True, slots=True)
class Chain:
    """The scripted chain: block *base* at Unix time *epoch*, then one block a second."""

    epoch: float
    base: int

    def height(self, wall: float) -> int:
        """The chain's head at Unix time *wall*."""
        return self.base + max(0, int(wall - self.epoch))


@dataclass(frozen=True, slots=True)
class Script:
    """The shape of the stand-in's life (seconds and blocks)."""

    #: Blocks behind the chain at the first start.
    behind: int = 150
    #: Blocks a second imported while in major sync.
    sync_rate: float = 40.0
    #: Seconds in sync before the first run stalls.
    in_sync_for: float = 20.0
    #: Seconds between status reports (the node's 20 s, scaled for the demo).
    status_every: float = 4.0
    #: Peers while healthy.
    peers: int = 24


@dataclass(frozen=True, slots=True)
class Memory:
    """What a run leaves for the next one: how many runs came before, and the best block."""

    runs: int = 0
    best: int | None = None

    def text(self) -> str:
        return f"runs={self.runs}\nbest={'' if self.best is None else self.best}\n"

    @classmethod
    def parse(cls, text: str) -> Memory:
        """The memory a run wrote; a missing or garbled file is no memory (a first run)."""
        pairs = dict(line.partition("=")[::2] for line in text.splitlines())
        try:
            runs = int(pairs.get("runs", "0"))
            best = int(pairs["best"]) if pairs.get("best") else None
        except ValueError:
            return cls()
        return cls(runs, best)


@dataclass(frozen=True, slots=True)
class Line:
    """One log record: Unix time, level (``INFO``, ``WARN``), thread, target, message."""

    wall: float
    level: str
    thread: str
    target: str
    message: str


class Phase(Enum):
    MAJOR_SYNC = "major sync"
    IN_SYNC = "in sync"
    STALLED = "stalled"


def short_hash(number: int, salt: str = "block") -> str:
    """Block *number*'s hash in the node's short Display form, ``0xabcd…ef12``."""
    digest = hashlib.sha256(f"{salt}:{number}".encode()).hexdigest()
    return f"0x{digest[:4]}…{digest[-4:]}"


@dataclass
class StandIn:
    """One run of the stand-in node; :meth:`start` and then :meth:`step` give its lines."""

    chain: Chain
    script: Script
    memory: Memory
    started: float
    best: int = 0
    #: The best block this run started from.
    start_best: int = 0
    phase: Phase = Phase.MAJOR_SYNC
    #: When the node caught up with the chain (``None`` before).
    caught_up_at: float | None = None
    last_status: float = 0.0
    session: int = 0
    _lines: list[Line] = field(default_factory=list)

    @property
    def first_run(self) -> bool:
        return self.memory.runs == 0

    @property
    def peers(self) -> int:
        return 0 if self.phase is Phase.STALLED else self.script.peers

    def remembered(self) -> Memory:
        """What this run leaves for the next."""
        return Memory(self.memory.runs + 1, self.best)

    def start(self) -> list[Line]:
        """The start-up: banner, the best block on disk, major sync, the first reports."""
        now = self.started
        if self.memory.best is not None:
            self.start_best = self.memory.best
        else:
            self.start_best = max(0, self.chain.height(now) - self.script.behind)
        self.best = self.start_best
        self.session = self.best // SESSION_BLOCKS
        year = datetime.fromtimestamp(now, UTC).year
        banner = (
            "Aleph Node",
            f"✌️  version {VERSION}",
            f"❤️  by Cardinal:Aleph Zero Foundation, 2021-{year}",
            "📋 Chain specification: Aleph Zero",
            "🏷  Node name: azwatch-demo",
            "👤 Role: AUTHORITY",
            "💾 Database: RocksDb at /data/chains/mainnet/db/full",
        )
        for message in banner:
            self._say(now, "main", "sc_cli::runner", message)
        self._say(
            now,
            "main",
            "sc_service::config",
            'Using default protocol ID "sup" because none is configured in the chain specs',
            level="WARN",
        )
        self._say(now, "main", "sc_service::builder", f"📦 Highest known block at #{self.best}")
        self._say(
            now,
            "main",
            "sc_rpc_server",
            'Running JSON-RPC server: addr=0.0.0.0:9944, allowed origins=["*"]',
        )
        self._say(now, WORKER, "aleph-block-sync", "Switched to major sync state.")
        self._status(now)
        self._say(now, WORKER, "aleph-party", f"Running session {self.session}.")
        return self._take()

    def step(self, now: float) -> list[Line]:
        """The lines of the time since the last step, up to Unix time *now*."""
        if self.phase is Phase.MAJOR_SYNC:
            elapsed = max(0.0, now - self.started)
            target = min(
                self.chain.height(now),
                self.start_best + int(elapsed * self.script.sync_rate),
            )
            self._import_up_to(target, now)
            if self.best >= self.chain.height(now):
                self.phase, self.caught_up_at = Phase.IN_SYNC, now
                self._say(now, WORKER, "aleph-block-sync", "No longer in major sync state.")
        elif self.phase is Phase.IN_SYNC:
            assert self.caught_up_at is not None
            if self.first_run and now >= self.caught_up_at + self.script.in_sync_for:
                self.phase = Phase.STALLED
                self._say(
                    now,
                    WORKER,
                    "telemetry",
                    "❌ Error while dialing /dns/telemetry.polkadot.io/tcp/443/x-parity-wss/"
                    "%2Fsubmit%2F: Custom { kind: Other, error: Timeout }",
                    level="WARN",
                )
            else:
                self._import_up_to(self.chain.height(now), now)
        if now - self.last_status >= self.script.status_every:
            self._status(now)
        return self._take()

    def _import_up_to(self, target: int, now: float) -> None:
        for number in range(self.best + 1, target + 1):
            self._say(now, WORKER, "substrate", f"✨ Imported #{number} ({short_hash(number)})")
            if number // SESSION_BLOCKS != self.session:
                self.session = number // SESSION_BLOCKS
                self._say(now, WORKER, "aleph-party", f"Running session {self.session}.")
        self.best = max(self.best, target)

    def _status(self, now: float) -> None:
        """The 20 s reports: peers on both protocols, the validator network, block sync."""
        self.last_status = now
        for protocol in ("sync", "auth"):
            self._say(
                now,
                WORKER,
                "aleph-network",
                f"Network status report: /{GENESIS_SHORT}/{protocol}/0 connected peers - "
                f"{self.peers}; ",
            )
        self._say(
            now,
            WORKER,
            "network-clique",
            "Clique Network status: not maintaining any connections; ",
        )
        best, finalized = self.best, max(0, self.best - 2)
        self._say(
            now,
            WORKER,
            "aleph-block-sync",
            f"Imported: #{best} ({short_hash(best)}), finalized: #{finalized} "
            f"({short_hash(finalized)}), favourite: #{best} ({short_hash(best)}).",
        )

    def _say(self, now: float, thread: str, target: str, message: str, level: str = "INFO") -> None:
        self._lines.append(Line(now, level, thread, target, message))

    def _take(self) -> list[Line]:
        lines, self._lines = self._lines, []
        return lines


class Renderer:
    """Lines as aleph-node's detailed output prints them (``--detailed-log-output``).

    ``2025-03-21 13:15:14.121  INFO tokio-runtime-worker aleph-block-sync: message    ``: the
    container's time (UTC) to the millisecond, the level in five columns, the thread name
    right-aligned to the longest one printed so far, the target, and the four trailing spaces
    every line of the node's ``log`` crate ends with.
    """

    def __init__(self) -> None:
        self._thread_width = 0

    def render(self, line: Line) -> str:
        self._thread_width = max(self._thread_width, len(line.thread))
        stamp = datetime.fromtimestamp(line.wall, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return (
            f"{stamp} {line.level:>5} {line.thread:>{self._thread_width}} "
            f"{line.target}: {line.message}    "
        )


# --- the container's process ------------------------------------------------------------------

#: Seconds between steps: imports in major sync come in small bursts, as the node's do.
STEP_SECONDS: Final = 0.2
#: A stand-in left behind stops by itself after this long (the demo removes it long before).
LIFETIME_SECONDS: Final = 3600.0


class _Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw else default


def script_from_env() -> tuple[Chain, Script]:
    """The chain and script the demo passed in ``DEMONODE_*`` variables."""
    chain = Chain(
        epoch=_float_env("DEMONODE_EPOCH", time.time()),
        base=int(_float_env("DEMONODE_BASE", 105_500_000)),
    )
    defaults = Script()
    script = Script(
        behind=int(_float_env("DEMONODE_BEHIND", defaults.behind)),
        sync_rate=_float_env("DEMONODE_SYNC_RATE", defaults.sync_rate),
        in_sync_for=_float_env("DEMONODE_IN_SYNC_FOR", defaults.in_sync_for),
        status_every=_float_env("DEMONODE_STATUS_EVERY", defaults.status_every),
    )
    return chain, script


def _recall(path: Path) -> Memory:
    try:
        return Memory.parse(path.read_text(encoding="utf-8"))
    except OSError:
        return Memory()


def _remember(path: Path, memory: Memory) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(memory.text(), encoding="utf-8")
    tmp.replace(path)


def main() -> int:
    """Print the scripted life until SIGTERM (``docker restart``/``stop``), then exit 0."""
    signal.signal(signal.SIGTERM, _stop)  # as PID 1 nothing else would end it
    signal.signal(signal.SIGINT, _stop)
    chain, script = script_from_env()
    memory_file = Path(os.environ.get("DEMONODE_MEMORY") or MEMORY_FILE)
    memory = _recall(memory_file)
    node = StandIn(chain, script, memory, started=time.time())
    renderer = Renderer()
    out = sys.stderr  # the node logs to stderr
    remembered: Memory | None = None
    try:
        lines = node.start()
        while True:
            for line in lines:
                out.write(renderer.render(line) + "\n")
            out.flush()
            if node.remembered() != remembered:
                remembered = node.remembered()
                _remember(memory_file, remembered)
            if time.time() - node.started > LIFETIME_SECONDS:
                return 0
            time.sleep(STEP_SECONDS)
            lines = node.step(time.time())
    except _Stop:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
