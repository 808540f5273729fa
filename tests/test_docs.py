"""The documentation holds together in a clone: every relative link and image in README.md
and docs/*.md leads to a file or folder of the repository (an anchor, to a heading of
the page it names), every page of docs/ is linked from the README, what the documents name
in code (a path, a `make` target, a module run with `python -m` or `uvicorn`) is there, and
no tracked file points at the folder beside the repository where the contract lived before
docs/CONTRACT.md."""

import importlib.util
import re
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


def pages_not_linked(readme: Path, pages: list[Path]) -> list[str]:
    """The pages no relative link of `readme` leads to (an anchor into a page counts)."""
    linked = {
        (readme.parent / unquote(link.target.partition("#")[0])).resolve()
        for link in links_of(readme.read_text(encoding="utf-8"))
        if not is_external(link.target)
    }
    return [str(page.relative_to(readme.parent)) for page in pages if page.resolve() not in linked]


# --- what the documents name in code ---------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    line: int  # 1-based: of a fenced block's line, or of the block a code span is in
    text: str


def code_of(text: str) -> list[Code]:
    """Every code span of a markdown text, and every line of its fenced blocks."""
    found = []
    for block in markdown.parse(text):
        start = block.map[0] + 1 if block.map else 0
        if block.type == "fence":
            found += [Code(start + 1 + n, line) for n, line in enumerate(block.content.splitlines())]
        found += [Code(start, token.content) for token in block.children or () if token.type == "code_inline"]
    return found


# Not names: placeholders (results/<run>), globs, variables, assignments, URLs.
PLACEHOLDER = re.compile(r"[<>*{}$=]|://")
AROUND_A_NAME = "()[],;:`'\""
SOURCE_SUFFIXES = (".py", ".sql")


def is_repository_name(word: str, top: frozenset[str]) -> bool:
    """A word with a slash that starts at a top-level entry of the repository, or names a
    source file; hidden folders (.venv/, .bench-cache/) and absolute paths (/stats) are not."""
    if PLACEHOLDER.search(word) or word.startswith((".", "/")) or "/" not in word:
        return False
    return word.split("/")[0] in top or word.endswith(SOURCE_SUFFIXES)


def named_paths(code: Code, top: frozenset[str]) -> list[str]:
    """The repository paths a line of code names, and each bare file name listed after one
    with a comma (`rig/postgres.py, redis_cluster.py`), taken in that one's folder."""
    names: list[str] = []
    listing = None  # the folder of the path before, when a comma followed it
    for word in code.text.split():
        name = word.strip(AROUND_A_NAME)
        if listing and "/" not in name and "." in name and not PLACEHOLDER.search(name):
            name = f"{listing}/{name}"
        elif not is_repository_name(name, top):
            listing = None
            continue
        names.append(name.rstrip("/"))
        listing = str(Path(name).parent) if word.endswith(",") else None
    return names


# `make` and what follows it up to the first variable, option, comment or punctuation.
MAKE_COMMAND = re.compile(r"(?:^|[\s;&|(])make((?:[ \t]+[^\s=#;&|(),:-][^\s=#;&|(),:]*(?=[\s#;&|),:]|$))+)")
MODULE_RUN = re.compile(r"(?:\bpython3?\s+-m|\buvicorn)\s+([\w.]+)")


def named_make_targets(code: Code) -> list[str]:
    return [target for command in MAKE_COMMAND.finditer(code.text) for target in command.group(1).split()]


def make_targets(makefile: str) -> frozenset[str]:
    """The targets of a Makefile's rules, its simple variables ($(VENV)) expanded."""
    variables = dict(re.findall(r"^(\w+)\s*[?:]?=\s*(.*?)\s*$", makefile, re.MULTILINE))
    rules = re.findall(r"^([^\s#=][^:=\n]*):(?!=)", makefile, re.MULTILINE)
    expanded = (
        re.sub(r"\$\((\w+)\)", lambda v: variables.get(v.group(1), v.group(0)), rule) for rule in rules
    )
    return frozenset(target for rule in expanded for target in rule.split())


def is_runnable_module(module: str, paths: frozenset[str]) -> bool:
    """A module of the repository (`python -m bench`, `uvicorn approach1:app`) is a file of it;
    any other (`python -m venv`, `python -m locust`) is one Python can find."""
    top, file = module.split(".")[0], module.replace(".", "/")
    if top in paths or f"{top}.py" in paths:
        return f"{file}.py" in paths or f"{file}/__main__.py" in paths
    return importlib.util.find_spec(top) is not None


def unknown_names(doc: Path, root: Path, paths: frozenset[str], targets: frozenset[str]) -> list[str]:
    """What `doc` names in code and is not there, one line each; [] when everything is."""
    problems, root, doc = [], root.resolve(), doc.resolve()
    top = frozenset(path for path in paths if "/" not in path)
    for code in code_of(doc.read_text(encoding="utf-8")):
        where = f"{doc.relative_to(root)}:{code.line}:"
        problems += [
            f"{where} {name} is not a file or folder of the repository"
            for name in named_paths(code, top)
            if name not in paths
        ]
        problems += [
            f"{where} make {target} is not a target of the Makefile"
            for target in named_make_targets(code)
            if target not in targets
        ]
        problems += [
            f"{where} {module} is not a module to run"
            for module in MODULE_RUN.findall(code.text)
            if not is_runnable_module(module, paths)
        ]
    return problems


# --- the repository's documents ----------------------------------------------------------------


@pytest.fixture(scope="module")
def paths() -> frozenset[str]:
    return repository_paths()


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_relative_link_leads_to_the_repository(doc, paths):
    assert links_of(doc.read_text(encoding="utf-8")), f"{doc.name} has no links: nothing was checked"
    assert broken_links(doc, ROOT, paths) == []


def test_every_page_of_docs_is_linked_from_the_readme():
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages, "docs/ has no pages: nothing was checked"
    assert pages_not_linked(ROOT / "README.md", pages) == []


@pytest.fixture(scope="module")
def targets() -> frozenset[str]:
    return make_targets((ROOT / "Makefile").read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_path_command_and_module_named_in_code_is_there(doc, paths, targets):
    assert code_of(doc.read_text(encoding="utf-8")), f"{doc.name} has no code: nothing was checked"
    assert unknown_names(doc, ROOT, paths, targets) == []


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


def test_the_checker_finds_a_page_the_readme_does_not_link(tmp_path):
    (tmp_path / "docs").mkdir()
    pages = [tmp_path / "docs" / name for name in ("A.md", "B.md", "C.md")]
    for page in pages:
        page.write_text("# A page\n")
    readme = tmp_path / "README.md"
    readme.write_text("[a](docs/A.md) [into b](docs/B.md#a-page) [c, outside](https://x.org/docs/C.md)\n")
    assert pages_not_linked(readme, pages) == ["docs/C.md"]


def test_the_checker_finds_each_kind_of_unknown_name(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(
        dedent("""\
        `bench/run.py` `python -m bench` `make bench SCALE=tiny` `results/<run>` `/stats`

        ```sh
        make bench-fanout FOLLOWERS=100 REDIS_NODES=3   # fine: one target
        make .venv/.installed && python3 -m venv .venv  # fine: a pattern target, a stdlib module
        uvicorn approach1:app --workers 2
        bench/run.py, plan.py, gone.py   the runner, its plan, and a file that moved
        .venv/bin/python -m bench.moved
        make soak bench-gone
        rig/gone.py                      https://example.com/rig/x.py
        ```

        `uvicorn approach9:app` `tests/test_none.py`
        """)
    )
    paths = frozenset({"README.md", "approach1.py", "bench", "bench/run.py", "bench/plan.py",
                       "bench/__main__.py", "rig", "tests"})  # fmt: skip
    makefile = "VENV ?= .venv\nX := 1\n$(VENV)/.installed: r\n\ttouch $@\nbench soak bench-fanout: x\n"
    targets = make_targets(makefile)
    assert targets == {".venv/.installed", "bench", "soak", "bench-fanout"}
    assert [problem.split(": ", 1)[1] for problem in unknown_names(doc, tmp_path, paths, targets)] == [
        "bench/gone.py is not a file or folder of the repository",
        "bench.moved is not a module to run",
        "make bench-gone is not a target of the Makefile",
        "rig/gone.py is not a file or folder of the repository",
        "approach9 is not a module to run",
        "tests/test_none.py is not a file or folder of the repository",
    ]
