"""Docs as programs: every Python block of README.md, docs/*.md and the other Markdown files is a file
(or a region of one) in docs_src/, and every file there runs, in a fresh folder with a fresh
warehouse, printing what it should.

When a check fails because a file changed, copy it into the docs with ``make docs``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.docs_blocks import ROOT, expected, markdown_files, programs, python_blocks, regions

BLOCKS = [b for doc in markdown_files() for b in python_blocks(doc)]
# Programs that need a prepared warehouse are run, and their output checked, by another test.
RUN_ELSEWHERE = {"engines_": "tests/test_engines.py"}  # file name prefix -> the test that runs them
PROGRAMS = programs()
RUN_HERE = [p for p in PROGRAMS if not p.name.startswith(tuple(RUN_ELSEWHERE))]

# What each program prints, line by line (regular expressions, matched in full).
OUTPUT = {
    "lifecycle_guide.py": [
        re.escape("- doc:problem_statement: no document given (pass --set doc:problem_statement=<text or file path>)"),
        r"refused: lifecycle step 'approval' is not done in any model project linking this model",
        r"production: 1",
        re.escape("[('churn', 'approved', 'Packaging', 'max')]"),
    ],
    "monitoring_guide.py": [
        r"windows computed: 2",
        re.escape("accuracy_low None accuracy < 0.8"),
        re.escape("feature_drift spend psi > 0.2"),
        re.escape("feature_drift tenure psi > 0.2"),
        r"accuracy per hour: \[0\.9\d, 0\.[0-4]\d?\]",
    ],
    "maintenance.py": [r"metrics \d+ -> \d+ \d+ \d+\.\ds", r"drained: True"],
    "quickstart.py": [r"FINISHED 6 growth", r"1 run found; 10000 points; 3 input rows", r"a trained model"],
    "registry_guide.py": [
        r"overview: version 1 is 1",
        r"gates: champion is version 2",
        r"version 1 refused: GateError 4 failed rules",
        r"checkpoints: best \{'w': 4\.0\} kept steps \[3, 4\]",
    ],
    "registry_quickstart.py": [
        r"version 1 champion: 1",
        r"predictions match: True",
        r"trained on the table: True",
        re.escape("[('churn', 1, 'prod')]"),
    ],
    "sql_queries.py": [
        re.escape("best auc by max_depth: [('4', 0.88), ('6', 0.86), ('2', 0.81)]"),
        r"runs on the leaderboard: 4",
        r"runs on 2026-11-01: 0",
        r"param_sensitivity columns: \['experiment', 'param', 'value', .*\]",
    ],
    "tracking_client.py": [
        re.escape("search: ['a', 'b']"),
        r"points: 1001",
        re.escape("params: [('depth', '6'), ('lr', '0.1')]"),
    ],
}


def test_there_are_blocks_and_programs():
    assert len(BLOCKS) >= 10 and len(RUN_HERE) >= 5
    for prefix, test in RUN_ELSEWHERE.items():
        assert all(p.name in (ROOT / test).read_text() for p in PROGRAMS if p.name.startswith(prefix)), (
            f"{test} must run every docs_src/{prefix}*.py")


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block_is_its_file(block):
    assert block.source is not None, (
        f"{block.where}: a python block must be copied from docs_src/: put the code in a file there and "
        "the line '<!-- docs_src/<file>.py [<region>] -->' right before the block, then run 'make docs'")
    assert block.body == expected(block), (
        f"{block.where} differs from {block.source} [{block.region}]: run 'make docs' to copy the file into "
        "the docs (edit the file, not the block)")


def test_every_file_and_region_is_shown():
    shown = {(b.source, b.region) for b in BLOCKS}
    for path in PROGRAMS:
        source = f"docs_src/{path.name}"
        names = [n for n in regions(path) if n is not None] or [None]
        missing = [n for n in names if (source, n) not in shown]
        assert not missing, f"{source}: region(s) {missing} appear in no doc; show them or remove them"
    for path in RUN_HERE:
        assert path.name in OUTPUT, f"tests/test_docs_src.py: say what {path.name} prints in OUTPUT"


def test_regions_parse_and_mismatches_are_caught(tmp_path):
    """The checker itself: a region is found exactly, and a block that differs by one character fails."""
    f = tmp_path / "x.py"
    f.write_text("a = 1\n# --8<-- [start:r]\nb = a + 1\n# --8<-- [end:r]\nprint(b)\n")
    assert regions(f) == {"r": "b = a + 1\n", None: "a = 1\nb = a + 1\nprint(b)\n"}
    f.write_text("# --8<-- [start:r]\nb = 1\n")
    with pytest.raises(ValueError, match="never end"):
        regions(f)
    doc = tmp_path / "doc.md"
    doc.write_text("text\n<!-- docs_src/quickstart.py [log] -->\n```python\nimport lakeml\n```\n\n```py\nx\n```\n"
                   "```bash\nlakeml doctor\n```\n- item\n  ```python\n  y\n  ```\n")
    marked, bare, indented = python_blocks(doc)
    assert (marked.source, marked.region, marked.body) == ("docs_src/quickstart.py", "log", "import lakeml\n")
    assert bare.source is None and bare.body == "x\n"
    assert indented.source is None and indented.body == "  y\n"
    assert marked.body != regions(ROOT / "docs_src" / "quickstart.py")["log"]


@pytest.mark.parametrize("path", RUN_HERE, ids=[p.name for p in RUN_HERE])
def test_program_runs(path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEML_", "PYICEBERG_"))}
    env.update(LAKEML_WAREHOUSE=str(tmp_path / "warehouse"), LAKEML_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"{path.name} exited {out.returncode}:\n{out.stderr[-4000:]}"
    lines = out.stdout.splitlines()
    want = OUTPUT[path.name]
    assert len(lines) == len(want) and all(re.fullmatch(w, got) for w, got in zip(want, lines)), (
        f"{path.name} printed:\n{out.stdout}\nexpected lines matching:\n" + "\n".join(want))
    assert (tmp_path / "warehouse" / "catalog.db").is_file()  # it wrote where it was told
