"""docs/cli.md documents every command of the CLI (as sqlite-utils' test_docs does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from lakeml.cli.main import app

DOC = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()


def walk(cmd, path=()):
    """(command path, click command) for every group and command under ``cmd``."""
    subs = getattr(cmd, "commands", None)
    if path:
        yield " ".join(path), cmd
    for name, sub in (subs or {}).items():
        yield from walk(sub, (*path, name))


COMMANDS = dict(walk(typer.main.get_command(app)))


def test_walk_finds_the_commands():
    assert {"init", "experiments list", "runs list", "runs show", "doctor", "demo"} <= set(COMMANDS)


GROUPS = {p for p, c in COMMANDS.items() if getattr(c, "commands", None)}


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_command_is_documented(path):
    assert f"lakeml {path}" in DOC, f"add 'lakeml {path}' to docs/cli.md"


@pytest.mark.parametrize("path", sorted(set(COMMANDS) - GROUPS))
def test_command_has_its_own_entry(path):
    """A heading or a table row names the command in backticks (a mere mention in prose is not enough)."""
    entry = re.compile(rf"^(## `lakeml {re.escape(path)}(`| )|\| `lakeml {re.escape(path)}` \|)", re.M)
    assert entry.search(DOC), f"give 'lakeml {path}' a section or a row of the command table in docs/cli.md"


def test_every_command_of_every_module_is_walked():
    """The walk sees each command group registered in lakeml/cli/main.py, so a new module is covered."""
    from lakeml.cli import main

    for module, attr, name in main._GROUPS:
        sub = typer.main.get_command(getattr(__import__(module, fromlist=[attr]), attr))
        names = set(getattr(sub, "commands", {}) or {}) or {sub.name}
        prefix = f"{name} " if name else ""
        assert {prefix + n for n in names} <= set(COMMANDS), module


@pytest.mark.parametrize("path", sorted(p for p, c in COMMANDS.items()
                                        if getattr(c.callback, "__module__", "") == "lakeml.cli.tracking"))
def test_tracking_command_options_are_documented(path):
    for param in COMMANDS[path].params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in DOC, f"document {opt} of 'lakeml {path}' in docs/cli.md"


def test_summary_block_names_real_commands():
    block = DOC.split("```", 2)[1]
    for line in block.splitlines():
        if m := re.match(r"lakeml ((?:[a-z]+ ?)+)", line):
            words = [w for w in m.group(1).split() if w.islower()]
            path = " ".join(words[:2]) if " ".join(words[:2]) in COMMANDS else words[0]
            assert path in COMMANDS, line
