"""Tiny configs and helpers shared by the parallel and training tests."""

import copy
import os
import select
import time
from pathlib import Path

from paracnn.config import config_from_dict
from paracnn.data import load_datasets
from paracnn.layers.dense import Dense
from paracnn.layers.flatten import Flatten
from paracnn.model import Sequential

REPO = Path(__file__).resolve().parents[2]


def tiny_dict(**train):
    """A dense net with dropout on 1x8x8 synthetic data, 4 classes: 96 train (24 held out), 32 test.

    Every optimiser feature is on, so determinism tests cover them all.
    """
    cfg = {
        "model": {"input_shape": [1, 8, 8], "layers": [
            {"type": "flatten"},
            {"type": "dense", "units": 12},
            {"type": "relu"},
            {"type": "dropout", "rate": 0.25},
            {"type": "dense", "units": 4}]},
        "data": {"dataset": "synthetic", "validation": 0.25,
                 "synthetic": {"train_size": 96, "test_size": 32, "image_shape": [1, 8, 8],
                               "num_classes": 4}},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.1, "momentum": 0.9, "nesterov": True,
                  "weight_decay": 1e-4, "clip_grad_norm": 5.0,
                  "schedule": {"type": "cosine", "min_lr": 0.001}, "seed": 3},
    }
    cfg["train"].update(train)
    return cfg


def tiny_config(**train):
    return config_from_dict(copy.deepcopy(tiny_dict(**train)))


def conv_dict(**train):
    """A tiny conv net (conv, relu, maxpool, flatten, dense) on 1x8x8 synthetic data."""
    cfg = tiny_dict(**train)
    cfg["model"]["layers"] = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 4}]
    return cfg


def quiet(line):
    pass


def read_line(pipe, timeout=120):
    """The next line a child writes to ``pipe`` (opened with ``text=True``), as ``str``.

    Fails the test after ``timeout`` seconds without a whole line, where
    ``pipe.readline()`` would hang CI for ever on a child that stalls. It reads
    the raw pipe one byte at a time, so nothing past the line is taken from a
    later ``communicate()``; do not mix it with ``pipe.readline()``. The timeout
    is a liveness bound, not a speed requirement. POSIX only (``select`` on a pipe).
    """
    fd, line = pipe.fileno(), bytearray()
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"the child wrote no whole line within {timeout} s (got {bytes(line)!r})")
        byte = os.read(fd, 1)
        if not byte:
            break  # end of file: the child closed its output
        line += byte
    return line.decode()


def shm_exists(name):
    return os.path.exists(f"/dev/shm/{name.lstrip('/')}")


def pid_alive(pid):
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


DATA = {"dataset": "synthetic", "synthetic": {"train_size": 40, "test_size": 8,
                                               "image_shape": [1, 4, 4], "num_classes": 3}}


def model_with(*extra):
    """Flatten, ``extra`` layers, Dense(3), built: for 1x4x4 synthetic data."""
    layers = [Flatten(), *extra, Dense(units=3)]
    model = Sequential(layers, (1, 4, 4))
    model.build(seed=0)
    return model


def datasets():
    """``{"train": 40 samples, "test": 8}`` of 1x4x4 synthetic images, 3 classes."""
    sets = load_datasets(DATA, seed=0)
    return {"train": sets.train, "test": sets.test}
