"""The layers work in worker processes started with ``spawn``: they pickle, and nothing else is needed."""

import multiprocessing
import pickle
import random

import pytest

from paracnn.config import config_from_dict
from paracnn_extras.leaky_relu import LeakyReLU
from paracnn_extras.pointwise_conv import PointwiseConv
from paracnn_extras.prelu import PReLU
from paracnn_extras.residual import Residual

# What a worker does with a layer, run in a fresh interpreter. The child's target
# is the builtin exec, so it imports nothing of this test module: every import
# it needs comes from unpickling the layers.
CHILD = """
import pickle, sys
out = []
for blob, x, dy in jobs:
    layer = pickle.loads(blob)
    y = layer.forward(x)
    dx = layer.backward(dy)
    layer.sync_grads()
    out.append((y, dx, {name: list(g) for name, g in layer.grads.items()}))
conn.send((out, sorted(m for m in sys.modules if m.startswith("paracnn_extras"))))
"""


def run(layer, x, dy):
    y = layer.forward(list(x))
    dx = layer.backward(list(dy))
    layer.sync_grads()
    return y, dx, {name: list(g) for name, g in layer.grads.items()}


def test_every_example_runs_identically_in_a_spawned_child():
    jobs = []
    for cls in (LeakyReLU, PReLU, PointwiseConv, Residual):
        for config, shape in cls.examples:
            layer = cls(**config)
            out_shape = layer.build(shape, random.Random(0))
            layer.training, layer.seed = True, 42  # exercises the residual's inner dropout
            rng = random.Random(1)
            x = [rng.uniform(-1, 1) for _ in range(_size(shape))]
            dy = [rng.uniform(-1, 1) for _ in range(_size(out_shape))]
            jobs.append((pickle.dumps(layer), x, dy))
    expected = [run(pickle.loads(blob), x, dy) for blob, x, dy in jobs]

    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=exec, args=(CHILD, {"jobs": jobs, "conn": sender}))
    child.start()
    try:
        assert receiver.poll(120), "the spawned child sent nothing back"
        got, imported = receiver.recv()
    finally:
        child.join(30)
    assert child.exitcode == 0
    assert got == expected
    assert {"paracnn_extras.residual", "paracnn_extras.prelu"} <= set(imported)


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


CONFIG = {
    "model": {"input_shape": [1, 6, 6], "layers": [
        {"type": "residual", "layers": [
            {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same"},
            {"type": "prelu", "num_parameters": 3},
            {"type": "dropout", "rate": 0.25},
            {"type": "pointwise_conv", "filters": 2}]},
        {"type": "leaky_relu", "alpha": 0.1},
        {"type": "flatten"},
        {"type": "dense", "units": 3}]},
    "data": {"dataset": "synthetic",
             "synthetic": {"train_size": 48, "test_size": 8, "image_shape": [1, 6, 6], "num_classes": 3}},
    "train": {"batch_size": 8, "lr": 0.1, "momentum": 0.9, "seed": 3},
}


def test_training_with_spawned_workers_matches_in_process(tmp_path):
    train = pytest.importorskip("paracnn.train").train
    results = {}
    for workers, method in ((0, None), (2, "spawn")):
        results[workers] = train(config_from_dict(CONFIG), workers=workers, start_method=method,
                                 run_dir=tmp_path / f"w{workers}", max_steps=3, progress=False,
                                 log=lambda line: None)
    assert results[2]["workers"] == 2
    assert results[0]["steps"] == results[2]["steps"] == 3
    assert results[0]["weights_sha256"] == results[2]["weights_sha256"]
    assert results[0]["weights"] != list(config_from_dict(CONFIG).build_model().get_weights())
