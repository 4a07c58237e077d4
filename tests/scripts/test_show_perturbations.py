"""scripts/show_perturbations.py: the three panels, the PNG, and one line without matplotlib."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import run_without_matplotlib

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "show_perturbations.py"


def _module():
    spec = importlib.util.spec_from_file_location("show_perturbations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_panels_are_one_sample_as_loaded_jittered_and_relabelled():
    panels = _module().perturbed_examples("synthetic", 0.2, 0.1, seed=0)
    (t1, base, shape), (t2, jittered, _), (t3, same, _) = panels
    from paracnn.data import load_datasets
    sets = load_datasets({"dataset": "synthetic", "label_noise": 0.1}, seed=0)
    change = sets.label_noise.changed[0]
    assert base == same == sets.train.sample(change.index)[0] and shape == (1, 12, 12)
    assert jittered != base and len(jittered) == len(base)
    assert t1 == f"base: {change.old}" and t3 == f"corrupted label: {change.new} (true {change.old})"


def test_it_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig.png"
    done = subprocess.run([sys.executable, str(SCRIPT), "--dataset", "synthetic", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_it_says_how_to_install_it_in_one_line(tmp_path):
    done = run_without_matplotlib(SCRIPT, ["--dataset", "synthetic", "--out", str(tmp_path / "f.png")])
    assert done.returncode == 2
    assert done.stderr == ('show_perturbations: matplotlib is not installed; install it with: '
                           'pip install "paracnn[plot]"\n')
    assert not (tmp_path / "f.png").exists()
