"""The synthetic dataset: deterministic, well formed, and learnable by a small model."""

import hashlib
import math
from collections import Counter

import pytest

from paracnn.data import epoch_order, load_datasets, make_synthetic
from paracnn.errors import ConfigError


def test_deterministic_from_seed_and_split():
    a = make_synthetic(50, (1, 5, 5), 10, seed=3)
    assert a == make_synthetic(50, (1, 5, 5), 10, seed=3)
    assert a != make_synthetic(50, (1, 5, 5), 10, seed=4)
    assert a[0] != make_synthetic(50, (1, 5, 5), 10, seed=3, split="test")[0]
    # Pinned: the same seed must give the same data on every Python version we support.
    assert hashlib.sha256(a[0] + a[1]).hexdigest()[:16] == "ab92ee4720b12309"


def test_shapes_and_balanced_labels():
    images, labels = make_synthetic(103, (3, 4, 5), 7, seed=0)
    assert len(images) == 103 * 60 and len(labels) == 103
    counts = Counter(labels)
    assert set(counts) == set(range(7)) and max(counts.values()) - min(counts.values()) <= 1


def test_load_datasets_uses_the_synthetic_config():
    cfg = {"dataset": "synthetic", "validation": 0.25, "normalize": "centered",
           "synthetic": {"train_size": 40, "test_size": 8, "image_shape": [2, 3, 3], "num_classes": 4}}
    sets = load_datasets(cfg, seed=7)
    assert (len(sets.train), len(sets.val), len(sets.test)) == (30, 10, 8)
    assert sets.shape == (2, 3, 3) and sets.num_classes == 4 and sets.source == "synthetic"
    x, y = sets.test.sample(0)
    assert len(x) == 18 and all(-0.5 <= v <= 0.5 for v in x) and 0 <= y < 4
    assert load_datasets(cfg, seed=7).test.sample(3) == sets.test.sample(3)


def test_defaults_fill_missing_synthetic_keys():
    sets = load_datasets({"dataset": "synthetic", "synthetic": {"train_size": 20}, "test_limit": 5})
    assert (len(sets.train), len(sets.test), sets.shape) == (20, 5, (1, 12, 12))


@pytest.mark.parametrize("syn, key", [
    ({"train_size": 0}, ("synthetic", "train_size")),
    ({"test_size": 1.5}, ("synthetic", "test_size")),
    ({"image_shape": [12, 12]}, ("synthetic", "image_shape")),
    ({"num_classes": 1}, ("synthetic", "num_classes")),
])
def test_bad_synthetic_config(syn, key):
    with pytest.raises(ConfigError) as err:
        load_datasets({"dataset": "synthetic", "synthetic": syn})
    assert err.value.key == key


def test_softmax_regression_learns_it_in_a_few_hundred_steps():
    """Plain SGD on a linear softmax model, 300 single-sample steps, beats chance (10%) by far."""
    sets = load_datasets({"dataset": "synthetic", "normalize": "centered"}, seed=0)
    k, n_in = sets.num_classes, 144
    weights = [[0.0] * n_in for _ in range(k)]
    bias = [0.0] * k
    order = epoch_order(len(sets.train), seed=0, epoch=0)
    for step in range(300):
        x, y = sets.train.sample(order[step])
        probs = _softmax([sum(map(float.__mul__, w, x)) + b for w, b in zip(weights, bias)])
        for c in range(k):
            g = 0.05 * (probs[c] - (c == y))
            weights[c] = [w - g * xi for w, xi in zip(weights[c], x)]
            bias[c] -= g
    correct = 0
    for i in range(len(sets.test)):
        x, y = sets.test.sample(i)
        scores = [sum(map(float.__mul__, w, x)) + b for w, b in zip(weights, bias)]
        correct += scores.index(max(scores)) == y
    assert correct / len(sets.test) > 0.6


def _softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    s = sum(e)
    return [v / s for v in e]
