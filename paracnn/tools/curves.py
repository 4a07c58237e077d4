"""Figures of how a run went: per-step and per-epoch curves, and the confusion matrix.

Each function takes plain data (the rows of ``steps.jsonl`` and
``metrics.jsonl``, a confusion matrix) and returns a matplotlib ``Figure``,
made without pyplot so that nothing depends on a display or global state.
"""

import textwrap

from .extras import require

#: the evaluated splits of metrics.jsonl and how they are drawn.
SPLITS = (("train", "C0", "o"), ("val", "C1", "s"), ("test", "C3", "D"))


def new_figure(width, height):
    """A matplotlib Figure (Agg, no pyplot) of ``width`` × ``height`` inches."""
    Figure = require("matplotlib.figure", "paracnn plot").Figure
    return Figure(figsize=(width, height), layout="constrained")


def suptitle(fig, text, fontsize=11):
    """The figure's title, each line wrapped to the figure's width so that none is cut off."""
    # NOTE: about 9 characters of an 11-point sans-serif title fit in an inch.
    width = max(20, int(fig.get_figwidth() * 100 / fontsize))
    lines = [textwrap.fill(line, width) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def step_curves(steps, epochs):
    """Train loss and accuracy at every logged step, with the per-epoch evaluations on top.

    Args:
        steps: ``steps.jsonl`` rows (``step``, ``epoch``, ``loss``, ``accuracy``, ...).
        epochs: ``metrics.jsonl`` rows; each epoch's val/test results are drawn at its last step.
    """
    fig = new_figure(12, 4.6)
    loss_ax, acc_ax = fig.subplots(1, 2)
    xs = [r["step"] for r in steps]
    loss_ax.plot(xs, [r["loss"] for r in steps], "-", color="C0", lw=1.2,
                 label="train (mean over the steps since the previous point)")
    acc_ax.plot(xs, [100 * r["accuracy"] for r in steps], "-", color="C0", lw=1.2,
                label="train (mean over the steps since the previous point)")
    ends = _epoch_end_steps(steps, epochs)
    for split, colour, marker in SPLITS[1:]:
        points = [(ends[r["epoch"]], r) for r in epochs if f"{split}_loss" in r and r["epoch"] in ends]
        if points:
            label = f"{split} (end of each epoch)"
            loss_ax.plot([s for s, _ in points], [r[f"{split}_loss"] for _, r in points], marker,
                         color=colour, ms=8, label=label)
            acc_ax.plot([s for s, _ in points], [100 * r[f"{split}_accuracy"] for _, r in points],
                        marker, color=colour, ms=8, label=label)
    for ax in (loss_ax, acc_ax):
        for epoch, step in sorted(ends.items())[:-1]:
            ax.axvline(step, color="grey", ls=":", lw=1)
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    loss_ax.set(ylabel="cross-entropy loss", title="Loss per step")
    acc_ax.set(ylabel="accuracy (%)", title="Accuracy per step")
    suptitle(fig, f"Training, step by step ({len(steps)} points over {max(r['epoch'] for r in steps)} "
                  f"epoch(s); dotted lines: epoch boundaries)")
    return fig


def _epoch_end_steps(steps, epochs):
    """``{epoch: global step at its end}``, from the epoch records' step counts (or the step rows)."""
    ends, total = {}, 0
    for r in epochs:
        if "steps" not in r:
            break
        total += r["steps"]
        ends[r["epoch"]] = total
    else:
        return ends
    for r in steps:
        ends[r["epoch"]] = max(ends.get(r["epoch"], 0), r["step"])
    return ends


def epoch_curves(epochs, with_steps=False):
    """Loss and accuracy per epoch for train, validation and test (whichever the run has).

    ``with_steps`` says the run also has per-step rows (for the one-epoch note).
    """
    fig = new_figure(12, 4.6)
    loss_ax, acc_ax = fig.subplots(1, 2)
    xs = [r["epoch"] for r in epochs]
    for split, colour, marker in SPLITS:
        if all(f"{split}_loss" in r for r in epochs):
            name = {"train": "train (mean over the epoch's steps)", "val": "validation",
                    "test": "test"}[split]
            loss_ax.plot(xs, [r[f"{split}_loss"] for r in epochs], "-" + marker, color=colour, label=name)
            acc_ax.plot(xs, [100 * r[f"{split}_accuracy"] for r in epochs], "-" + marker, color=colour,
                        label=name)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.set_xticks(xs)
        if len(xs) == 1:
            ax.set_xlim(xs[0] - 1, xs[0] + 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    loss_ax.set(ylabel="cross-entropy loss", title="Loss per epoch")
    acc_ax.set(ylabel="accuracy (%)", title="Accuracy per epoch")
    note = ""
    if len(xs) == 1:
        note = " (one epoch: one point per curve" + ("; the per-step figure shows the curve within it)"
                                                     if with_steps else ")")
    suptitle(fig, f"Training, epoch by epoch{note}")
    return fig


def confusion_figure(cm, classes, title):
    """The confusion matrix as a heat map with the count in every cell and the class names.

    Args:
        cm: ``cm[true][predicted]`` counts.
        classes: the class names, in order.
        title: the figure title (which split, how many images, the accuracy).
    """
    k = len(classes)
    longest = max(len(c) for c in classes)
    size = max(6.0, 0.6 * k + 0.08 * longest + 2)
    fig = new_figure(size + 1.2, size)
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, label="test images", shrink=0.8)
    top = max(max(row) for row in cm) or 1
    for t in range(k):
        for p in range(k):
            n = cm[t][p]
            ax.text(p, t, str(n), ha="center", va="center", fontsize=9 if k <= 12 else 7,
                    color="white" if n > 0.55 * top else ("black" if n else "#bbbbbb"))
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    rotate = longest > 2
    ax.set_xticklabels(classes, rotation=40 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticklabels(classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return fig
