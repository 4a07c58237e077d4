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
    """A human-readable table of a :func:`classification_report`."""
    lines = [f"{title}: {report['samples']} samples, accuracy {report['accuracy']:.4f}"
             + (f", loss {report['loss']:.4f}" if "loss" in report else "")]
    lines.append(f"{'class':>8} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for r in report["per_class"]:
        name = str(r.get("name", r["class"]))[:8]
        lines.append(f"{name:>8} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1']:9.4f} "
                     f"{r['support']:8d}")
    for key in ("macro_avg", "weighted_avg"):
        a = report[key]
        lines.append(f"{key.replace('_avg', ''):>8} {a['precision']:9.4f} {a['recall']:9.4f} "
                     f"{a['f1']:9.4f} {report['samples']:8d}")
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    width = max(3, len(str(max((max(row) for row in report["confusion_matrix"]), default=0))))
    for t, row in enumerate(report["confusion_matrix"]):
        lines.append(f"{t:>8} " + " ".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)
