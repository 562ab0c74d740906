"""Types of the optional C extension (see azwatch/_speedups.c)."""

from azwatch.events import LogEvent

def scan_block(block: str, classes: tuple[type, ...], /) -> tuple[list[str | LogEvent], int]: ...
