"""LeNet-5's training-step rate under several interpreters, interleaved, and their ratios.

Usage::

    python scripts/bench_interpreters.py [--rounds 5] \\
        [--python LABEL=INTERPRETER[@SOURCE_DIR] ...] [--ratio A/B ...] [-- BENCH_KERNELS_ARGS]

Each round runs ``scripts/bench_kernels.py --net lenet5`` once under every
interpreter, one after another, so that a busy host slows all of them alike;
every round gives the ratio of each to the first interpreter (and of any
``--ratio A/B`` pair of labels), and the last lines give the medians. ``@SOURCE_DIR`` runs another checkout of paracnn (``PYTHONPATH``)
with this script, e.g. a ``git worktree`` of an older commit for a
before/after comparison. The default compares ``pypy3`` with ``python3.12``
on this checkout. JIT warm-up is excluded as ``bench_kernels.py`` excludes it
and is reported on its own line.

Example::

    PARACNN_DATA_DIR=../shared/data python scripts/bench_interpreters.py --rounds 5 \\
        --python cpython3.12=python3.12 --python pypy=pypy3
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RATE = re.compile(r"^lenet5 train-step: ([0-9.]+) samples/s", re.M)
WARMUP = re.compile(r"^lenet5: warm-up .*\(([0-9.]+) samples/s\)", re.M)


def parse_spec(spec):
    """``LABEL=INTERPRETER[@SOURCE_DIR]`` as ``(label, interpreter, source_dir)``."""
    label, sep, rest = spec.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"--python wants LABEL=INTERPRETER[@SOURCE_DIR], not {spec!r}")
    python, _, source = rest.partition("@")
    return label, python, os.path.abspath(source) if source else ROOT


def run_once(python, source, extra):
    """One bench_kernels.py run: ``(samples/s, warm-up samples/s or None)``."""
    env = dict(os.environ, PYTHONPATH=source)
    cmd = [python, os.path.join(HERE, "bench_kernels.py"), "--net", "lenet5", *extra]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    rate = RATE.search(out.stdout)
    if out.returncode or rate is None:
        sys.exit(f"{' '.join(cmd)} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    warm = WARMUP.search(out.stdout)
    return float(rate.group(1)), float(warm.group(1)) if warm else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians are reported")
    parser.add_argument("--python", type=parse_spec, action="append", dest="pythons",
                        help="LABEL=INTERPRETER[@SOURCE_DIR]; repeat it (the first is the reference)")
    parser.add_argument("--ratio", action="append", default=[], metavar="A/B",
                        help="also report the same-round ratio of label A to label B")
    parser.add_argument("extra", nargs="*", help="arguments passed on to bench_kernels.py (after --)")
    args = parser.parse_args()
    pythons = args.pythons or [parse_spec("cpython3.12=python3.12"), parse_spec("pypy=pypy3")]
    rates = {label: [] for label, _, _ in pythons}
    ref = pythons[0][0]
    pairs = [(label, ref) for label, _, _ in pythons[1:]] + [tuple(r.split("/", 1)) for r in args.ratio]
    for a, b in pairs:
        if a not in rates or b not in rates:
            parser.error(f"--ratio {a}/{b}: both must be labels given with --python")
    ratios = {f"{a}/{b}": [] for a, b in pairs}
    for r in range(args.rounds):
        cells = []
        for label, python, source in pythons:
            rate, warm = run_once(python, source, args.extra)
            rates[label].append(rate)
            cells.append(f"{label} {rate:.1f}" + (f" (warm-up {warm:.1f})" if warm else ""))
        for a, b in pairs:
            ratios[f"{a}/{b}"].append(rates[a][-1] / rates[b][-1])
        print(f"round {r + 1}: " + ", ".join(cells) + "; "
              + ", ".join(f"{pair} {v[-1]:.2f}" for pair, v in ratios.items()), flush=True)
    print("median samples/s: " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in rates.items()))
    for pair, v in ratios.items():
        print(f"median same-round ratio {pair}: {statistics.median(v):.2f} "
              f"(range {min(v):.2f}-{max(v):.2f})")


if __name__ == "__main__":
    main()
