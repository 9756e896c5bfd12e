"""The Python code blocks of the Markdown files (README.md, docs/*.md...) and the docs_src/ files they copy.

A block is included by reference: the line right before its fence names a file of ``docs_src/`` and,
optionally, a region of it::

    <!-- docs_src/quickstart.py [log] -->
    ```python
    ...
    ```

A region is the text between ``# --8<-- [start:log]`` and ``# --8<-- [end:log]`` in the file; with
no region the block is the whole file. ``python -m tests.docs_blocks`` (``make docs``) copies every
file or region into the blocks that name it; tests/test_docs_src.py checks they are equal.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS_SRC = ROOT / "docs_src"
MARKER = re.compile(r"<!-- (docs_src/[\w/.-]+\.py)(?: \[([\w-]+)\])? -->")
SKIP_DIRS = ("build", "dist", "node_modules", "__pycache__", "lakeml-warehouse")
PYTHON_FENCES = ("python", "py", "python3")
REGION = re.compile(r"^[ \t]*# --8<-- \[(start|end):([\w-]+)\][ \t]*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    body: str  # the block's text, ending with a newline
    source: str | None  # "docs_src/x.py", from the marker line before the fence
    region: str | None

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def markdown_files() -> list[Path]:
    """README.md, docs/*.md and every other Markdown file of the project (not in hidden or build folders)."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not (d.startswith(".") or d in SKIP_DIRS or d.endswith(".egg-info")
                                           or (Path(folder) / d / "pyvenv.cfg").exists())]  # any virtualenv
        found += [Path(folder) / f for f in files if f.endswith(".md")]
    return sorted(found, key=lambda p: (p != ROOT / "README.md", str(p)))


def programs() -> list[Path]:
    """The runnable files of docs_src/ (names starting with ``_`` are helpers, not programs)."""
    return sorted(p for p in DOCS_SRC.glob("*.py") if not p.name.startswith("_"))


def python_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text().splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        fence = lines[i].strip()  # an indented fence (in a list) counts too: it must be marked as well
        if fence.startswith("```"):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip("\n") == indent + "```"),
                       len(lines))
            if fence[3:].strip().lower() in PYTHON_FENCES:
                m = MARKER.fullmatch(lines[i - 1].strip()) if i > 0 else None
                out.append(Block(doc, i + 1, "".join(lines[i + 1:end]), m and m.group(1), m and m.group(2)))
            i = end + 1
        else:
            i += 1
    return out


def regions(path: Path) -> dict[str | None, str]:
    """``{None: the whole file without region markers, name: region text}``."""
    whole, open_, out = [], {}, {}
    for n, line in enumerate(path.read_text().splitlines(keepends=True), 1):
        m = REGION.match(line)
        if not m:
            whole.append(line)
            for name in open_:
                open_[name].append(line)
            continue
        kind, name = m.groups()
        if kind == "start":
            if name in open_ or name in out:
                raise ValueError(f"{path.name}:{n}: region {name!r} starts twice")
            open_[name] = []
        elif name not in open_:
            raise ValueError(f"{path.name}:{n}: region {name!r} ends before it starts")
        else:
            out[name] = "".join(open_.pop(name))
    if open_:
        raise ValueError(f"{path.name}: region(s) {sorted(open_)} never end")
    out[None] = "".join(whole)
    return out


def expected(block: Block) -> str:
    """The text the block must hold: its file, or its region of the file."""
    path = ROOT / block.source
    if not path.is_file():
        raise FileNotFoundError(f"{block.where} names {block.source}, which does not exist")
    found = regions(path)
    if block.region not in found:
        raise KeyError(f"{block.where}: {block.source} has no region [{block.region}] "
                       f"(it has {sorted(k for k in found if k)})")
    return found[block.region]


def sync() -> list[str]:
    """Copy each file or region into the blocks that name it; returns the blocks it changed."""
    changed = []
    for doc in markdown_files():
        lines, before = doc.read_text().splitlines(keepends=True), len(changed)
        for block in reversed(python_blocks(doc)):  # bottom up, so earlier line numbers stay valid
            if block.source is None or block.body == (text := expected(block)):
                continue
            n_old = len(block.body.splitlines())
            lines[block.line:block.line + n_old] = text.splitlines(keepends=True)
            changed.append(block.where)
        if len(changed) > before:
            doc.write_text("".join(lines))
    return changed


if __name__ == "__main__":
    done = sync()
    print("\n".join(f"updated {w}" for w in done) or "docs are in sync with docs_src/")
    sys.exit(0)
