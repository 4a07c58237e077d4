"""``paracnn plot RUN``: every figure of a run, and ``RUN/report.html`` with all of them.

The curves come from the run's files (``steps.jsonl``, ``metrics.jsonl``);
everything else from running the model in-process on the run's test set,
with the weights of ``checkpoints/best.json`` (``last.json`` when there is
none, or ``--checkpoint``).
"""

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoint import finite_number, whole_number
from ..errors import ParacnnError
from ..files import write_atomic
from ..limits import MAX_RUN_FILE_BYTES
from ..trained import load_model, run_checkpoint
from . import curves, inside
from .extras import require
from .report import write_report

#: test images in the predictions grid, and confident mistakes shown.
GRID, MISTAKES = 36, 16


@dataclass
class Figure:
    """One written PNG: its file, title and a sentence on how to read it."""

    path: Path
    title: str
    about: str


@dataclass
class Plotted:
    """What :func:`plot_run` wrote."""

    figures: list
    report: Path
    checkpoint: str
    notes: list = field(default_factory=list)


def read_jsonl(path):
    """The JSON objects of a ``.jsonl`` file, skipping lines a crash cut short; [] if it is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    if path.stat().st_size > MAX_RUN_FILE_BYTES:
        raise ParacnnError(f"{path} is {path.stat().st_size:,} bytes, more than the "
                           f"{MAX_RUN_FILE_BYTES:,} a run writes; it is not a paracnn run file")
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def drawable(rows, required):
    """The rows holding every key of ``required``, whole numbers as counters and numbers as figures.

    A row edited by hand or damaged (a key missing, a string for a number) is left out, and
    the caller says how many, rather than the figure failing half-drawn.
    """
    def usable(row):
        return (all(k in row for k in required)
                and all(whole_number(v) for k, v in row.items() if k in ("epoch", "step", "steps"))
                and all(finite_number(v) for k, v in row.items() if k.endswith(("loss", "accuracy"))))
    return [r for r in rows if usable(r)]


def plot_run(run_dir, *, out=None, images=4, checkpoint=None, data_dir=None, log=print):
    """Write every figure of ``run_dir`` into ``out`` (default ``RUN/plots``) and ``RUN/report.html``.

    Args:
        run_dir: a folder written by ``paracnn train``.
        out: where the PNGs go.
        images: how many test images the feature-map and saliency figures show.
        checkpoint: the weights to run (default: best.json, else last.json).
        data_dir: the dataset folder, overriding the run's ``data.dir``.
        log: where progress lines go.
    """
    require("matplotlib.figure", "paracnn plot")  # NOTE: fail before any work
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ParacnnError(f"{run_dir} is not a folder; pass a run folder that paracnn train wrote")
    if images < 1:
        raise ParacnnError(f"--images must be 1 or more, not {images}")
    out = Path(out) if out else run_dir / "plots"
    if out.exists() and not out.is_dir():
        raise ParacnnError(f"{out} is a file, not a folder; choose a folder for the figures (--out)")
    notes = []

    def say(line):
        notes.append(line)
        log(line)

    path = checkpoint or run_checkpoint(run_dir, say)
    trained = load_model(path)
    epochs, steps = _records(run_dir, say)
    test = trained.test_set(data_dir)
    # NOTE: created only now that the run, its checkpoint and its data are known good: a
    # refused run is left without an empty plots/.
    out.mkdir(parents=True, exist_ok=True)
    figures = []

    def save(fig, name, title, about):
        target, png = out / name, io.BytesIO()
        fig.savefig(png, dpi=100, format="png")
        write_atomic(target, png.getvalue(), inputs=[trained.path])
        figures.append(Figure(target, title, about))

    _curves(epochs, steps, save, say)
    log(f"running {trained.path} on {len(test):,} test images in-process")
    results = evaluate(trained, test)
    _confusion(trained, test, results, save)
    _filters(trained, save)
    chosen = choose_images(test, images)
    _per_image(trained, test, results, chosen, save)
    _grids(trained, test, results, save, say)
    report = run_dir / "report.html"
    write_report(report, run_dir=run_dir, trained=trained, epochs=epochs, figures=figures, notes=notes,
                 test_accuracy=_accuracy(results))
    log(f"wrote {len(figures)} figures to {out} and {report}")
    return Plotted(figures, report, trained.path, notes)


def _records(run_dir, say):
    """The drawable epoch records and step rows of ``run_dir``, saying how many were left out."""
    epochs = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "event" not in r]  # an early stop's line
    steps = read_jsonl(run_dir / "steps.jsonl")
    good_epochs, good_steps = drawable(epochs, ("epoch",)), drawable(steps, ("step", "epoch", "loss", "accuracy"))
    for name, rows, good in (("metrics.jsonl", epochs, good_epochs), ("steps.jsonl", steps, good_steps)):
        if len(good) < len(rows):
            say(f"{name}: left out {len(rows) - len(good)} of {len(rows)} lines whose numbers are "
                f"missing or not numbers (edited or damaged)")
    return good_epochs, good_steps


def _curves(epochs, steps, save, say):
    if steps:
        save(curves.step_curves(steps, epochs), "curves_steps.png", "Loss and accuracy per step",
             "Training loss and accuracy averaged over each logged window of steps; the markers "
             "are the evaluations at the end of each epoch.")
    else:
        say("no steps.jsonl in the run folder (a run from before per-step logging): only the "
            "per-epoch curves are drawn")
    if epochs:
        save(curves.epoch_curves(epochs, bool(steps)), "curves_epochs.png", "Loss and accuracy per epoch",
             "Train (averaged over the epoch), validation and test loss and accuracy after each epoch.")
    else:
        say("no metrics.jsonl in the run folder (no epoch finished): no per-epoch curves")


def evaluate(trained, test):
    """``[(true, predicted, probability of predicted)]`` for every test image, in order."""
    model, results = trained.model, []
    for i in range(len(test)):
        x, label = test.sample(i)
        probs = model.probabilities(x)
        pred = probs.index(max(probs))
        results.append((label, pred, probs[pred]))
    return results


def _accuracy(results):
    return sum(t == p for t, p, _ in results) / max(1, len(results))


def _confusion(trained, test, results, save):
    k = len(trained.classes)
    cm = [[0] * k for _ in range(k)]
    for t, p, _ in results:
        cm[t][p] += 1
    title = (f"Confusion matrix on {len(results):,} test images ({test.name}): "
             f"accuracy {100 * _accuracy(results):.2f} %")
    save(curves.confusion_figure(cm, trained.classes, title), "confusion_matrix.png",
         "Confusion matrix", "Rows are the true classes, columns the predicted ones; the diagonal "
         "counts the correct answers.")


def _filters(trained, save):
    model = trained.model
    for n, (name, shape, values) in enumerate(inside.conv_weights(model)):
        index, _, inner = name.rsplit(".", 1)[0].partition(".")
        label = f"layer {index} ({model.types[int(index)]}{', ' + inner if inner else ''})"
        save(inside.filters_figure(label, shape, values, first=n == 0),
             f"filters_layer{name.rsplit('.', 1)[0].replace('.', '_')}.png", f"Filters of {label}",
             f"The {shape[0]} learned {shape[2]}x{shape[3]} kernels of {name}, on one colour "
             f"scale centred on 0.")


def choose_images(test, n):
    """``n`` test positions: the first image of each class in turn, then the next of each."""
    by_class = {}
    for i in range(len(test)):
        by_class.setdefault(test.label(i), []).append(i)
    order, rank = [], 0
    while len(order) < n and any(rank < len(v) for v in by_class.values()):
        order += [v[rank] for _, v in sorted(by_class.items()) if rank < len(v)]
        rank += 1
    return order[:n]


def _caption(trained, true, pred, prob):
    c = trained.classes
    return f"true {c[true]}, predicted {c[pred]} ({100 * prob:.1f} %)"


def _per_image(trained, test, results, chosen, save):
    model, shape = trained.model, trained.model.input_shape
    samples = []
    for n, i in enumerate(chosen):
        x, _ = test.sample(i)
        caption = f"test image {i}: " + _caption(trained, *results[i])
        shown = [a for a in model.activations(x)
                 if len(a.shape) == 3 and ("conv" in a.type or "pool" in a.type or
                                           _has_4d_weight(model.layers[a.index]))]
        if shown:
            save(inside.feature_maps_figure(x, shape, shown, caption), f"feature_maps_{n}.png",
                 f"Feature maps of test image {i}",
                 f"{caption}; the output of every conv and pool layer, channel by channel.")
        grad, _ = model.input_gradient(x)
        samples.append((x, grad, f"test image {i}\n" + _caption(trained, *results[i])))
    save(inside.saliency_figure(samples, shape), "saliency.png", "Saliency (input gradients)",
         "The gradient of the predicted class's logit with respect to each input pixel: raw "
         "(red raises the logit, blue lowers it) and absolute.")


def _has_4d_weight(layer):
    return any(len(s) == 4 for s in layer.param_shapes.values())


def _grids(trained, test, results, save, say):
    shape = trained.model.input_shape
    first = [(test.sample(i)[0],) + results[i] for i in range(min(GRID, len(results)))]
    wrong = sum(t != p for _, t, p, _ in first)
    save(inside.predictions_figure(first, shape, trained.classes,
                                   f"The first {len(first)} test images: true class, predicted class "
                                   f"and its probability ({wrong} misclassified, framed in red)"),
         "predictions.png", "Test predictions",
         "The first test images with the model's answer; mistakes are red.")
    mistakes = sorted((i for i, (t, p, _) in enumerate(results) if t != p),
                      key=lambda i: results[i][2], reverse=True)[:MISTAKES]
    if not mistakes:
        say("no misclassified test images: no figure of confident mistakes")
        return
    items = [(test.sample(i)[0],) + results[i] for i in mistakes]
    total = sum(t != p for t, p, _ in results)
    save(inside.predictions_figure(items, shape, trained.classes,
                                   f"The {len(items)} most confident mistakes of {total} on "
                                   f"{len(results):,} test images", cols=4),
         "mistakes.png", "Most confident mistakes",
         "Misclassified test images, the most confident first.")


def plot_from_cli(args):
    """``paracnn plot RUN [--out DIR] [--images N] [--checkpoint CKPT] [--data-dir D]``."""
    try:
        plot_run(args.run, out=args.out, images=args.images, checkpoint=args.checkpoint,
                 data_dir=getattr(args, "data_dir", None))
    except OSError as e:  # a folder or file in the way, permissions, a full disk
        where = e.filename or args.out or args.run
        raise ParacnnError(f"cannot write {where}: {e.strerror or e}; choose another --out, or free "
                           f"some space") from None
    return 0
