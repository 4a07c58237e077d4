"""The layer contract (``paracnn.contract``): ``paracnn check`` and the first training step catch
a layer whose dx is too short or whose gradients are assigned, naming its YAML line; good models
pass, unchanged.

The broken layers are in ``tests/faults/contract.py``, registered as a plugin's would be.
"""

import math
import pickle
import random
import re
from pathlib import Path

import pytest

from paracnn.cli import main
from paracnn.config import config_from_dict, load_config
from paracnn.contract import check_model_contract
from paracnn.errors import LayerContractError
from paracnn.testing import GradientCheckError, check_layer
from paracnn.train import train

from .conftest import skip_if_plugins_missing
from .faults import config_with
from .faults.contract import AssignsGrads, Scale, ShortDx, contract_registry
from .parallel.helpers import tiny_dict

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))

BROKEN = [
    ("short_dx", r"backward\(\) must return dx with 32 values \(got 31\)"),
    ("assigns_grads", r"backward\(\) must add into grads\['a'\], not overwrite it"),
]


@pytest.fixture
def registry(monkeypatch):
    reg = contract_registry()
    monkeypatch.setattr("paracnn.config.loaded.get_registry", lambda: reg)
    return reg


def write(tmp_path, layer_type="scale"):
    path = tmp_path / "x.yaml"
    path.write_text(config_with(f"type: {layer_type}"))
    return path


def located(name, problem):
    """The one line the contract gives: the layer's FILE:LINE:COL, position, name, problem, hint."""
    return re.compile(rf"x\.yaml:9:7: layers\[3\] {name} breaks the layer contract: {problem}[^;]*; "
                      rf"training would use wrong gradients\. Find the bug with "
                      rf"paracnn\.testing\.check_layer\('{name}', \{{\}}, input_shape=\(32,\)\)")


def test_the_broken_layers_are_broken_as_check_layer_sees_them():
    check_layer(Scale, {}, (32,))
    for cls, (_, problem) in zip((ShortDx, AssignsGrads), BROKEN):
        with pytest.raises(GradientCheckError, match=problem):
            check_layer(cls, {}, (32,))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_shipped_model_keeps_the_contract(config):
    skip_if_plugins_missing(config)
    cfg = load_config(config)
    model = cfg.build_model()
    report = check_model_contract(model, [0.25] * math.prod(model.input_shape), config=cfg)
    assert report.layers == len(model.layers)
    assert report.tensors == sum(len(layer.params) for layer in model.layers)


def test_the_check_changes_neither_the_model_nor_its_state(tmp_path, registry):
    config = load_config(write(tmp_path))
    model = config.build_model()
    model.layers[0].training, model.layers[0].seed = False, 17
    before, global_random = pickle.dumps(model), random.getstate()
    check_model_contract(model, [0.1 * i for i in range(36)], config=config)
    assert pickle.dumps(model) == before and random.getstate() == global_random


@pytest.mark.parametrize("name, problem", BROKEN)
def test_check_names_the_broken_layer_and_its_line(tmp_path, registry, capsys, name, problem):
    assert main(["check", str(write(tmp_path, name))]) == 1
    captured = capsys.readouterr()
    assert "layer contract: FAILED: " in captured.err and "Traceback" not in captured.err
    assert located(name, problem).search(captured.err), captured.err
    assert "gradient check" not in captured.out  # it stops at the first failure


def test_a_layer_that_raises_is_named_as_a_training_step_names_it(tmp_path, registry, capsys):
    assert main(["check", str(write(tmp_path, "raises"))]) == 1
    assert capsys.readouterr().err == ("paracnn: error: layers[3] raises raised ZeroDivisionError: "
                                       "division by zero (in backward)\n")


def test_check_reports_the_contract_of_a_good_model(tmp_path, registry, capsys):
    assert main(["check", str(write(tmp_path))]) == 0, capsys.readouterr().err
    assert "layer contract: ok (5 layers: output and dx lengths, gradient accumulation of 5 " \
           "parameter tensors)" in capsys.readouterr().out


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("name, problem", BROKEN)
def test_training_stops_before_the_first_step_naming_the_layer_and_its_line(
        tmp_path, registry, capsys, name, problem, workers):
    run_dir = tmp_path / "run"
    code = main(["train", str(write(tmp_path, name)), "--workers", str(workers), "--run-dir",
                 str(run_dir), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert located(name, problem).search(err), err
    assert not (run_dir / "checkpoints" / "last.json").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_training_is_bit_identical_with_and_without_the_check(tmp_path, monkeypatch, workers):
    # tiny_dict has dropout (per-sample random draws), momentum, clipping and a schedule.
    runs = []
    for name in ("checked", "unchecked"):
        runs.append(train(config_from_dict(tiny_dict()), workers=workers, run_dir=tmp_path / name,
                          progress=False, log=_quiet))
        monkeypatch.setattr("paracnn.training.step.check_model_contract", _skip)
    assert runs[0]["weights_sha256"] == runs[1]["weights_sha256"]
    assert _scores(runs[0]) == _scores(runs[1])


def test_training_checks_once_in_the_parent(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("paracnn.training.step.check_model_contract",
                        lambda model, x, **kw: calls.append((len(x), kw["seed"])))
    train(config_from_dict(tiny_dict()), workers=0, run_dir=tmp_path / "run", progress=False,
          log=_quiet)
    assert calls == [(64, 3)]


def test_the_error_is_a_located_exit_1_error():
    error = LayerContractError("layers[3] x breaks ...", key=("model", "layers", 3), where="x.yaml:9:7")
    assert error.exit_code == 1 and str(error) == "x.yaml:9:7: layers[3] x breaks ..."


def _quiet(line):
    pass


def _skip(*args, **kwargs):
    pass


def _scores(result):
    return [{k: v for k, v in r.items() if k.endswith(("_loss", "_accuracy"))}
            for r in result["history"]]
