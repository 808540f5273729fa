"""The documentation holds together in a clone: every relative link and image in README.md
and docs/*.md leads to a file or folder of the repository (an anchor, to a heading of
the page it names), and no tracked file points at the folder beside the repository where
the contract lived before docs/CONTRACT.md."""

import subprocess
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin

from harness import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OUTSIDE = "../" + "shared"  # spelled in two parts so that this file does not mention it
NOT_CHECKED = (".ci/",)  # the CI's own files, which may reach outside on purpose

# GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered.
markdown = MarkdownIt("commonmark").enable("table").use(anchors_plugin, max_level=6)


@dataclass(frozen=True)
class Link:
    line: int  # 1-based, of the block the link is in
    target: str


def git_files(*options: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", *options], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def repository_paths() -> frozenset[str]:
    """Files a clone has (tracked, or new and not ignored) and the folders holding them."""
    files = git_files("--cached", "--others", "--exclude-standard")
    folders = {str(parent) for name in files for parent in Path(name).parents if str(parent) != "."}
    return frozenset(files) | folders


def links_of(text: str) -> list[Link]:
    """Every link and image target of a markdown text, reference-style ones resolved."""
    found = []
    for block in markdown.parse(text):
        for token in block.children or ():
            target = token.attrGet("href") if token.type == "link_open" else token.attrGet("src")
            if token.type in ("link_open", "image") and target is not None:
                found.append(Link(block.map[0] + 1 if block.map else 0, str(target)))
    return found


def heading_ids(text: str) -> set[str]:
    return {str(token.attrGet("id")) for token in markdown.parse(text) if token.type == "heading_open"}


def is_external(target: str) -> bool:
    parts = urlsplit(target)
    return bool(parts.scheme or parts.netloc)


def broken_links(doc: Path, root: Path, paths: frozenset[str]) -> list[str]:
    """What is wrong with each relative link of `doc`, one line each; [] when nothing is."""
    problems, root, doc = [], root.resolve(), doc.resolve()
    for link in links_of(doc.read_text(encoding="utf-8")):
        if is_external(link.target):
            continue
        path, _, anchor = link.target.partition("#")
        target = (doc.parent / unquote(path)).resolve() if path else doc
        where = f"{doc.relative_to(root)}:{link.line}: {link.target}"
        if not target.is_relative_to(root):
            problems.append(f"{where} leads outside the repository")
        elif target != root and str(target.relative_to(root)) not in paths:
            problems.append(f"{where} is not a file or folder of the repository")
        elif anchor and target.suffix == ".md" and unquote(anchor) not in heading_ids(target.read_text()):
            problems.append(f"{where} names no heading of {target.relative_to(root)}")
    return problems


# --- the repository's documents ----------------------------------------------------------------


@pytest.fixture(scope="module")
def paths() -> frozenset[str]:
    return repository_paths()


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_relative_link_leads_to_the_repository(doc, paths):
    assert links_of(doc.read_text(encoding="utf-8")), f"{doc.name} has no links: nothing was checked"
    assert broken_links(doc, ROOT, paths) == []


def test_no_tracked_file_points_outside_at_the_old_contract():
    mentions = [
        name
        for name in git_files()
        if not name.startswith(NOT_CHECKED)
        and (ROOT / name).is_file()
        and OUTSIDE.encode() in (ROOT / name).read_bytes()
    ]
    assert mentions == [], f"{OUTSIDE} is not in a clone; the contract is docs/CONTRACT.md"


# --- the checker itself ----------------------------------------------------------------------------


def test_the_checker_finds_each_kind_of_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A `code` heading\n")
    (tmp_path / "chart.png").write_bytes(b"png")
    doc = tmp_path / "README.md"
    doc.write_text(
        dedent(f"""\
        # Top

        [fine](docs/other.md) [fine](docs/other.md#a-code-heading) [fine](#top) [fine](docs/)
        ![fine](chart.png) [fine](https://example.com/x.md) [fine][ref]

        [missing](docs/nothing.md)

        ![missing image](charts/none.png)

        [bad anchor](docs/other.md#no-such-heading)

        [bad own anchor](#bottom)

        [outside]({OUTSIDE}/CONTRACT.md)

        [missing by reference][gone]

        [ref]: docs/other.md#other-page
        [gone]: docs/gone.md
        """)
    )
    paths = frozenset({"README.md", "chart.png", "docs/other.md", "docs"})
    problems = broken_links(doc, tmp_path, paths)
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "docs/nothing.md is not a file or folder of the repository",
        "charts/none.png is not a file or folder of the repository",
        "docs/other.md#no-such-heading names no heading of docs/other.md",
        "#bottom names no heading of README.md",
        f"{OUTSIDE}/CONTRACT.md leads outside the repository",
        "docs/gone.md is not a file or folder of the repository",
    ]
    assert problems[0].startswith("README.md:6: ")
