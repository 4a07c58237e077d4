"""The PyPy kernels (paracnn.jit_kernels) against the CPython ones, on whichever interpreter runs.

The layers pick their kernels by ``paracnn.kernels.JIT`` when they build, so
each test flips it before building: both paths run under CPython and PyPy alike.
"""

import platform
import random
import sys

import pytest

from paracnn import kernels as K
from paracnn.layers.avgpool2d import AvgPool2d
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense
from paracnn.layers.flatten import Flatten
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.layers.relu import ReLU
from paracnn.model import Sequential
from paracnn.registry import get_registry
from paracnn.testing import check_layer

#: the layers with a JIT path of their own
JIT_LAYERS = ("conv2d", "dense", "maxpool2d")

# NOTE: from 3.12 on, sum() of floats is compensated and sumprod rounds on its own,
# so the CPython kernels no longer add the way the JIT ones (and 3.11's sum) do.
SAME_BITS = platform.python_implementation() == "PyPy" or sys.version_info < (3, 12)


@pytest.fixture(params=[False, True], ids=["c-kernels", "jit-kernels"])
def jit(request, monkeypatch):
    monkeypatch.setattr(K, "JIT", request.param)
    return request.param


@pytest.mark.parametrize("name", JIT_LAYERS)
def test_every_example_of_a_layer_with_jit_kernels_passes_check_layer(name, jit):
    cls = get_registry().resolve(name)
    for config, shape in cls.examples:
        report = check_layer(name, config, shape)
        assert report.max_rel_error() < 1e-5, (name, config, jit)


def small_net(jit, monkeypatch):
    monkeypatch.setattr(K, "JIT", jit)
    layers = [Conv2d(3, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(4, [3, 2], stride=[2, 1]), ReLU(),
              AvgPool2d(2), Flatten(), Dense(7), ReLU(), Dense(5, bias=False)]
    types = ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "avgpool2d", "flatten", "dense",
             "relu", "dense"]
    model = Sequential(layers, (2, 12, 12), types)
    model.build(seed=3)
    return model


def run(model, n=6):
    rng = random.Random(7)
    logits, dxs = [], []
    model.zero_grad()
    for i in range(n):
        x = [rng.uniform(-1.0, 1.0) for _ in range(2 * 12 * 12)]
        for layer in model.layers:
            x = layer.forward(x)
        logits.append(x)
        dy = [rng.uniform(-1.0, 1.0) for _ in x]
        for layer in reversed(model.layers):
            dy = layer.backward(dy)
        dxs.append(dy)
    return logits, dxs, list(model.get_grads())


def test_jit_and_c_kernels_compute_the_same_outputs_and_gradients(monkeypatch):
    c_run = run(small_net(False, monkeypatch))
    jit_run = run(small_net(True, monkeypatch))
    if SAME_BITS:
        assert jit_run == c_run
    else:
        for a, b in zip(c_run, jit_run):
            flat_a = [v for row in a for v in (row if isinstance(row, list) else [row])]
            flat_b = [v for row in b for v in (row if isinstance(row, list) else [row])]
            assert flat_b == pytest.approx(flat_a, rel=1e-9, abs=1e-12)


def test_dense_jit_path_syncs_after_max_pending_samples_like_the_c_path(monkeypatch):
    grads = []
    for jit in (False, True):
        monkeypatch.setattr(K, "JIT", jit)
        layer = Dense(3)
        layer.max_pending = 2
        layer.build((4,), random.Random(0))
        for i in range(5):
            layer.forward([0.1 * i, -0.2, 0.3, 0.4 * i])
            layer.backward([1.0, 0.0, -0.5 * i])
        layer.sync_grads()
        grads.append(layer.grads["weight"])
    if SAME_BITS:
        assert grads[0] == grads[1]
    else:
        assert grads[1] == pytest.approx(grads[0], rel=1e-12)
