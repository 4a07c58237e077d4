import pickle
import random
from array import array

import pytest

from paracnn.errors import ConfigError, ShapeError
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense
from paracnn.layers.dropout import Dropout
from paracnn.layers.flatten import Flatten
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.layers.relu import ReLU
from paracnn.model import Sequential
from paracnn.testing import check_model


def lenet():
    layers = [Conv2d(6, 5), ReLU(), MaxPool2d(2), Conv2d(16, 5), ReLU(), MaxPool2d(2), Flatten(),
              Dense(120), ReLU(), Dense(84), ReLU(), Dense(10)]
    return Sequential(layers, (1, 28, 28))


def small(dropout=0.0):
    layers = [Conv2d(3, 3), ReLU(), MaxPool2d(2), Flatten(), Dropout(dropout), Dense(5)]
    return Sequential(layers, (1, 8, 8), ["conv2d", "relu", "maxpool2d", "flatten", "dropout", "dense"])


def test_lenet_has_44426_parameters_and_shapes():
    m = lenet()
    assert m.build(seed=0) == (10,)
    assert m.num_params() == 44426
    assert m.shapes[5] == (16, 4, 4) and m.shapes[6] == (256,)


def test_same_seed_same_weights_and_layer_rngs_are_independent():
    a, b = small(), small()
    a.build(seed=3)
    b.build(seed=3)
    assert a.get_weights() == b.get_weights()
    c = small()
    c.build(seed=4)
    assert c.get_weights() != a.get_weights()
    # Appending a layer does not change the weights of the layers before it.
    d = Sequential(small().layers + [ReLU(), Dense(2)], (1, 8, 8))
    d.build(seed=3)
    assert d.layers[0].params == a.layers[0].params


def test_flat_weights_round_trip():
    m = small()
    m.build(seed=0)
    w = m.get_weights()
    assert isinstance(w, array) and len(w) == m.num_params()
    m.set_weights(array("d", [0.5] * len(w)))
    assert m.layers[0].params["weight"] == [0.5] * 27
    m.set_weights(memoryview(w))
    assert m.get_weights() == w
    with pytest.raises(ValueError):
        m.set_weights([0.0])


def test_grads_accumulate_over_samples_and_zero():
    m = small()
    m.build(seed=0)
    rng = random.Random(0)
    x = [rng.random() for _ in range(64)]
    m.train_sample(x, 1, seed=0)
    once = m.get_grads()
    m.train_sample(x, 1, seed=0)
    twice = m.get_grads()
    assert all(abs(2 * a - b) <= 1e-12 * max(1.0, abs(b)) for a, b in zip(once, twice))
    m.zero_grad()
    assert not any(m.get_grads())


def test_whole_model_gradient_check_with_dropout():
    m = small(dropout=0.3)
    m.build(seed=1)
    report = check_model(m, label=2, seed=5)
    assert report.max_rel_error() < 1e-4
    assert len(report.checked) == 4   # conv weight, conv bias, dense weight, dense bias


def test_dropout_seed_differs_per_sample_but_not_per_process():
    m = small(dropout=0.5)
    m.build(seed=0)
    rng = random.Random(0)
    x = [rng.uniform(-1, 1) for _ in range(64)]
    a = m.forward(x, training=True, seed=1)
    b = pickle.loads(pickle.dumps(m)).forward(x, training=True, seed=1)
    c = m.forward(x, training=True, seed=2)
    assert a == b and a != c
    assert m.forward(x) == m.forward(x, training=False, seed=9)


def test_shape_error_names_the_layer():
    m = Sequential([Conv2d(4, 3), Dense(10)], (1, 8, 8), ["conv2d", "dense"])
    with pytest.raises(ShapeError) as e:
        m.build()
    assert str(e.value) == ("layers[1] dense expects a flat input but gets (4, 6, 6); "
                            "add a flatten layer before it")
    assert e.value.key == ("layers", 1)


def test_from_config_reports_key_paths():
    resolve = {"conv2d": Conv2d, "dense": Dense, "flatten": Flatten}.__getitem__
    cfg = {"input_shape": [1, 8, 8], "layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3},
                                                 {"type": "flatten"},
                                                 {"type": "dense", "units": -1}]}
    with pytest.raises(ConfigError) as e:
        Sequential.from_config(cfg, resolve)
    assert e.value.key == ("layers", 2, "units")
    assert "layers[2] dense: units must be >= 1" in str(e.value)
    cfg["layers"][2]["units"] = 3
    m = Sequential.from_config(cfg, resolve)
    m.build()
    assert m.get_config() == {"input_shape": [1, 8, 8], "layers": [
        {"type": "conv2d", "filters": 2, "kernel_size": [3, 3], "stride": [1, 1], "padding": "valid",
         "bias": True, "init": "he_uniform", "bias_init": "zeros"},
        {"type": "flatten"},
        {"type": "dense", "units": 3, "bias": True, "init": "he_uniform", "bias_init": "zeros"}]}


def test_summary_rows():
    m = lenet()
    m.build()
    rows = m.summary()
    assert rows[0] == {"index": 0, "type": "conv2d", "output_shape": [6, 24, 24], "params": 156,
                       "macs": 86400}
    assert sum(r["params"] for r in rows) == 44426


def test_each_layer_gets_its_pinned_per_sample_seed_in_training_and_in_the_contract_check(monkeypatch):
    # The per-layer seed fixes every dropout mask and so every trained weight: pinned here
    # (computed once by its rule), and the contract check must seed the layers as training does.
    from paracnn.contract import check_model_contract
    from paracnn.model import layer_seed
    assert [layer_seed(5, i) for i in range(3)] == [5000015, 5000016, 5000017]
    assert layer_seed(2 ** 62, 4) == 4611699853485443186163716  # big ints: no wrap-around
    seen = []
    forward = Dropout.forward

    def recording(self, x):
        seen.append(self.seed)
        return forward(self, x)

    monkeypatch.setattr(Dropout, "forward", recording)
    m = small(dropout=0.5)
    m.build(seed=0)
    x = [random.Random(1).uniform(-1, 1) for _ in range(64)]
    m.train_sample(x, 2, seed=7)
    assert seen == [layer_seed(7, 4)] == [7000025]
    seen.clear()
    check_model_contract(m, x, seed=7)
    assert seen and set(seen) == {7000025}
