"""data.label_noise: which labels change, that they change class, and that only training labels do."""

import json
from pathlib import Path

import pytest

from paracnn.config import load_config
from paracnn.data import load_datasets
from paracnn.data.label_noise import LabelChange, corrupt_labels
from paracnn.errors import ConfigError
from paracnn.train import train

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = {"dataset": "synthetic", "synthetic": {"train_size": 200, "test_size": 40,
                                                    "image_shape": [1, 4, 4], "num_classes": 5}}


def test_a_fixed_fraction_of_labels_gets_another_class_and_nothing_else_changes():
    base = load_datasets(SYNTHETIC, seed=0).train
    before = base.labels_list()
    noisy, noise = corrupt_labels(base, 0.15, seed=0)
    after = noisy.labels_list()
    assert base.labels_list() == before                  # the original set is untouched
    assert len(noise.changed) == 30 == round(0.15 * 200)
    changed = {c.index for c in noise.changed}
    assert changed == {i for i in range(200) if after[i] != before[i]}
    for c in noise.changed:
        assert (before[c.index], after[c.index]) == (c.old, c.new) and c.new != c.old
        assert 0 <= c.new < 5
    # the replacement is uniform over the other classes: every offset 1..4 turns up
    assert {(c.new - c.old) % 5 for c in noise.changed} == {1, 2, 3, 4}


def test_the_choice_is_fixed_by_the_seed():
    base = load_datasets(SYNTHETIC, seed=0).train
    a = corrupt_labels(base, 0.1, seed=7)[1].changed
    assert corrupt_labels(base, 0.1, seed=7)[1].changed == a
    assert corrupt_labels(base, 0.1, seed=8)[1].changed != a
    assert corrupt_labels(base, 0.0, seed=7) == (base, None)


def test_noise_comes_after_the_validation_split_and_never_touches_validation_or_test():
    clean = load_datasets({**SYNTHETIC, "validation": 0.25}, seed=3)
    sets = load_datasets({**SYNTHETIC, "validation": 0.25, "label_noise": 0.2}, seed=3)
    assert sets.val.labels_list() == clean.val.labels_list()
    assert sets.test.labels_list() == clean.test.labels_list()
    assert list(sets.val.indices) == list(clean.val.indices)
    noise = sets.label_noise
    assert noise.train_size == len(sets.train) == 150 and len(noise.changed) == 30
    val_positions = set(sets.val.indices)
    for c in noise.changed:
        assert c.position == sets.train.indices[c.index] and c.position not in val_positions
        assert sets.train.label(c.index) == c.new and clean.train.label(c.index) == c.old
    untouched = [i for i in range(150) if i not in {c.index for c in noise.changed}]
    assert [sets.train.label(i) for i in untouched] == [clean.train.label(i) for i in untouched]


def test_a_bad_fraction_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.label_noise must be <= 1.0, got 1.5"):
        load_config(REPO / "configs" / "tiny.yaml", ["data.label_noise=1.5"])
    with pytest.raises(ConfigError, match="data.label_noise must be >= 0.0"):
        load_datasets({**SYNTHETIC, "label_noise": -0.1})


def test_the_run_folder_records_the_changed_labels(tmp_path):
    config = load_config(REPO / "configs" / "tiny.yaml", ["train.epochs=1", "data.label_noise=0.1"])
    train(config, run_dir=tmp_path / "noisy", progress=False, log=lambda line: None)
    record = json.loads((tmp_path / "noisy" / "label_noise.json").read_text())
    expected = load_datasets(config.data["data"], seed=0).label_noise
    assert (record["fraction"], record["seed"], record["train_size"], record["count"]) == (0.1, 0, 512, 51)
    assert [LabelChange(**c) for c in record["changed"]] == expected.changed
    clean = load_config(REPO / "configs" / "tiny.yaml", ["train.epochs=1"])
    train(clean, run_dir=tmp_path / "clean", progress=False, log=lambda line: None)
    assert not (tmp_path / "clean" / "label_noise.json").exists()
