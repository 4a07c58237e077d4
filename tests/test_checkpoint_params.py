"""Checkpoints name and shape their tensors; loading into a model checks them."""

import json
from pathlib import Path

import pytest

from paracnn.checkpoint import check_fits, load_checkpoint, save_checkpoint
from paracnn.config import load_config
from paracnn.errors import CheckpointError
from paracnn.trained import load_model, run_checkpoint
from paracnn.train import train

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def quiet(line):
    pass


def tiny(*overrides):
    return load_config(TINY, list(overrides))


def write(path, config, model, params=True):
    return save_checkpoint(path, config=config.data, weights=model.get_weights(),
                           optimizer={"type": "sgd", "momentum_buffer": None}, epoch=1, step=3,
                           params=model.param_layout() if params else None)


def test_training_records_every_tensors_name_and_shape(tmp_path):
    train(tiny(), workers=0, run_dir=tmp_path / "run", max_steps=1, progress=False, log=quiet)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.json")
    assert state["params"] == [{"name": "0.weight", "shape": [4, 1, 3, 3]},
                               {"name": "0.bias", "shape": [4]},
                               {"name": "4.weight", "shape": [10, 100]},
                               {"name": "4.bias", "shape": [10]}]


def test_load_model_builds_the_network_and_loads_its_weights_in_one_call(tmp_path):
    config = tiny()
    model = config.build_model(seed=5)
    path = write(tmp_path / "c.json", config, model)
    trained = load_model(path)
    assert trained.model.get_weights() == model.get_weights()
    assert trained.classes == [str(c) for c in range(10)]
    assert trained.table[255] == 0.5  # the tiny config normalises to [-0.5, 0.5]
    assert (trained.epoch, trained.step, trained.path) == (1, 3, str(path))


def test_a_checkpoint_of_another_model_names_the_first_mismatching_tensor(tmp_path):
    config = tiny()
    path = write(tmp_path / "c.json", config, config.build_model())
    other = tiny("model.layers.0.filters=6").build_model()
    with pytest.raises(CheckpointError, match=r"saved from a different model: tensor 0\.weight is "
                                              r"\(4, 1, 3, 3\) in the checkpoint but \(6, 1, 3, 3\) "
                                              r"in the model"):
        check_fits(load_checkpoint(path), other)
    renamed = tiny("model.layers=[{type: conv2d, filters: 4, kernel_size: 3}, {type: relu}, "
                   "{type: relu}, {type: maxpool2d, kernel_size: 2}, {type: flatten}, "
                   "{type: dense, units: 10}]").build_model()
    with pytest.raises(CheckpointError, match=r"tensor #2 is 4\.weight \(10, 100\) in the checkpoint "
                                              r"but 5\.weight \(10, 100\) in the model"):
        check_fits(load_checkpoint(path), renamed)


def test_a_checkpoint_without_names_still_loads_and_is_checked_by_length(tmp_path):
    config = tiny()
    model = config.build_model(seed=2)
    path = write(tmp_path / "old.json", config, model, params=False)
    state = json.loads(path.read_text())
    del state["params"]  # exactly as checkpoints were before names were recorded
    path.write_text(json.dumps(state))
    assert load_model(path).model.get_weights() == model.get_weights()
    with pytest.raises(CheckpointError, match="holds 1050 weights but the model has"):
        check_fits(load_checkpoint(path), tiny("model.layers.0.filters=6").build_model())


def test_damaged_params_are_a_clear_error(tmp_path):
    config = tiny()
    path = write(tmp_path / "c.json", config, config.build_model())
    state = json.loads(path.read_text())
    state["params"][0]["shape"] = [4, 1, 3]
    path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="lists tensors of 1026 values in params but holds 1050"):
        load_checkpoint(path)
    state["params"][0] = {"name": 3}
    path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=r"params entry \{'name': 3\}"):
        load_checkpoint(path)


def test_plot_reads_best_json_and_falls_back_to_last_json_saying_so(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "last.json").write_text("{}")
    said = []
    assert run_checkpoint(tmp_path / "run", said.append) == folder / "last.json"
    assert "no checkpoints/best.json" in said[0]
    (folder / "best.json").write_text("{}")
    assert run_checkpoint(tmp_path / "run", said.append) == folder / "best.json"
    with pytest.raises(CheckpointError, match="neither checkpoints/best.json nor"):
        run_checkpoint(tmp_path, said.append)
