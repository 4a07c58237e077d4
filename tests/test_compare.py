"""paracnn compare: the three measures by hand, two tiny trained runs, and architecture mismatches."""

import json
import math
from pathlib import Path

import pytest

from paracnn.checkpoint import load_checkpoint
from paracnn.cli import main
from paracnn.compare import ArchitectureMismatch, compare, drift, format_comparison
from paracnn.config import load_config
from paracnn.train import train

REPO = Path(__file__).resolve().parents[1]


def test_the_three_measures_on_small_vectors_by_hand():
    d = drift([3.0, 4.0], [0.0, 4.0])
    assert (d.l2, d.relative_change, d.cosine) == (3.0, 0.75, 0.8)   # ||(3,0)||; 3/4; 16/(5*4)
    d = drift([1.0, 2.0, 2.0], [-1.0, -2.0, -2.0])
    assert (d.l2, d.relative_change, d.cosine) == (6.0, 2.0, -1.0)
    same = drift([0.5, -1.5], [0.5, -1.5])
    assert (same.l2, same.relative_change, same.cosine) == (0.0, 0.0, 1.0)
    zero = drift([1.0, 0.0], [0.0, 0.0])
    assert (zero.l2, zero.relative_change, zero.cosine) == (1.0, None, None)


def _run(root, name, *overrides, **kw):
    # NOTE: a validation split, so that best.json exists for --checkpoint-name best.json
    config = load_config(REPO / "configs" / "tiny.yaml", ["train.epochs=2", "data.validation=0.25",
                                                          *overrides])
    train(config, run_dir=root / name, progress=False, log=lambda line: None, **kw)
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    return _run(root, "seed1", "train.seed=1"), _run(root, "seed2", "train.seed=2")


def test_two_trained_runs_compare_tensor_by_tensor(runs):
    a, b = runs
    c = compare(a, b)
    wa = load_checkpoint(a / "checkpoints" / "last.json")["weights"]
    wb = load_checkpoint(b / "checkpoints" / "last.json")["weights"]
    # tiny.yaml: conv2d(4 filters, 3x3) -> relu -> maxpool -> flatten -> dense(10) on 4x5x5
    layout = [("0.conv2d.weight", [4, 1, 3, 3]), ("0.conv2d.bias", [4]),
              ("4.dense.weight", [10, 100]), ("4.dense.bias", [10])]
    assert [(t.name, t.shape) for t in c.tensors] == layout
    pos = 0
    for t in c.tensors:
        x, y = wa[pos:pos + t.size], wb[pos:pos + t.size]
        pos += t.size
        l2 = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y)))
        norm_x, norm_y = math.sqrt(sum(p * p for p in x)), math.sqrt(sum(q * q for q in y))
        assert t.l2 == pytest.approx(l2, rel=1e-12) and t.l2 > 0
        assert t.relative_change == pytest.approx(l2 / norm_y, rel=1e-12)
        assert t.cosine == pytest.approx(sum(p * q for p, q in zip(x, y)) / (norm_x * norm_y), rel=1e-12)
    assert pos == len(wa) == c.overall.size
    assert c.overall.l2 == pytest.approx(math.sqrt(sum(t.l2 ** 2 for t in c.tensors)), rel=1e-12)
    for side, run in ((c.a, a), (c.b, b)):
        test = json.loads((run / "eval.json").read_text())["test"]
        assert (side.test_accuracy, side.test_loss) == (test["accuracy"], test["loss"])
        assert side.metrics_from == str(run / "eval.json")


def test_a_run_compared_with_itself_has_not_moved(runs):
    c = compare(runs[0], runs[0] / "checkpoints" / "last.json")
    assert all((t.l2, t.relative_change, t.cosine) == (0.0, 0.0, 1.0) for t in c.tensors + [c.overall])


def test_the_command_prints_the_table_and_json(runs, capsys):
    a, b = runs
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out == format_comparison(compare(a, b)) + "\n"
    assert "0.conv2d.weight  (4, 1, 3, 3)" in out and "test accuracy" in out and "\noverall" in out
    assert main(["compare", str(a), str(b), "--json", "--checkpoint-name", "best.json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"]["checkpoint"].endswith("best.json")
    assert {"l2", "relative_change", "cosine"} <= set(data["tensors"][0]) and len(data["tensors"]) == 4
    assert data["overall"]["l2"] == compare(a, b, "best.json").overall.l2


def test_different_architectures_are_one_line_naming_the_first_layer(runs, tmp_path, capsys):
    wide = _run(tmp_path, "wide", "model.layers.0.filters=8", "train.epochs=1")
    with pytest.raises(ArchitectureMismatch, match=r"layer 0 is conv2d -> \(4, 10, 10\) with weight "
                                                   r"\(4, 1, 3, 3\), bias \(4,\) in A but conv2d -> "
                                                   r"\(8, 10, 10\) with weight \(8, 1, 3, 3\)"):
        compare(runs[0], wide)
    assert main(["compare", str(runs[0]), str(wide)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different architectures: layer 0" in err
    sigmoid = _run(tmp_path, "sigmoid", "model.layers.1.type=sigmoid", "train.epochs=1")
    with pytest.raises(ArchitectureMismatch, match=r"layer 1 is relu -> \(4, 10, 10\) in A but sigmoid"):
        compare(runs[0], sigmoid)


def test_a_checkpoint_taken_mid_epoch_has_no_test_figures(runs, tmp_path):
    config = load_config(REPO / "configs" / "tiny.yaml", ["train.seed=1"])
    train(config, run_dir=tmp_path / "short", progress=False, log=lambda line: None, max_steps=5)
    c = compare(tmp_path / "short", runs[0])
    assert (c.a.test_accuracy, c.a.metrics_from, c.a.step) == (None, None, 5)
    assert "not evaluated at these weights" in format_comparison(c)
    assert c.b.test_accuracy is not None


@pytest.mark.parametrize("damage", [
    lambda e: {**e, "test": {**e["test"], "accuracy": "high"}},
    lambda e: {**e, "test": {**e["test"], "loss": [1]}},
    lambda e: {**e, "test": None},
    lambda e: [e],
])
def test_a_malformed_eval_json_is_passed_over_not_a_traceback(runs, tmp_path, capsys, damage):
    import shutil
    a, b = runs
    copy = tmp_path / "a"
    shutil.copytree(a, copy)
    evaluation = json.loads((copy / "eval.json").read_text())
    (copy / "eval.json").write_text(json.dumps(damage(evaluation)))
    assert main(["compare", str(copy), str(b)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("A  ")
