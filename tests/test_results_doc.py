"""docs/results.md: every command in it parses, names a config that loads and keys that exist,
and no page of docs/ holds an absolute path (the commands must run from any clone)."""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from paracnn.cli import build_parser
from paracnn.cli.options import load, shorthand_overrides
from paracnn.config import parse_override

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"
STUDY = ROOT / "scripts" / "study_robustness.py"
#: what a command of the page starts with, after any ``NAME=value`` environment settings.
PROGRAMS = ("paracnn", "python")
#: the commands that read a CONFIG, and the flags that stand for a ``--set`` in each.
SHORTHANDS = {"train": ("--workers", "--start-method", "--data-dir", "--backend", "--address"),
              "check": (), "summary": (), "profile": ("--batch-size", "--backend", "--address")}
#: an absolute path: a root folder and one more part, or a folder every Unix has, standing where a
#: word starts (so ``https://host/x``, ``samples/s`` and ```--set`/flag`` are not one).
ABSOLUTE = re.compile(r"(?:^|[\s`'\"(=\[,])(/[\w.~-]+/[\w.~-]*|/(?:work|home|usr|tmp|opt|root|mnt|var|etc)\b)")


def commands(text):
    """Every command the page gives: inline code and lines of code blocks (``\\`` joins lines)."""
    found = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        found += [line.strip() for line in block.replace("\\\n", " ").splitlines()]
    # NOTE: an inline span may wrap onto the next line of the paragraph
    found += re.findall(r"(?<!`)`([^`]+)`(?!`)", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    out = []
    for line in found:
        words = shlex.split(line) if line else []
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words.pop(0)
        # "`paracnn compare`" alone names a command in a sentence; it is not one to run
        if words and words[0] in PROGRAMS and len(words) > 2:
            out.append(words)
    return out


TEXT = RESULTS.read_text(encoding="utf-8")
COMMANDS = commands(TEXT)


def _id(words):
    return " ".join(words)[:70]


def _study():
    spec = importlib.util.spec_from_file_location("study_robustness", STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolved(data, path):
    """The value at ``path`` of a resolved config dict; KeyError or IndexError if it has none."""
    for step in path:
        data = data[step]
    return data


def test_the_page_gives_the_commands_of_its_runs():
    # NOTE: the extraction itself is checked, or an empty list would pass every test below
    programs = [(w[0], w[1]) for w in COMMANDS]
    assert ("paracnn", "train") in programs and ("paracnn", "evaluate") in programs
    assert ("python", "scripts/study_robustness.py") in programs
    assert any("configs/lenet-best.yaml" in w for w in COMMANDS)
    assert any("configs/mnist-cnn.yaml" in w for w in COMMANDS)


@pytest.mark.parametrize("words", [w for w in COMMANDS if w[0] == "paracnn"], ids=_id)
def test_every_paracnn_command_parses_and_its_config_and_keys_exist(words):
    args = build_parser().parse_args(words[1:])  # argparse exits (failing the test) on a bad option
    if args.command not in SHORTHANDS or getattr(args, "config", None) is None:
        return  # a run folder or checkpoint: made by the run before it, not by the clone
    assert (ROOT / args.config).is_file(), args.config
    # what `paracnn check` and `paracnn train` do first: load the config with its overrides,
    # which refuses an unknown key, then build the model
    config = load(args, shorthand_overrides(args, *SHORTHANDS[args.command]), path=ROOT / args.config)
    config.build_model()
    for text in args.overrides:
        ov = parse_override(text)
        value = _resolved(config.data, ov.path)  # a key the resolved config lacks raises here
        given = ov.value.items() if isinstance(ov.value, dict) else [(None, ov.value)]
        assert all((value[k] if k is not None else value) == v for k, v in given), text


@pytest.mark.parametrize("words", [w for w in COMMANDS if w[0] == "python"], ids=_id)
def test_every_script_command_names_a_script_that_exists_and_the_study_parses(words):
    if not words[1].startswith("scripts/"):
        # an older version of a script, which the page says how to get from git
        assert re.search(rf"^git show \w+:scripts/\S+ > {re.escape(words[1])}$", TEXT, re.M), words[1]
        return
    assert (ROOT / words[1]).is_file(), words[1]
    if words[1] != "scripts/study_robustness.py":
        return
    study = _study()
    args = study.parse_args(words[2:])
    assert (ROOT / args.config).is_file(), args.config
    study.parse_levels(args.levels)
    study.check_options(args)
    config = study.load_config(ROOT / args.config, study.overrides(args, "jitter", 20, seed=0))
    config.build_model()


def test_no_page_of_docs_holds_an_absolute_path():
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            found = ABSOLUTE.findall(line)
            assert not found, f"{page.relative_to(ROOT)}:{number}: {found}"


@pytest.mark.parametrize("line, absolute", [
    ("PARACNN_DATA_DIR=/work/shared/data paracnn train", True),
    ("`/usr/bin/time -v python`", True),
    ("--out /tmp", True),
    ("see https://github.com/x/y and samples/s", False),
    ("starts with `--set`/flag", False),
    ("PARACNN_DATA_DIR=../shared/data and runs/lenet", False),
])
def test_the_absolute_path_pattern(line, absolute):
    assert bool(ABSOLUTE.search(line)) is absolute
