"""data.augment: shifts, jitter and noise by hand, determinism per (seed, epoch, index), and workers."""

import pickle
import random
import statistics
from pathlib import Path

import pytest

from paracnn.config import load_config
from paracnn.data import ImageSet, load_datasets, make_table
from paracnn.data.augment import Augment, augment_seed, gaussian, jittered, shifted
from paracnn.errors import ConfigError
from paracnn.train import train

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = {"dataset": "synthetic", "synthetic": {"train_size": 30, "test_size": 10,
                                                    "image_shape": [1, 6, 6], "num_classes": 3}}


def test_a_shift_moves_the_image_and_fills_background():
    img = bytes(range(1, 10))            # 1 2 3 / 4 5 6 / 7 8 9
    assert shifted(img, (1, 3, 3), 1, 0) == bytes([0, 1, 2, 0, 4, 5, 0, 7, 8])
    assert shifted(img, (1, 3, 3), -1, 1) == bytes([0, 0, 0, 2, 3, 0, 5, 6, 0])
    assert shifted(img, (1, 3, 3), 0, 0) == img
    assert shifted(img, (1, 3, 3), 3, 0) == bytes(9)       # moved out of view
    two = bytes(range(1, 9))             # two channels of 2x2
    assert shifted(two, (2, 2, 2), 0, -1) == bytes([3, 4, 0, 0, 7, 8, 0, 0])


def test_jitter_flips_on_pixels_off_and_off_pixels_fully_on():
    img = bytes([0, 10, 127, 128, 200, 255])
    assert jittered(img, 0.0, random.Random(0)) == img
    assert jittered(img, 1.0, random.Random(0)) == bytes([255, 255, 255, 0, 0, 0])
    flipped = jittered(bytes(20000), 0.3, random.Random(1))
    assert set(flipped) == {0, 255}
    assert flipped.count(255) / 20000 == pytest.approx(0.3, abs=0.01)


def test_gaussian_noise_has_mean_zero_and_the_requested_spread():
    z = gaussian(20001, 0.2, random.Random(2))
    assert len(z) == 20001
    assert statistics.fmean(z) == pytest.approx(0.0, abs=0.005)
    assert statistics.pstdev(z) == pytest.approx(0.2, rel=0.02)


def test_noise_is_added_after_normalisation():
    table = make_table("centered")
    raw = bytes(range(0, 256, 8)) * 40
    clean = [table[b] for b in raw]
    x = Augment(noise=0.1).apply(raw, table, (1, 32, 40), seed=5)
    diffs = [a - b for a, b in zip(x, clean)]
    assert statistics.pstdev(diffs) == pytest.approx(0.1, rel=0.05)


def test_each_draw_depends_on_seed_epoch_and_index_only():
    aug = Augment(jitter=0.2, shift=1, noise=0.05)
    table, raw = make_table("unit"), bytes(random.Random(3).randrange(256) for _ in range(36))
    once = aug.apply(raw, table, (1, 6, 6), augment_seed(0, 2, 7))
    assert aug.apply(raw, table, (1, 6, 6), augment_seed(0, 2, 7)) == once
    others = [augment_seed(1, 2, 7), augment_seed(0, 3, 7), augment_seed(0, 2, 8)]
    assert all(aug.apply(raw, table, (1, 6, 6), s) != once for s in others)


def test_only_the_training_set_carries_the_perturbations():
    plain = load_datasets(SYNTHETIC, seed=0)
    sets = load_datasets({**SYNTHETIC, "validation": 0.2, "augment": {"jitter": 0.25}}, seed=0)
    assert sets.train.augment == Augment(jitter=0.25)
    assert sets.val.augment is None and sets.test.augment is None
    assert plain.train.augment is None
    assert plain.train.train_sample(4, 0, 1) == plain.train.sample(4)
    x, y = sets.train.train_sample(4, 0, 1)
    clean, label = sets.train.sample(4)
    assert y == label and x != clean and len(x) == len(clean)
    assert x == sets.train.train_sample(4, 0, 1)[0]
    # the Augment travels with the set to the workers
    moved = pickle.loads(pickle.dumps(sets.train.with_buffers(None, None)))
    moved = moved.with_buffers(sets.train.images, sets.train.labels)
    assert moved.train_sample(4, 0, 1) == (x, y)


def test_bad_augment_settings_are_config_errors_at_their_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n"
                    "  input_shape: [1, 12, 12]\n"
                    "  layers: [{type: flatten}, {type: dense, units: 10}]\n"
                    "data:\n"
                    "  dataset: synthetic\n"
                    "  augment: {jitter: 0.1, shift: -1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.augment.shift must be >= 0, got -1") as e:
        load_config(path)
    assert e.value.where.endswith("c.yaml:6:26")
    with pytest.raises(ConfigError, match=r"unknown key 'jiter' in data.augment; did you mean 'jitter'"):
        load_config(REPO / "configs" / "tiny.yaml", ["data.augment.jiter=0.1"])
    with pytest.raises(ConfigError, match="data.augment.noise must be >= 0.0"):
        Augment(noise=-0.1)
    with pytest.raises(ConfigError, match="unknown key 'blur' in data.augment"):
        Augment.from_config({"blur": 1})
    assert Augment.from_config({"jitter": 0.0}) is None


def _train(tmp_path, name, workers, *overrides):
    config = load_config(REPO / "configs" / "tiny.yaml", ["train.epochs=2", *overrides])
    return train(config, run_dir=tmp_path / name, workers=workers, progress=False, log=lambda line: None)


def test_workers_0_and_2_stay_bit_identical_with_jitter_and_label_noise(tmp_path):
    noisy = ("data.augment.jitter=0.1", "data.label_noise=0.1")
    serial = _train(tmp_path, "w0", 0, *noisy)
    pooled = _train(tmp_path, "w2", 2, *noisy)
    assert pooled["weights_sha256"] == serial["weights_sha256"]
    assert [r["train_loss"] for r in pooled["history"]] == [r["train_loss"] for r in serial["history"]]
    # ...and the perturbations did act, in the workers as in-process
    clean = _train(tmp_path, "clean", 0)
    assert clean["weights_sha256"] != serial["weights_sha256"]


def test_workers_0_and_2_stay_bit_identical_with_shift_and_noise(tmp_path):
    moved = ("data.augment.shift=1", "data.augment.noise=0.05", "train.epochs=1")
    assert (_train(tmp_path, "w0", 0, *moved)["weights_sha256"]
            == _train(tmp_path, "w2", 2, *moved)["weights_sha256"])
