"""Write the replay scenarios of tests/scenarios/*.jsonl from a small node simulation.

Run ``python tests/scenarios/generate.py`` after changing a scenario here; the test suite
checks that the committed files match this script's output.

Each scenario is a timeline: the simulated node imports blocks at some rate, prints the lines
aleph-node prints (detailed docker prefix, four trailing spaces), and the reference head moves
at one block per second and is polled every 10 s. While a node imports more than a few blocks
per second, one ``✨ Imported`` line per half second (carrying the latest number) stands for
the hundreds the real node prints: the parser keeps the highest number either way.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).parent
EPOCH = datetime(2025, 3, 21, 13, 0, 0, tzinfo=UTC)
GENESIS_SHORT = "0x7025…344e"
START_BLOCK = 105_499_000


def _short_hash(number: int) -> str:
    digest = f"{(number * 2654435761) % (1 << 32):08x}"
    return f"0x{digest[:4]}…{digest[4:]}"


def _full_hash(number: int, salt: int) -> str:
    return "0x" + f"{(number * 6364136223846793005 + salt) % (1 << 64):016x}" * 4


@dataclass
class Node:
    """A simulated node and reference; ``records`` collects the scenario lines."""

    best: float = START_BLOCK
    head: float = START_BLOCK
    now: float = 0.0
    import_rate: float = 1.0
    head_rate: float = 1.0
    peers: int = 26
    major_sync: bool = False
    producing: bool = False
    rpc_down: bool = False
    status_lines: bool = True
    records: list[dict[str, object]] = field(default_factory=list)

    def log(
        self,
        message: str,
        target: str = "substrate",
        thread: str = "tokio-runtime-worker",
        level: str = " INFO",
    ) -> None:
        stamp = EPOCH + timedelta(seconds=self.now)
        prefix = stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"
        self.records.append(
            {"at": round(self.now, 3), "log": f"{prefix} {level} {thread} {target}: {message}    "}
        )

    def start(self) -> None:
        """A new run: the start record and the node's start-up lines."""
        self.records.append({"at": round(self.now, 3), "start": True})
        best = int(self.best)
        self.log("Aleph Node", "sc_cli::runner", "main")
        self.log("✌️  version 15.1.0-f2a00c1dbd3", "sc_cli::runner", "                main")
        self.log(
            f"📦 Highest known block at #{best}", "sc_service::builder", "                main"
        )
        self.log("Switched to major sync state.", "aleph-block-sync")
        self.major_sync = True
        self.log(f"Running session {best // 900}.", "aleph-party")

    def set_major_sync(self, active: bool) -> None:
        if active != self.major_sync:
            self.major_sync = active
            text = "Switched to major sync state." if active else "No longer in major sync state."
            self.log(text, "aleph-block-sync")

    def run_for(self, seconds: float, step: float = 0.5) -> None:
        """Advance time, printing what the node prints and polling the head every 10 s."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + step, 3)
            before = int(self.best)
            self.best += self.import_rate * step
            self.head += self.head_rate * step
            after = int(self.best)
            if after > before:
                first = after if self.import_rate > 4 else before + 1
                for number in range(first, after + 1):
                    if number % 900 == 0:
                        self.log(f"Running session {number // 900}.", "aleph-party")
                    if self.producing and number % 8 == 0:
                        self._produce(number)
                    self.log(f"✨ Imported #{number} ({_short_hash(number)})")
            if _every(self.now, step, 20):
                self._status()
            if _every(self.now - 0.3, step, 10):
                if self.rpc_down:
                    self.records.append(
                        {"at": round(self.now, 3), "head_error": "connection refused"}
                    )
                else:
                    self.records.append({"at": round(self.now, 3), "head": int(self.head)})

    def _status(self) -> None:
        for protocol in ("sync", "auth"):
            self.log(
                f"Network status report: /{GENESIS_SHORT}/{protocol}/0 connected peers - "
                f"{self.peers}; ",
                "aleph-network",
            )
        if self.status_lines:
            best = int(self.best)
            self.log(
                f"Imported: #{best} ({_short_hash(best)}), finalized: #{best - 2} "
                f"({_short_hash(best - 2)}), favourite: #{best} ({_short_hash(best)}).",
                "aleph-block-sync",
            )

    def _produce(self, number: int) -> None:
        prepared = _full_hash(number, 1)
        sealed = _full_hash(number, 2)
        self.log(
            f"🎁 Prepared block for proposing at {number} (3 ms) [hash: {prepared}; "
            f"parent_hash: {_short_hash(number - 1)}; extrinsics (1): [0x9540…df7e]",
            "sc_basic_authorship::basic_authorship",
        )
        self.log(
            f"🔖 Pre-sealed block for proposal at {number}. Hash now {sealed}, previously "
            f"{prepared}.",
            "aleph",
        )


def _every(now: float, step: float, period: float) -> bool:
    """True once per *period*: on the step that crosses a multiple of it."""
    return math.floor(now / period) != math.floor((now - step) / period)


def healthy() -> Node:
    """A synced node for an hour: no restart."""
    node = Node()
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.run_for(3600 - 15)
    return node


def severe_lag() -> Node:
    """The node stops importing a minute after start; the head moves on: restart at 300 s."""
    node = Node()
    node.start()
    node.run_for(60)
    node.import_rate = 0
    node.run_for(400)
    return node


def catching_up() -> Node:
    """Started 20000 blocks behind, importing 40 blocks/s in major sync: the guard holds."""
    node = Node(best=START_BLOCK - 20_000)
    node.start()
    node.import_rate = 40
    node.run_for(480)
    return node


def stall_no_peers() -> Node:
    """Peers drop to 0 at 380 s and imports stop at 400 s: a stall restart at 580 s."""
    node = Node()
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.run_for(365)
    node.peers = 0
    node.run_for(20)
    node.import_rate = 0
    node.run_for(300)
    return node


def chain_halted() -> Node:
    """Imports stop at 400 s because the whole chain halted: the head stops too."""
    node = Node()
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.run_for(385)
    node.import_rate = 0
    node.head_rate = 0
    node.run_for(1200)
    return node


def falling_behind() -> Node:
    """Imports at 0.7 blocks/s against 1 block/s: the lag rises 0.3 blocks/s."""
    node = Node()
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.import_rate = 0.7
    node.run_for(35)  # lag passes 15 blocks: the node switches to major sync
    node.set_major_sync(True)
    node.run_for(350)
    return node


def moderate_lag() -> Node:
    """A node 50 blocks behind at chain speed, out of major sync, not producing."""
    node = Node(best=START_BLOCK - 50)
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.run_for(400)
    return node


def moderate_lag_producing() -> Node:
    """The same lag on a committee validator producing its blocks: no restart."""
    node = Node(best=START_BLOCK - 50, producing=True)
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.run_for(1200)
    return node


def rpc_down() -> Node:
    """The reference is down for ten minutes while the node stalls and then catches up."""
    node = Node()
    node.start()
    node.run_for(15)
    node.set_major_sync(False)
    node.run_for(385)
    node.rpc_down = True
    node.import_rate = 0
    node.run_for(300)
    node.import_rate = 3  # 300 blocks behind, closing 2 blocks/s: caught up after 150 s
    node.run_for(150)
    node.import_rate = 1
    node.run_for(150)
    node.rpc_down = False
    node.run_for(600)
    return node


def stuck_forever() -> Node:
    """A node that stays stuck whatever is done: the back-off stretches the cooldown."""
    node = Node(import_rate=0)
    node.start()
    node.run_for(2000)
    return node


def recovers() -> Node:
    """Stuck (two restarts do not help), then healthy for a long time, then stuck again."""
    node = Node(import_rate=0)
    node.start()
    node.run_for(230)
    node.import_rate = 24  # the third run closes its 230-block gap in 10 s and stays in sync
    node.run_for(10)
    node.import_rate = 1
    node.set_major_sync(False)
    node.run_for(660)
    node.import_rate = 0
    node.run_for(400)
    return node


SCENARIOS = {
    "healthy": healthy,
    "severe_lag": severe_lag,
    "catching_up": catching_up,
    "stall_no_peers": stall_no_peers,
    "chain_halted": chain_halted,
    "falling_behind": falling_behind,
    "moderate_lag": moderate_lag,
    "moderate_lag_producing": moderate_lag_producing,
    "rpc_down": rpc_down,
    "stuck_forever": stuck_forever,
    "recovers": recovers,
}


def render(name: str) -> str:
    """The JSON Lines text of scenario *name*."""
    node = SCENARIOS[name]()
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in node.records)


def main() -> int:
    for name in SCENARIOS:
        (HERE / f"{name}.jsonl").write_text(render(name), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
