"""The README and the docs/ pages stay true: their links lead somewhere, the README links every
page, and what the pages say about the code (the replay example, the original tool's settings,
the metrics, the module list) is what the code does.

The README's settings table is held to the declared settings by tests/test_examples.py.
"""

from __future__ import annotations

import ast
import itertools
import re
import shlex
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from prometheus_client.core import CounterMetricFamily

from azwatch.cli import main
from azwatch.config import SETTINGS
from azwatch.metrics import SnapshotCollector
from azwatch.snapshot import HeadView, Snapshot

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = (README, *sorted(DOCS.glob("*.md")))

#: Past this the README stops being a front page; move the detail into a docs/ page.
README_MAX_LINES = 250

#: The original tool's settings (k3vmcd/alephzero-container-monitor), kept with their names.
ORIGINAL_SETTINGS = (
    "CONTAINER_NAME",
    "RPC_URL",
    "CHECK_INTERVAL",
    "BLOCK_LAG_20",
    "BLOCK_LAG_100",
    "MONITOR_UID",
    "MONITOR_GID",
)

#: What the pure core never imports (docs/development.md).
SHELL_LIBRARIES = frozenset({"asyncio", "anyio", "aiohttp", "aiodocker"})

_MARKDOWN = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True, slots=True)
class Link:
    page: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {self.target}"


def _tokens(page: Path) -> list[Token]:
    return _MARKDOWN.parse(page.read_text(encoding="utf-8"))


def _inline_text(token: Token) -> str:
    """A heading's text as GitHub slugs it: the characters shown, markup left out."""
    return "".join(
        child.content for child in token.children or () if child.type in {"text", "code_inline"}
    )


def github_slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation and symbols dropped, spaces to '-'."""
    kept = (
        char
        for char in text.lower()
        if char in " -" or unicodedata.category(char)[0] in "LMN" or char == "_"
    )
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of *page*; a repeated slug gets -1, -2, … as on GitHub."""
    tokens = _tokens(page)
    seen: dict[str, int] = {}
    found: set[str] = set()
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open":
            continue
        slug = github_slug(_inline_text(inline))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> Iterator[Link]:
    """Every link of *page* (code spans and fenced blocks are not links)."""
    for token in _tokens(page):
        for child in token.children or ():
            if child.type == "link_open":
                line = token.map[0] + 1 if token.map else 0
                yield Link(page, line, str(child.attrs["href"]))


def relative_links() -> list[Link]:
    return [
        link
        for page in PAGES
        for link in links(page)
        if not re.match(r"[a-z][a-z0-9+.-]*:", link.target, re.IGNORECASE)
    ]


def _fenced_blocks(page: Path) -> list[Token]:
    return [token for token in _tokens(page) if token.type == "fence"]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("`azwatch check --permissions`", "azwatch-check---permissions"),
        ("The socket's group", "the-sockets-group"),
        ("Did it help?", "did-it-help"),
        ("Set-up: two commands", "set-up-two-commands"),
        ("🎁 Prepared blocks", "-prepared-blocks"),
        ("AzwatchNodeLagging (warning)", "azwatchnodelagging-warning"),
        ("snake_case and Ünïcode", "snake_case-and-ünïcode"),
    ],
)
def test_github_slug_follows_githubs_rule(heading: str, anchor: str) -> None:
    assert github_slug(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Time\n\n## Time\n\n```\n# Time\n```\n\n### Time\n", encoding="utf-8")
    assert anchors(page) == {"time", "time-1", "time-2"}


def test_links_skip_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[a](a.md) `[b](b.md)`\n\n```\n[c](c.md)\n```\n\n| x |\n|---|\n| [d](d.md#e) |\n",
        encoding="utf-8",
    )
    assert [link.target for link in links(page)] == ["a.md", "d.md#e"]


def test_every_relative_link_leads_to_a_file_and_heading() -> None:
    broken: list[str] = []
    checked = relative_links()
    for link in checked:
        path, _, anchor = link.target.partition("#")
        target = (link.page.parent / path).resolve() if path else link.page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and (target.suffix != ".md" or anchor not in anchors(target)):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert broken == []
    assert len(checked) > 20, "the pages lost their links"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (ROOT / link.target.partition("#")[0]).resolve()
        for link in links(README)
        if link.target.startswith("docs/")
    }
    unlinked = [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked]
    assert unlinked == []


def test_the_readme_stays_a_front_page() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


def test_the_replay_page_shows_what_replay_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/replay.md's example is the real output of the sample scenario."""
    (example,) = [
        block.content
        for block in _fenced_blocks(DOCS / "replay.md")
        if block.content.startswith("$ azwatch replay ")
    ]
    command, *shown = example.splitlines()
    arguments = shlex.split(command.removeprefix("$ azwatch "))
    arguments = [str(ROOT / word) if word.startswith("examples/") else word for word in arguments]
    assert main(arguments, environ={}) == 0
    assert capsys.readouterr().out.splitlines() == shown


def test_the_migration_page_runs_the_original_command_with_the_defaults() -> None:
    """docs/migrating.md's `docker run` sets each of the original tool's settings, each to
    the value azwatch takes by default (the container's name aside), and names every one of
    them in its table of promises."""
    page = DOCS / "migrating.md"
    (command,) = [
        block.content for block in _fenced_blocks(page) if block.content.startswith("docker run")
    ]
    words = shlex.split(command.replace("\\\n", " "))
    given = dict(word.split("=", 1) for flag, word in itertools.pairwise(words) if flag == "-e")
    assert tuple(given) == ORIGINAL_SETTINGS
    defaults = {item.variable: item.shown_default for item in SETTINGS}
    for variable, value in given.items():
        if variable != "CONTAINER_NAME":
            assert value == defaults[variable], variable
    text = page.read_text(encoding="utf-8")
    assert all(f"`{variable}`" in text for variable in ORIGINAL_SETTINGS)


def _table_cells(page: Path, heading: str) -> list[str]:
    """The first cell of each body row of the first table under *heading*."""
    tokens = _tokens(page)
    start = next(
        index
        for index, (opening, inline) in enumerate(itertools.pairwise(tokens))
        if opening.type == "heading_open" and _inline_text(inline) == heading
    )
    cells: list[str] = []
    in_body = False
    for index in range(start, len(tokens)):
        kind = tokens[index].type
        if kind == "table_close":
            break
        in_body = in_body or kind == "tbody_open"
        if in_body and kind == "tr_open":
            cells.append(_inline_text(tokens[index + 2]))  # tr_open, td_open, the cell
    return cells


def test_the_prometheus_page_lists_every_metric() -> None:
    """docs/prometheus.md's table of metrics is what /metrics exports, no more, no less."""
    empty = Snapshot(time=0.0, dry_run=False, head=HeadView(None, None), containers=(), problems=())
    exported = {
        family.name + ("_total" if isinstance(family, CounterMetricFamily) else "")
        for family in SnapshotCollector(lambda: empty).collect()
    }
    listed = {cell.split("{")[0] for cell in _table_cells(DOCS / "prometheus.md", "The metrics")}
    assert listed == exported


def _module_lines() -> dict[str, str]:
    """docs/development.md's module list: module file → its description."""
    (layout,) = [
        block.content
        for block in _fenced_blocks(DOCS / "development.md")
        if block.content.startswith("azwatch/")
    ]
    described: dict[str, str] = {}
    for line in layout.splitlines():
        entry = re.fullmatch(r"  (\w+\.py(?:, \w+\.py)*)\s+(.*)", line)
        if entry:
            for name in entry[1].split(", "):
                described[name] = entry[2]
    return described


def _imports(module: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    return imported


def test_the_development_page_names_every_module_and_the_pure_ones_are() -> None:
    """Every module of the package is in docs/development.md's list; one marked pure imports
    no I/O library and only other pure modules of the package."""
    described = _module_lines()
    package = ROOT / "azwatch"
    modules = {path.name for path in package.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert set(described) == modules
    pure = {
        name.removesuffix(".py") for name, text in described.items() if text.startswith("pure:")
    }
    assert {"state", "policy", "supervisor", "snapshot", "effects"} <= pure
    impure: list[str] = []
    for name in sorted(pure):
        for imported in _imports(package / f"{name}.py"):
            top = imported.split(".")[0]
            inner = imported.removeprefix("azwatch.") if top == "azwatch" else None
            if top in SHELL_LIBRARIES or (inner is not None and inner not in pure | {"azwatch"}):
                impure.append(f"{name}.py imports {imported}")
    assert impure == []
