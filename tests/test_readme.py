"""The README's commands and example stay true."""

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

from paracnn.cli import EPILOGS, build_parser
from paracnn.config import load_config
from paracnn.testing import check_layer

from .conftest import missing_layer_types

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PERFORMANCE = (ROOT / "docs" / "performance.md").read_text()


def test_layer_example_passes_the_harness(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "readme_layer.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("readme_layer")
    report = check_layer(module.Scale, {}, (3, 4, 4))
    assert report.checked == {"input": 48, "a": 1}


def test_ci_runs_the_readme_test_command():
    command = re.search(r"Install and run the tests.*?```sh\n(.*?)\n```", README, re.S).group(1)
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    # word for word, once under CPython and once under PyPy (after the PATH switch)
    runs = [i for i, line in enumerate(lines) if line == command]
    switch = next(i for i, line in enumerate(lines) if line.startswith('export PATH="$pypy_venv/bin'))
    assert len(runs) == 2 and runs[0] < switch < runs[1]


def test_every_shipped_config_is_mentioned_and_summarises():
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        assert f"configs/{config.name}" in README, config.name
        if missing_layer_types(config):
            continue  # needs the example plugin; tests/test_plugins.py covers it when installed
        out = subprocess.run([sys.executable, "-m", "paracnn", "summary", str(config), "--json"],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr


def sh_blocks(text):
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def paracnn_argv(command):
    """The arguments after ``paracnn`` in ``[install &&] [VAR=value] paracnn ...``."""
    words = shlex.split(command.split("&&")[-1])
    return words[words.index("paracnn") + 1:]


def test_the_first_command_is_a_quick_run_of_lenet_on_a_subset(capsys):
    first, full = sh_blocks(README)[:2]
    argv = paracnn_argv(first)
    args = build_parser().parse_args(argv)
    assert args.command == "train" and args.workers == "auto"
    config = load_config(ROOT / args.config, args.overrides)
    assert config.data["data"]["dataset"] == "mnist"
    assert (config.data["data"]["train_limit"], config.data["data"]["test_limit"]) == (2000, 500)
    assert config.build_model().num_params() == 44_426
    # then the full epoch: the same command without the limits
    assert paracnn_argv(full) == ["train", "configs/lenet.yaml", "--workers", "auto"]
    assert first.split("&&")[0] == full.split("&&")[0] == "python -m pip install -e . "


def test_every_documented_worker_count_is_auto():
    """README, the configs' header comments, docs/config.md and --help all recommend auto.

    (On a Ray cluster the count is the user's choice of actors: auto counts this machine's CPUs.)
    """
    texts = {"README.md": README, "docs/config.md": (ROOT / "docs" / "config.md").read_text()}
    texts.update({f"configs/{p.name}": p.read_text() for p in (ROOT / "configs").glob("*.yaml")})
    texts["paracnn --help"] = "\n".join(EPILOGS.values())
    examples = 0
    for name, text in texts.items():
        for example, count in re.findall(r"(paracnn train \S+\.yaml\b[^\n`|]*?--workers (\S+))", text):
            if "--backend ray" in example:
                continue
            examples += 1
            assert count == "auto", (name, count)
    assert examples >= 8


def test_seed_references_are_explained_where_they_appear():
    lines = [line for line in README.splitlines() if re.search(r"seed 00\d", line)]
    paragraph = " ".join(README.split("seed 000")[1].split("\n\n")[0].split())
    assert len(lines) <= 2 and "reference papers" in " ".join(lines)
    assert "docs/performance.md#the-reference-papers" in paragraph
    assert "## The reference papers" in PERFORMANCE


def test_measurement_day_detail_lives_in_docs_performance():
    for detail in ("busy day", "calibration pairs", "medians of ten runs", "±10 %"):
        assert detail not in README, detail
        assert detail in PERFORMANCE, detail
    assert "docs/performance.md" in README


def test_docs_config_lists_every_shipped_config():
    table = [line for line in (ROOT / "docs" / "config.md").read_text().splitlines()
             if line.startswith("| `configs/")]
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        assert any(line.startswith(f"| `configs/{config.name}` |") for line in table), config.name


def test_the_readme_has_the_sections_a_newcomer_looks_for():
    headings = re.findall(r"^## (.+)$", README, re.M)
    for section in ("First run", "Commands", "Data", "Going faster", "Seeing inside a trained network"):
        assert section in headings, section
    assert headings[0] == "First run"


def test_looking_inside_example_runs_on_a_trained_run(tmp_path):
    from paracnn.train import train

    run = tmp_path / "run"
    train(load_config(ROOT / "configs" / "tiny.yaml", ["train.epochs=1"]), workers=0, run_dir=run,
          progress=False, log=lambda line: None)
    code = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S)
                if "load_model" in block)
    code = code.replace('"runs/lenet/checkpoints/best.json"', repr(str(run)))
    names = {}
    exec(code, names)  # noqa: S102 - the README's own example
    assert len(names["grad"]) == len(names["x"]) and len(names["logits"]) == 10
