"""Checkpoints: exact round trip, atomic writes, clear errors for bad files."""

import json
import random

import pytest

from paracnn.checkpoint import (SCHEMA, load_checkpoint, resolve_checkpoint_path,
                                run_dir_of, save_checkpoint)
from paracnn.errors import CheckpointError


def awkward_floats(n=200):
    rng = random.Random(0)
    values = [rng.gauss(0, 1) * 10 ** rng.randint(-300, 300) for _ in range(n)]
    return values + [0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, 2.0 ** -1074]


def save(path, weights, **kw):
    return save_checkpoint(path, config={"train": {"seed": 1}}, weights=weights,
                           optimizer={"type": "sgd", "momentum_buffer": list(weights)},
                           epoch=2, step=17, **kw)


def test_round_trip_is_bit_exact(tmp_path):
    w = awkward_floats()
    save(tmp_path / "c.json", w, step_in_epoch=3, metrics={"epoch": 2}, progress={"loss_sum": 0.1})
    state = load_checkpoint(tmp_path / "c.json", num_params=len(w))
    assert state["schema"] == SCHEMA == 1
    assert [x.hex() for x in state["weights"]] == [float(x).hex() for x in w]
    assert state["optimizer"]["momentum_buffer"] == w
    assert (state["epoch"], state["step"], state["step_in_epoch"]) == (2, 17, 3)
    assert state["config"] == {"train": {"seed": 1}} and state["rng"] is None
    assert state["progress"] == {"loss_sum": 0.1}


def test_newer_schema_is_a_clear_error(tmp_path):
    path = tmp_path / "c.json"
    save(path, [1.0])
    state = json.loads(path.read_text())
    state["schema"] = 2
    path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="schema 2, newer than .* upgrade paracnn"):
        load_checkpoint(path)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "has no 'schema' field"),
    ('{"schema": 1, "config": {}, "weights": [1.0, NaN], "epoch": 0, "step": 0}', r"weights\[1\] is nan"),
    ('{"schema": 1, "config": {}, "weights": [1.0, "x"], "epoch": 0, "step": 0}', "finite number"),
    ('{"schema": 1, "config": {}, "epoch": 0, "step": 0}', "missing 'weights'"),
])
def test_damaged_files(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_weights_must_fit_the_model(tmp_path):
    save(tmp_path / "c.json", [1.0, 2.0])
    with pytest.raises(CheckpointError, match="holds 2 weights but the model has 3"):
        load_checkpoint(tmp_path / "c.json", num_params=3)
    with pytest.raises(CheckpointError, match="does not exist$"):
        load_checkpoint(tmp_path / "missing.json")
    # a run without a validation split keeps no best.json: the error says so and names last.json
    with pytest.raises(CheckpointError, match=r"best.json does not exist; only a run with a "
                                              r"validation split .* use .*checkpoints/last.json$"):
        load_checkpoint(tmp_path / "checkpoints" / "best.json")


def test_diverged_weights_are_not_saved(tmp_path):
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        save(tmp_path / "c.json", [float("inf")])
    assert not (tmp_path / "c.json").exists()


def test_run_folders(tmp_path):
    run = tmp_path / "run"
    save(run / "checkpoints" / "last.json", [1.0])
    assert resolve_checkpoint_path(run) == run / "checkpoints" / "last.json"
    assert run_dir_of(run / "checkpoints" / "last.json") == run.resolve()
    assert run_dir_of(tmp_path / "loose.json") is None
    assert load_checkpoint(run)["weights"] == [1.0]
    with pytest.raises(CheckpointError, match="without checkpoints/last.json"):
        resolve_checkpoint_path(tmp_path)


def test_a_checkpoint_past_the_size_limit_is_refused_by_its_size_without_reading_it(tmp_path, monkeypatch):
    from paracnn import checkpoint
    path = tmp_path / "last.json"
    save(path, [1.0] * 100)
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", path.stat().st_size - 1)
    with pytest.raises(CheckpointError, match=rf"is {path.stat().st_size:,} bytes, more than paracnn's "
                                              rf"limit of {path.stat().st_size - 1:,} for a checkpoint"):
        load_checkpoint(path)


def test_a_huge_sparse_file_is_refused_at_its_first_byte(tmp_path, monkeypatch):
    from paracnn import checkpoint
    path = tmp_path / "last.json"
    with open(path, "wb") as f:
        f.truncate(64 << 20)  # sparse: no disk, all zero bytes
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 1 << 30)
    reads = []
    real_open = open

    def counting_open(*args, **kwargs):
        f = real_open(*args, **kwargs)
        real_read = f.read
        f.read = lambda n=-1: reads.append(n) or real_read(n)
        return f
    monkeypatch.setattr("builtins.open", counting_open)
    with pytest.raises(CheckpointError, match=r"is not text \(not UTF-8\); it is damaged"):
        load_checkpoint(path)
    assert -1 not in reads  # never read whole


def test_a_checkpoints_download_mirror_is_never_followed(tmp_path):
    path = tmp_path / "last.json"
    save_checkpoint(path, config={"data": {"dataset": "mnist", "mirror": "http://elsewhere.example/"}},
                    weights=[1.0], optimizer=None, epoch=1, step=2)
    assert load_checkpoint(path)["config"]["data"]["mirror"] is None
