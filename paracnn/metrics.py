"""Evaluation metrics: accuracy, confusion matrix, per-class precision/recall/F1.

The confusion matrix is indexed ``cm[true][pred]`` (rows are true classes,
like scikit-learn). A class that is never predicted has precision 0, one that
never occurs has recall 0 (scikit-learn's ``zero_division=0``).
"""


def confusion_matrix(labels, preds, num_classes):
    """``cm[t][p]`` = number of samples of true class ``t`` predicted as ``p``.

    Example::

        >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2)
        [[1, 0], [1, 1]]
    """
    cm = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(labels, preds):
        cm[t][p] += 1
    return cm


def per_class(cm):
    """One dict per class: ``class``, ``precision``, ``recall``, ``f1``, ``support``."""
    k = len(cm)
    out = []
    for c in range(k):
        tp = cm[c][c]
        predicted = sum(cm[t][c] for t in range(k))
        support = sum(cm[c])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append({"class": c, "precision": precision, "recall": recall, "f1": f1,
                    "support": support})
    return out


def classification_report(labels, preds, num_classes, loss_sum=None, class_names=None):
    """Everything ``eval.json`` holds for one split.

    Returns a dict with ``samples``, ``accuracy``, ``loss`` (mean, when
    ``loss_sum`` is given), ``confusion_matrix``, ``per_class`` and the
    ``macro_avg`` / ``weighted_avg`` of precision, recall and F1.
    """
    labels, preds = list(labels), list(preds)
    n = len(labels)
    cm = confusion_matrix(labels, preds, num_classes)
    classes = per_class(cm)
    if class_names:
        for row, name in zip(classes, class_names):
            row["name"] = name
    correct = sum(cm[c][c] for c in range(num_classes))
    report = {"samples": n, "accuracy": correct / n if n else 0.0}
    if loss_sum is not None:
        report["loss"] = loss_sum / n if n else 0.0
    report["confusion_matrix"] = cm
    report["per_class"] = classes
    report["macro_avg"] = {key: sum(r[key] for r in classes) / num_classes if num_classes else 0.0
                           for key in ("precision", "recall", "f1")}
    report["weighted_avg"] = {key: sum(r[key] * r["support"] for r in classes) / n if n else 0.0
                              for key in ("precision", "recall", "f1")}
    return report


def format_report(report, title="evaluation"):
    """A human-readable table of a :func:`classification_report`.

    Class names are printed in full (Fashion-MNIST's ``T-shirt/top``, ``Ankle
    boot``). The confusion matrix names its axes: one row per true class (its
    number and name), one column per predicted class (its number).

    Example (the end of a two-class report)::

        confusion matrix (rows: true class, columns: predicted class)
        true \\ predicted   0   1
        0 cat              1   0
        1 dog              1   0
    """
    lines = [f"{title}: {report['samples']} samples, accuracy {report['accuracy']:.4f}"
             + (f", loss {report['loss']:.4f}" if "loss" in report else "")]
    names = [str(r.get("name", r["class"])) for r in report["per_class"]]
    width = max([len("weighted")] + [len(name) for name in names])
    lines.append(f"{'class':>{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for name, r in zip(names, report["per_class"]):
        lines.append(f"{name:>{width}} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1']:9.4f} "
                     f"{r['support']:8d}")
    for key in ("macro_avg", "weighted_avg"):
        a = report[key]
        lines.append(f"{key.replace('_avg', ''):>{width}} {a['precision']:9.4f} {a['recall']:9.4f} "
                     f"{a['f1']:9.4f} {report['samples']:8d}")
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    lines += _matrix_lines(report["confusion_matrix"], names)
    return "\n".join(lines)


def _matrix_lines(cm, names):
    """The confusion matrix under a ``true \\ predicted`` header of predicted-class numbers."""
    labels = [f"{t} {name}" if name != str(t) else str(t) for t, name in enumerate(names)]
    corner = "true \\ predicted"
    label_width = max([len(corner)] + [len(label) for label in labels])
    cell = max(3, len(str(len(cm) - 1)), len(str(max((max(row) for row in cm), default=0))))
    out = [f"{corner:<{label_width}} " + " ".join(f"{p:>{cell}d}" for p in range(len(cm)))]
    for label, row in zip(labels, cm):
        out.append(f"{label:<{label_width}} " + " ".join(f"{v:>{cell}d}" for v in row))
    return out
