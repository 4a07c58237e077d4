"""Per-sample cost of data.augment next to LeNet-5's training step, measured in the same run.

Usage::

    python scripts/bench_augment.py [--samples 64] [--repeats 5]

Times ``ImageSet.train_sample`` on 28x28 images with each perturbation alone
and all together, the plain ``sample`` it replaces, and LeNet-5's forward +
backward on the same samples; prints medians over the repeats in microseconds
per sample and each augmentation's extra cost as a percentage of the training
step. Also compares the Box-Muller noise with calling ``random.gauss`` per
pixel (the NOTE in ``paracnn/data/augment.py``). Images are random bytes: the
cost does not depend on the pixel values.
"""

import argparse
import platform
import random
import statistics
import time

from paracnn.data import ImageSet, make_table
from paracnn.data.augment import Augment, gaussian
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense
from paracnn.layers.flatten import Flatten
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.layers.relu import ReLU
from paracnn.model import Sequential

SETTINGS = [("jitter 0.1", Augment(jitter=0.1)), ("shift 2", Augment(shift=2)),
            ("noise 0.1", Augment(noise=0.1)), ("all three", Augment(jitter=0.1, shift=2, noise=0.1))]


def per_sample(fn, n, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    n, rng = args.samples, random.Random(0)
    images = bytes(rng.randrange(256) for _ in range(n * 784))
    labels = bytes(rng.randrange(10) for _ in range(n))
    plain = ImageSet(images, labels, (1, 28, 28), 10, "bench", table=make_table("centered"))
    model = Sequential([Conv2d(6, 5), ReLU(), MaxPool2d(2), Conv2d(16, 5), ReLU(), MaxPool2d(2),
                        Flatten(), Dense(120), ReLU(), Dense(84), ReLU(), Dense(10)], (1, 28, 28))
    model.build(seed=0)

    def step():
        model.zero_grad()
        for i in range(n):
            model.train_sample(*plain.sample(i), seed=i)

    def reading(ds):
        return lambda: [ds.train_sample(i, 0, 1) for i in range(n)]

    rows = [("sample (no augment)", per_sample(reading(plain), n, args.repeats))]
    rows += [(name, per_sample(reading(plain.with_augment(aug)), n, args.repeats))
             for name, aug in SETTINGS]
    train_us = per_sample(step, n, args.repeats)
    print(f"{platform.python_implementation()} {platform.python_version()}, {n} samples, "
          f"median of {args.repeats}")
    print(f"LeNet-5 forward+backward: {train_us:10.1f} us/sample")
    base = rows[0][1]
    for name, us in rows:
        extra = us - base
        print(f"{name:<22}{us:10.1f} us/sample  extra {extra:8.1f} us = {100 * extra / train_us:5.2f} % "
              f"of the training step")
    r = random.Random(1)
    box = per_sample(lambda: [gaussian(784, 0.1, r) for _ in range(n)], n, args.repeats)
    gauss = per_sample(lambda: [[r.gauss(0.0, 0.1) for _ in range(784)] for _ in range(n)], n,
                       args.repeats)
    print(f"784 normals: Box-Muller maps {box:.1f} us, random.gauss {gauss:.1f} us "
          f"(ratio {box / gauss:.2f})")


if __name__ == "__main__":
    main()
