"""Single-core speed of the layer kernels: per-layer times and training samples/s.

Usage::

    python scripts/bench_kernels.py [--samples 64] [--repeats 5] [--warmup N]
                                    [--net lenet5|seed000|both] [--clock wall|cpu]

For each network it runs forward, loss, backward and gradient accumulation on
a micro-batch of samples, ``--repeats`` times, and prints the median per-layer
forward/backward times in ms per sample (the table of ``paracnn profile
--layers``, from :mod:`paracnn.profiling.layers`). The last line is
``lenet5 train-step: N samples/s`` (the median over the repeats).

Under PyPy the JIT compiles the kernels during the first micro-batches, so
``--warmup`` untimed passes over the micro-batch come first (default 12 under
PyPy, 0 under CPython) and their time is printed on a line of its own.
``--clock cpu`` times with this process's CPU time instead of the wall
clock: on a host busy with other work it moves far less (the CPU time still
grows somewhat when neighbours share caches and cores).
``scripts/bench_interpreters.py`` runs this script under several
interpreters in turn and prints their ratio.

Inputs are the first MNIST test images when ``PARACNN_DATA_DIR`` points at the
real data (ReLU and max-pool sparsity then match training), else random
28×28 images in [-0.5, 0.5].
"""

import argparse
import os
import platform
import random
import sys
import time

from paracnn import kernels
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense
from paracnn.layers.flatten import Flatten
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.layers.relu import ReLU
from paracnn.model import Sequential
from paracnn.profiling.layers import format_layer_table, layer_table, time_layers

#: Untimed passes over the micro-batch before timing under PyPy. Measured on
#: LeNet-5 with 64 samples: the JIT needs 6 to 10 passes (400-600 samples) to
#: reach a steady rate, and CPython needs none (layer_table warms its caches).
JIT_WARMUP = 12


def lenet5():
    layers = [Conv2d(6, 5), ReLU(), MaxPool2d(2), Conv2d(16, 5), ReLU(), MaxPool2d(2), Flatten(),
              Dense(120), ReLU(), Dense(84), ReLU(), Dense(10)]
    types = ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d", "flatten",
             "dense", "relu", "dense", "relu", "dense"]
    return Sequential(layers, (1, 28, 28), types)


def seed000():
    init = {"type": "uniform", "low": -0.1, "high": 0.1}
    layers = [Conv2d(3, 5, bias=False, init=init), ReLU(), MaxPool2d(2), Flatten(),
              Dense(10, init=init)]
    return Sequential(layers, (1, 28, 28), ["conv2d", "relu", "maxpool2d", "flatten", "dense"])


def load_inputs(n):
    """The first n MNIST test images scaled to [-0.5, 0.5], or random ones."""
    if os.environ.get("PARACNN_DATA_DIR"):
        try:
            from paracnn.data import load_datasets
            data = load_datasets({"dataset": "mnist", "test_limit": n, "normalize": "centered",
                                  "download": False})
            return [data.test.sample(i) for i in range(n)], "MNIST test images"
        except Exception as e:  # noqa: BLE001 - the benchmark still runs on random data
            print(f"(could not read MNIST: {e}; using random images)")
    rng = random.Random(0)
    return [([rng.uniform(-0.5, 0.5) for _ in range(784)], rng.randrange(10)) for _ in range(n)], \
        "random images"


def bench(name, model, samples, repeats, warmup, clock):
    model.build(seed=0)
    if warmup:
        start = time.perf_counter()
        for _ in range(warmup):
            time_layers(model, samples)
        model.zero_grad()
        seconds = time.perf_counter() - start
        print(f"\n{name}: warm-up {warmup} x {len(samples)} samples in {seconds:.1f} s "
              f"({warmup * len(samples) / seconds:.1f} samples/s), not timed below")
    table = layer_table(model, samples, repeats, clock)
    print(f"\n{name}: {model.num_params():,} parameters, {len(samples)} samples x {repeats} repeats "
          f"(median ms per sample)")
    print("\n".join(format_layer_table(table)))
    return 1e3 / table["total_ms"][0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=64, help="micro-batch size (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported")
    parser.add_argument("--net", choices=["lenet5", "seed000", "both"], default="both")
    parser.add_argument("--warmup", type=int, default=None,
                        help=f"untimed passes first (default {JIT_WARMUP} under PyPy, else 0)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time with the wall clock (default) or this process's CPU time")
    args = parser.parse_args()
    jit = platform.python_implementation() == "PyPy"
    warmup = args.warmup if args.warmup is not None else (JIT_WARMUP if jit else 0)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    samples, source = load_inputs(args.samples)
    print(f"Python {platform.python_version()} ({sys.implementation.name}), kernels: "
          + ("paracnn.jit_kernels (plain loops)" if getattr(kernels, "JIT", False) else
             f"math.sumprod: {'yes' if kernels.HAVE_SUMPROD else 'no (fallback sum(map(mul)))'}")
          + f"; inputs: {source}; clock: {args.clock}")
    rates = {}
    if args.net in ("seed000", "both"):
        rates["seed000"] = bench("seed000 (conv 3@5x5 no bias, relu, maxpool 2, dense 10)",
                                 seed000(), samples, args.repeats, warmup, clock)
    if args.net in ("lenet5", "both"):
        rates["lenet5"] = bench("lenet5", lenet5(), samples, args.repeats, warmup, clock)
    print()
    for name, rate in rates.items():
        print(f"{name} train-step: {rate:.1f} samples/s")


if __name__ == "__main__":
    main()
