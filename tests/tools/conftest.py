"""Trained runs that the plot, predict and export tests share (trained once per session)."""

import json

import pytest

from paracnn.config import config_from_dict
from paracnn.train import train

from ..conftest import real_data_dir

#: a small conv net: about 90 % on MNIST after 2,000 images, trained in seconds on a quiet machine.
SMALL_MNIST = {
    "model": {"input_shape": [1, 28, 28], "layers": [
        {"type": "conv2d", "filters": 6, "kernel_size": 5, "stride": 2},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 10}]},
    "data": {"dataset": "mnist", "train_limit": 2000, "test_limit": 100, "normalize": "centered"},
    "train": {"epochs": 1, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "seed": 0},
}

TINY = {
    "model": {"input_shape": [1, 12, 12], "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 10}]},
    "data": {"dataset": "synthetic", "normalize": "centered",
             "synthetic": {"train_size": 96, "test_size": 48, "image_shape": [1, 12, 12],
                           "num_classes": 10}},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "seed": 0},
}


def quiet(line):
    pass


def write_steps(run_dir, steps_per_epoch, epochs, every=2):
    """A steps.jsonl in the format training writes: one row per ``every`` steps."""
    rows, step = [], 0
    for epoch in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            step += 1
            if step % every == 0 or step % steps_per_epoch == 0:
                rows.append({"step": step, "epoch": epoch, "loss": 2.3 / (1 + 0.1 * step),
                             "accuracy": min(1.0, 0.1 + 0.02 * step), "lr": 0.05,
                             "samples_per_second": 900.0, "seconds": 0.05 * step})
    (run_dir / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A two-epoch run on synthetic data, with a steps.jsonl; no data files needed."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    result = train(config_from_dict(TINY), workers=0, run_dir=run, progress=False, log=quiet)
    write_steps(run, steps_per_epoch=6, epochs=2)
    return run, result


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory):
    """A small network trained in-process on 2,000 real MNIST images; skips without them."""
    if real_data_dir() is None:
        pytest.skip("real MNIST not available: set PARACNN_DATA_DIR to a folder with mnist/*.gz")
    run = tmp_path_factory.mktemp("mnist") / "run"
    result = train(config_from_dict(SMALL_MNIST), workers=0, run_dir=run, progress=False, log=quiet)
    return run, result
