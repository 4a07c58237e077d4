"""The per-step figures of the Ray cost model in docs/distributed.md, measured.

Usage::

    python scripts/bench_ray.py [--address auto|HOST:PORT] [--repeats 20]

Prints, for LeNet-5 (``configs/lenet.yaml``): the bytes a step moves, the
medians of an actor round trip, a put of the weights, a fetch of one
gradient by the driver, the driver's slot-order reduction per slot and its
optimiser update, and the serial compute per sample. Without ``--address`` it
starts a local Ray of 2 CPUs (so transfers are local; on a cluster they
cross the network: the docs add that with the link's bandwidth).
"""

import argparse
import math
import statistics
import time
from array import array
from pathlib import Path

from paracnn.config import load_config
from paracnn.optim import make_optimizer
from paracnn.parallel.layout import SharedLayout
from paracnn.parallel.protocol import UpdateTask
from paracnn.parallel.ray_actor import connect
from paracnn.parallel.reduction import mean_of_slots

REPO = Path(__file__).resolve().parents[1]


class Echo:
    """An actor that answers at once, or with ``size`` bytes (a gradient's worth)."""

    def ping(self, payload=None):
        return payload

    def gradient(self, size):
        return bytes(size)


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", help="a Ray cluster to join (default: a local Ray)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    config = load_config(REPO / "configs/lenet.yaml")
    model = config.build_model(0)
    p, n = model.num_params(), args.repeats
    ray = connect(args.address, 2)
    actor = ray.remote(Echo).options(num_cpus=1).remote()
    ray.get(actor.ping.remote())
    weights = array("d", model.get_weights()).tobytes()
    figures = {
        "round trip": median_seconds(lambda: ray.get(actor.ping.remote()), n),
        "put weights": median_seconds(lambda: ray.put(weights), n),
        "fetch one gradient": median_seconds(lambda: ray.get(actor.gradient.remote(8 * p)), n),
    }
    slots = 8
    compute = SharedLayout(p, slots).private_compute(model, {}, make_optimizer(config.data["train"]))
    compute.grads[:] = array("d", [1e-3] * (p * slots))
    reduce8 = median_seconds(lambda: mean_of_slots(compute.grads, p, slots, 64.0, 0, p), max(3, n // 4))
    reduce1 = median_seconds(lambda: mean_of_slots(compute.grads, p, 1, 64.0, 0, p), max(3, n // 4))
    figures["reduce, per slot"] = (reduce8 - reduce1) / (slots - 1)
    figures["reduce, fixed (divide, list)"] = reduce1
    figures["update (momentum SGD), after the mean"] = median_seconds(
        lambda: compute.update(UpdateTask(0, 0, None, 64.0, 0, p, 0.01)), max(3, n // 4))
    model.zero_grad()
    x, y = [0.1] * math.prod(model.input_shape), 3
    figures["serial compute, per sample"] = median_seconds(lambda: model.train_sample(x, y, seed=0),
                                                           max(3, n // 4))
    print(f"LeNet-5: {p:,} parameters; weights and each gradient are {8 * p / 1e3:.0f} kB of float64")
    for name, seconds in figures.items():
        print(f"{name:>40}: {1e3 * seconds:8.3f} ms")
    ray.kill(actor)


if __name__ == "__main__":
    main()
