"""CONTRIBUTING.md quotes paracnn's own files as examples: every quoted block is still in its file."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
SECTION = GUIDE.split("## How code reads\n", 1)[1].split("\n## ", 1)[0]
BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.S)
SOURCE = re.compile(r"`(paracnn/[\w/]+\.py)`")


def quotes():
    """``(file, quoted lines)`` for each block: the file is the last one the text before it names."""
    found, start = [], 0
    for block in BLOCK.finditer(SECTION):
        named = SOURCE.findall(SECTION[start:block.start()])
        assert named, f"no paracnn/....py named before the block {block.group(1)[:60]!r}"
        found.append((named[-1], [line.strip() for line in block.group(1).splitlines()]))
        start = block.end()
    return found


def test_the_section_quotes_the_files_it_promises():
    files = {path for path, _ in quotes()}
    assert {"paracnn/layers/conv2d.py", "paracnn/layers/dense.py", "paracnn/layer.py",
            "paracnn/testing.py"} <= files


@pytest.mark.parametrize("path, lines", quotes(), ids=[f"{p}:{l[0][:30]}" for p, l in quotes()])
def test_each_quoted_block_is_in_its_file_line_for_line(path, lines):
    source = [line.strip() for line in (REPO / path).read_text(encoding="utf-8").splitlines()]
    n = len(lines)
    assert any(source[i:i + n] == lines for i in range(len(source) - n + 1)), (
        f"CONTRIBUTING.md quotes lines that {path} no longer has:\n" + "\n".join(lines))
