"""Helpers for the tests of what azwatch ships to install and release it (the systemd unit,
the compose example's env file, the release workflow): running a tool bounded in time,
finding it, and reading an env file strictly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from dockerkit import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tool(name: str, why: str) -> str:
    """*name* from this interpreter's environment (the venv's bin/) or the PATH; skips
    without it, and fails under ``CI=true``."""
    beside = Path(sys.executable).with_name(name)
    path = str(beside) if beside.is_file() else shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed ({why})")
    return path


def env_lines(path: Path) -> dict[str, str]:
    """The active VARIABLE=value lines of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not VARIABLE=value: {line!r}"
        assert key.isidentifier(), f"{path.name}:{number}: {line!r}"
        assert value == value.strip(), f"{path.name}:{number}: spaces around the value"
        assert not value.startswith(("'", '"')), f"{path.name}:{number}: quoted value"
        assert key not in values, f"{path.name}:{number}: {key} set twice"
        values[key] = value
    return values
