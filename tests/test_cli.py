"""The paracnn command: broken configs report FILE:LINE:COL with exit status 2, and the commands."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from paracnn import __version__
from paracnn.cli import main

from .conftest import SMALL_CONFIG, skip_if_plugins_missing

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))

# Line numbers in the table below refer to this text.
GOOD = SMALL_CONFIG


def edit(old, new, text=GOOD):
    assert old in text, old
    return text.replace(old, new, 1)


# (id, config text, extra CLI args, "LINE:COL" or None for --set errors, message fragments)
BROKEN = [
    ("yaml-syntax", edit("      filters: 4\n", "      filters 4\n"), [], "6:7",
     ["invalid YAML: could not find expected ':'"]),
    ("yaml-tab", edit("    - type: relu\n", "\t- type: relu\n"), [], "7:1",
     ["invalid YAML: found character '\\t' that cannot start any token"]),
    ("unknown-top-level-key", edit("train:\n", "trian:\n"), [], "13:1",
     ["unknown key 'trian' in the config; did you mean 'train'?"]),
    ("misspelled-layer-key", edit("filters: 4", "filter: 4"), [], "5:7",
     ["unknown key 'filter' in layers[0] conv2d; did you mean 'filters'?"]),
    ("unknown-layer-type", edit("type: conv2d", "type: conv2"), [], "4:7",
     ["layers[0]: unknown layer type 'conv2'; did you mean 'conv2d'?", "pip install"]),
    ("negative-filters", edit("filters: 4", "filters: -4"), [], "5:7",
     ["layers[0] conv2d: filters must be >= 1, got -4"]),
    ("zero-kernel", edit("kernel_size: 5", "kernel_size: 0"), [], "6:7",
     ["layers[0] conv2d: kernel_size must be >= 1, got 0"]),
    ("string-for-int", edit("units: 10", "units: ten"), [], "12:7",
     ["layers[4] dense: units must be an integer, got 'ten'"]),
    ("dense-before-flatten", edit("    - type: flatten\n", ""), [], "10:7",
     ["layers[3]", "expects a flat input but gets (4, 12, 12); add a flatten layer before it"]),
    ("kernel-larger-than-input", edit("kernel_size: 5", "kernel_size: 30"), [], "4:7",
     ["layers[0] conv2d", "kernel_size 30x30 is larger than its (padded) input (1, 28, 28)"]),
    ("pool-kernel-larger-than-input", edit("kernel_size: 2", "kernel_size: 40"), [], "8:7",
     ["layers[2] maxpool2d", "kernel_size 40x40 is larger than its input (4, 24, 24)"]),
    ("wrong-lr-type", edit("lr: 0.05", "lr: fast"), [], "14:3",
     ["train.lr must be a number, got 'fast'"]),
    ("momentum-out-of-range", edit("momentum: 0.9", "momentum: 1.5"), [], "15:3",
     ["train.momentum must be < 1.0, got 1.5"]),
    ("bad-schedule", GOOD + "  schedule: {type: exponential}\n", [], "16:14",
     ["train.schedule.type must be one of constant, step, cosine, got 'exponential'"]),
    ("bad-init-name", edit("kernel_size: 5\n", "kernel_size: 5\n      init: he_unifrom\n"), [], "7:7",
     ["unknown initialiser 'he_unifrom' in init; did you mean 'he_uniform'?"]),
    ("bad-normalize", GOOD + "data:\n  normalize: zscore\n", [], "17:3",
     ["data.normalize must be one of unit, centered, standardize, got 'zscore'"]),
    ("validation-one", GOOD + "data:\n  validation: 1.0\n", [], "17:3",
     ["data.validation must be < 1.0, got 1.0"]),
    ("missing-model", "train:\n  lr: 0.1\n", [], "1:1",
     ["the config has no model: section"]),
    ("empty-layers", "model:\n  input_shape: [1, 28, 28]\n  layers: []\n", [], "3:3",
     ["model.layers must be a non-empty list"]),
    ("mismatched-output-classes", edit("units: 10", "units: 12"), [], "12:7",
     ["the model's output is (12,) but the mnist dataset has 10 classes"]),
    ("input-shape-vs-dataset", edit("[1, 28, 28]", "[3, 28, 28]"), [], "2:3",
     ["model.input_shape (3, 28, 28) does not match the mnist images (1, 28, 28)"]),
    ("input-shape-item", edit("[1, 28, 28]", "[1, 28, 0]"), [], "2:24",
     ["model.input_shape[2] must be >= 1, got 0"]),
    ("missing-required-layer-key", edit("      filters: 4\n", ""), [], "4:7",
     ["layers[0] conv2d needs filters:"]),
    ("layer-not-a-mapping", edit("    - type: relu\n", "    - relu\n"), [], "7:7",
     ["layers[1] must be a mapping with type:"]),
    ("python-tag", GOOD + "data: !!python/object/apply:os.system [ls]\n", [], "16:7",
     ["is not allowed; configs use plain YAML only"]),
    ("duplicate-key", GOOD + "  lr: 0.1\n", [], "16:3",
     ["duplicate key 'lr' (first given on line 14)"]),
    ("bad-dropout-rate", edit("    - type: flatten\n", "    - type: flatten\n    - type: dropout\n"
                              "      rate: 1.0\n"), [], "12:7",
     ["layers[4] dropout: rate must be < 1.0, got 1.0"]),
    ("set-bad-path", GOOD, ["--set", "train.lrr=0.1"], None,
     ["--set train.lrr=0.1: unknown key 'lrr' in train; did you mean 'lr'?"]),
    ("set-bad-section", GOOD, ["--set", "tran.lr=0.1"], None,
     ["--set tran.lr=0.1: unknown key 'tran' in the config; did you mean 'train'?"]),
    ("set-bad-value", GOOD, ["--set", "train.momentum=2"], None,
     ["--set train.momentum=2: train.momentum must be < 1.0, got 2.0"]),
]


@pytest.mark.parametrize("case_id, text, extra, pos, fragments", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_config_reports_file_line_col(tmp_path, capsys, case_id, text, extra, pos, fragments):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    assert main(["check", str(path), *extra]) == 2
    out, err = capsys.readouterr()
    assert err.endswith("\n") and "\n" not in err[:-1], err     # exactly one line
    assert "Traceback" not in err
    prefix = f"{path}:{pos}: " if pos else f"--set {extra[-1]}: "
    assert err.startswith(prefix), err
    for fragment in fragments:
        assert fragment in err, err
    assert "gradient check" not in out


def test_enough_broken_configs():
    assert len(BROKEN) >= 15


def run(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "paracnn", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_subprocess_error_has_no_traceback_and_exit_2(tmp_path):
    (tmp_path / "bad.yaml").write_text(edit("momentum: 0.9", "momentum: [0.9"))
    r = run("check", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("bad.yaml:16:1: invalid YAML:"), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_subprocess_debug_shows_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text(edit("filters: 4", "filters: -4"))
    r = run("--debug", "summary", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" in r.stderr
    assert r.stderr.rstrip().endswith("bad.yaml:5:7: layers[0] conv2d: filters must be >= 1, got -4")
    r = run("summary", "bad.yaml", "--debug", cwd=tmp_path)   # after the command too
    assert "Traceback" in r.stderr


def test_other_errors_get_the_usual_prefix(capsys):
    assert main(["summary", "no-such-config.yaml"]) == 2
    assert capsys.readouterr().err.startswith("paracnn: error: cannot read config 'no-such-config.yaml'")


# -- the commands ------------------------------------------------------------------------

def test_summary_lenet_has_44426_parameters(capsys):
    assert main(["summary", str(REPO / "configs/lenet.yaml")]) == 0
    out = capsys.readouterr().out
    assert "total: 44,426 parameters" in out
    assert main(["summary", str(REPO / "configs/lenet.yaml"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["total_params"] == 44426
    assert s["input_shape"] == [1, 28, 28] and s["output_shape"] == [10]
    assert [(r["type"], r["output_shape"], r["params"]) for r in s["layers"]][:3] == [
        ("conv2d", [6, 24, 24], 156), ("relu", [6, 24, 24], 0), ("maxpool2d", [6, 12, 12], 0)]
    assert s["total_macs"] == sum(r["macs"] for r in s["layers"]) > 0


def test_summary_with_set(capsys):
    assert main(["summary", str(REPO / "configs/lenet.yaml"), "--json",
                 "--set", "model.layers.0.filters=8"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["layers"][0]["params"] == 8 * 25 + 8


def test_simple_config_matches_seed_000(capsys):
    assert main(["summary", str(REPO / "configs/simple.yaml"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [r["params"] for r in s["layers"]] == [75, 0, 0, 0, 4330]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_check_passes_for_every_shipped_config(config, capsys):
    skip_if_plugins_missing(config)
    assert main(["check", str(config)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "forward/backward: ok" in out and "gradient check: ok" in out


def test_check_names_where_an_optimiser_setting_has_no_effect(capsys):
    # tiny.yaml sets momentum and nesterov for SGD; with Adam they do nothing, and check says where
    tiny = REPO / "configs/tiny.yaml"
    assert main(["check", str(tiny), "--set", "train.optimizer=adam"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "warning" in ln]
    momentum = next(i for i, ln in enumerate(tiny.read_text().splitlines(), 1) if "momentum:" in ln)
    assert lines[0].startswith(f"{tiny}:{momentum}:") and lines[0].endswith(
        "warning: train.momentum 0.9 is SGD's; adam does not use it"), lines
    assert main(["check", str(tiny)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_check_fails_with_status_1_on_a_wrong_gradient(tmp_path, capsys, monkeypatch):
    testing = pytest.importorskip("paracnn.testing")
    from paracnn.layers.relu import ReLU
    monkeypatch.setattr(ReLU, "backward", lambda self, dy: [2.0 * g for g in dy])
    assert main(["check", str(REPO / "configs/tiny.yaml")]) == 1
    assert "gradient check: FAILED" in capsys.readouterr().err
    assert issubclass(testing.GradientCheckError, AssertionError)


def test_layers_command(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    for name in ("conv2d", "maxpool2d", "dense", "flatten", "dropout"):
        assert name in out
    assert "paracnn.layers.conv2d:Conv2d" in out
    assert main(["layers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["layers"]}
    assert rows["dense"]["distribution"] == "paracnn" and rows["dense"]["version"] == __version__
    assert rows["conv2d"]["description"].startswith("2-D convolution")


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"paracnn {__version__}"
    for command in ("layers", "summary", "check", "train", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out
    assert main([]) == 2


@pytest.fixture
def fake_train(monkeypatch):
    calls = []
    module = types.ModuleType("paracnn.train")

    def train_from_cli(args, config):
        calls.append(("train", args, config))
        return 0

    def evaluate_from_cli(args):
        calls.append(("evaluate", args))
        return 0

    module.train_from_cli, module.evaluate_from_cli = train_from_cli, evaluate_from_cli
    monkeypatch.setitem(sys.modules, "paracnn.train", module)
    return calls


def test_train_delegates_with_flags_as_overrides(fake_train, tmp_path):
    args = ["train", str(REPO / "configs/tiny.yaml"), "--workers", "3", "--start-method", "spawn",
            "--data-dir", str(tmp_path), "--run-dir", "runs/x", "--no-progress", "--set", "train.epochs=4"]
    assert main(args) == 0
    (_, ns, config), = fake_train
    t = config.data["train"]
    assert (t["workers"], t["start_method"], t["epochs"]) == (3, "spawn", 4)
    assert config.data["data"]["dir"] == str(tmp_path)
    assert (ns.run_dir, ns.no_progress, ns.resume) == ("runs/x", True, None)


def test_train_flag_errors_cite_the_flag(fake_train, capsys):
    assert main(["train", str(REPO / "configs/tiny.yaml"), "--workers", "5000"]) == 2
    assert capsys.readouterr().err == "--workers 5000: train.workers must be <= 1024, got 5000\n"
    assert fake_train == []


def test_evaluate_delegates(fake_train):
    assert main(["evaluate", "--checkpoint", "c.json", "--json", "--workers", "2"]) == 0
    (_, ns), = fake_train
    assert (ns.checkpoint, ns.json, ns.workers) == ("c.json", True, 2)


def test_keyboard_interrupt_exits_130(fake_train, monkeypatch, capsys):
    def interrupted(args, config):
        raise KeyboardInterrupt
    monkeypatch.setattr(sys.modules["paracnn.train"], "train_from_cli", interrupted)
    assert main(["train", str(REPO / "configs/tiny.yaml")]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_train_resume_without_config(fake_train, capsys):
    assert main(["train", "--resume", "runs/x", "--workers", "2"]) == 0
    (_, ns, config), = fake_train
    assert config is None and ns.resume == "runs/x" and ns.workers == 2
    assert main(["train"]) == 2
    assert "train needs a CONFIG file" in capsys.readouterr().err
    assert main(["train", "--resume", "runs/x", "--set", "train.lr=1"]) == 2
    assert "--set needs a CONFIG; runs/x/config.yaml does not exist" in capsys.readouterr().err


def test_train_resume_with_set_uses_the_runs_config(fake_train, tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "configs/tiny.yaml").read_text())
    assert main(["train", "--resume", str(tmp_path), "--set", "train.epochs=5"]) == 0
    (_, ns, config), = fake_train
    assert config.path == str(tmp_path / "config.yaml") and config.data["train"]["epochs"] == 5


def test_layers_prints_plain_text_not_rest(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "Fully connected layer: y = W x + b (PyTorch's Linear)." in out
    assert "``" not in out and ":class:" not in out


def test_evaluate_accepts_the_checkpoint_positionally_or_by_flag(fake_train, capsys):
    assert main(["evaluate", "c.json", "--set", "data.test_limit=100"]) == 0
    assert main(["evaluate", "--checkpoint", "c.json"]) == 0
    (_, first), (_, second) = fake_train
    assert first.checkpoint == second.checkpoint == "c.json"
    assert first.overrides == ["data.test_limit=100"] and first.workers is None
    assert main(["evaluate", "a.json", "--checkpoint", "b.json"]) == 2
    assert "two checkpoints given" in capsys.readouterr().err


def test_workers_auto_is_recommended_in_every_help(capsys):
    for command in ("train", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "auto (recommended" in " ".join(capsys.readouterr().out.split())
