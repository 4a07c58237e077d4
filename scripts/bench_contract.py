"""What the layer contract costs: ``check_model_contract`` against one training sample.

Usage::

    python scripts/bench_contract.py [--config configs/lenet.yaml] [--repeats 7]

Runs the contract check (what ``paracnn check`` and the first training step
run) and one ``train_sample`` (forward, loss, backward, gradient sync) in turn,
``--repeats`` times, on a random input, and prints both medians and their
ratio. Also confirms that the check left the weights bit-identical.
"""

import argparse
import math
import random
import statistics
import time

from paracnn.config import load_config
from paracnn.contract import check_model_contract
from paracnn.training.step import weights_hash


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/lenet.yaml")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    config = load_config(args.config)
    model = config.build_model()
    x = [random.Random(0).uniform(-0.5, 0.5) for _ in range(math.prod(model.input_shape))]
    before = weights_hash(model.get_weights())
    checks, samples = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        check_model_contract(model, x, config=config)
        checks.append(time.perf_counter() - start)
        model.zero_grad()
        start = time.perf_counter()
        model.train_sample(x, 0, seed=1)
        model.get_grads()
        samples.append(time.perf_counter() - start)
    model.zero_grad()
    check, sample = statistics.median(checks), statistics.median(samples)
    print(f"{args.config}: contract check {check * 1000:.0f} ms, one training sample "
          f"{sample * 1000:.0f} ms (medians of {args.repeats}); ratio {check / sample:.1f}; "
          f"weights unchanged: {weights_hash(model.get_weights()) == before}")


if __name__ == "__main__":
    main()
