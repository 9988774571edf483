"""The documentation stands alone and names only commands that exist.

(a) README.md and docs/*.md cite no document outside the repository (a design note, a
    "reference" with section numbers, a sibling checkout's files) and no machine-specific
    absolute path: cite the kernel function or file, the paper or upstream project, or a doc of
    this repository instead.
(b) every `reclaim-ext SUBCOMMAND` shown in their code (fenced blocks and inline code spans) is a
    real subcommand of the click group in reclaim_ext.cli, and the next word after a group such
    as `validate` is one of its subcommands.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from reclaim_ext.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# Citations of documents that live outside this repository, and machine-specific paths.
OUTSIDE = [
    (re.compile(r"\.\./shared\b"), "a path into a checkout-external ../shared directory"),
    (re.compile(r"(?<![\w.-])/work/"), "an absolute /work/ path of one machine"),
    (re.compile(r"\b(?:extension-anchors|peers|kernel-reclaim|real-kernel)\.md\b"),
     "a design note outside the repository"),
    (re.compile(r"\bARCHITECTURE\.md\b"), "the design note outside the repository"),
    (re.compile(r"\breference/"), "a path into an outside reference folder"),
    (re.compile(r"\breference(?:'s)?\s+(?:§|\w+\.md)|§\s*\d"),
     "a section of an outside reference document"),
]

CODE_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# `reclaim-ext run`, and alternatives listed as `reclaim-ext run | bench | ablate`
COMMAND = re.compile(r"(?<![\w/.-])reclaim-ext[ \t]+([a-z][\w-]*(?:[ \t]*\|[ \t]*[a-z][\w-]*)*)(?:[ \t]+([a-z][\w-]*))?")


def _code(text: str) -> list[str]:
    """The code of a Markdown text: its fenced blocks and its inline code spans."""
    blocks = [m.group(0) for m in CODE_FENCE.finditer(text)]
    prose = CODE_FENCE.sub("", text)
    return blocks + CODE_SPAN.findall(prose)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def test_docs_exist():
    assert ROOT / "README.md" in DOCS and len(DOCS) > 1


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_outside_citations(doc: Path):
    text = doc.read_text()
    found = [f"{doc.name}:{_line(text, m.start())}: {m.group(0)!r} ({why})"
             for rx, why in OUTSIDE for m in rx.finditer(text)]
    assert not found, "cites something outside the repository:\n" + "\n".join(sorted(found))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_commands_exist(doc: Path):
    commands = cli_main.commands
    bad = []
    for code in _code(doc.read_text()):
        for m in COMMAND.finditer(code):
            names = [n.strip() for n in m.group(1).split("|")]
            for name in names:
                if name not in commands:
                    bad.append(f"reclaim-ext {name}")
            sub = m.group(2)
            if len(names) == 1 and names[0] in commands and isinstance(commands[names[0]], click.Group):
                group = commands[names[0]]
                if sub is None or sub not in group.commands:
                    bad.append(f"reclaim-ext {names[0]} {sub or ''}".rstrip())
    assert not bad, (f"{doc.name} shows commands that do not exist (real: {', '.join(sorted(commands))}):\n"
                     + "\n".join(sorted(set(bad))))


def test_checks_catch_what_they_should():
    """The patterns catch the known kinds of outside citation and made-up commands."""
    for text in ("see ../shared/reference/kernel-reclaim.md", "open_trace(\"/work/shared/t.bin\")",
                 "reference extension-anchors.md §1.4", "(§3.4)", "peers.md Appendix A"):
        assert any(rx.search(text) for rx, _ in OUTSIDE), text
    for text in ("the kernel's mm/vmscan.c", "`shrink_folio_list` (mm/vmscan.c)", "docs/model.md",
                 "src/reclaim_ext/validate/suite.py", "tests/test_docs.py"):
        assert not any(rx.search(text) for rx, _ in OUTSIDE), text
    found = [m.group(1) for c in _code("```\nreclaim-ext run | sweep\n```\n`reclaim-ext trace x`")
             for m in COMMAND.finditer(c)]
    assert found == ["run | sweep", "trace"]
