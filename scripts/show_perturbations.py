"""Seed 001's Figure 6: a base, a jittered and a label-corrupted training example, as a PNG.

Usage::

    PARACNN_DATA_DIR=../shared/data python scripts/show_perturbations.py \
        [--dataset mnist] [--jitter 0.1] [--label-noise 0.1] [--seed 0] [--out perturbations.png]

All three panels show the same training sample: the first one whose label
``data.label_noise`` replaced. Left, as loaded; middle, as the training step
sees it in epoch 1 with ``data.augment.jitter``; right, the same image under
the wrong label it is trained with. The images come from the very code a run
uses (:func:`paracnn.data.load_datasets` and ``ImageSet.train_sample``).
Needs matplotlib (``pip install "paracnn[plot]"``).
"""

import argparse
import sys

from paracnn.data import load_datasets
from paracnn.errors import ParacnnError

PLOT_HINT = 'pip install "paracnn[plot]"'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "synthetic"))
    p.add_argument("--jitter", type=float, default=0.1, help="data.augment.jitter (default 0.1)")
    p.add_argument("--label-noise", type=float, default=0.1, help="data.label_noise (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="train.seed (default 0)")
    p.add_argument("--out", default="perturbations.png", help="the PNG to write")
    args = p.parse_args(argv)
    try:
        from matplotlib.figure import Figure  # NOTE: lazy: an optional extra, imported only here
    except ImportError:
        print(f"show_perturbations: matplotlib is not installed; install it with: {PLOT_HINT}",
              file=sys.stderr)
        return 2
    try:
        panels = perturbed_examples(args.dataset, args.jitter, args.label_noise, args.seed)
    except ParacnnError as e:
        print(f"show_perturbations: {e}", file=sys.stderr)
        return 2
    write_figure(Figure, panels, args.out)
    print(f"wrote {args.out}")
    return 0


def perturbed_examples(dataset, jitter, label_noise, seed):
    """``[(title, floats, (C, H, W)), ...]`` for the three panels."""
    cfg = {"dataset": dataset, "augment": {"jitter": jitter}, "label_noise": label_noise}
    sets = load_datasets(cfg, seed=seed)
    if sets.label_noise is None or not sets.label_noise.changed:
        raise ParacnnError(f"label noise {label_noise} changed no label; use --label-noise above 0")
    change = sets.label_noise.changed[0]
    names = sets.classes or [str(c) for c in range(sets.num_classes)]
    train = sets.train
    base, _ = train.sample(change.index)
    jittered, _ = train.train_sample(change.index, seed, 0)
    return [(f"base: {names[change.old]}", base, train.shape),
            (f"jitter {jitter:g}: {names[change.old]}", jittered, train.shape),
            (f"corrupted label: {names[change.new]} (true {names[change.old]})", base, train.shape)]


def write_figure(Figure, panels, path):
    """The panels side by side, as a PNG at ``path``; ``Figure`` is matplotlib's."""
    fig = Figure(figsize=(3 * len(panels), 3.4))
    for k, (title, x, (c, h, w)) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), k)
        # channel 0, on the fixed scale of data.normalize: unit (0 black, 1 white)
        ax.imshow([x[y * w:(y + 1) * w] for y in range(h)], cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Base, noisy and corrupt images (seed 001, Figure 6)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
