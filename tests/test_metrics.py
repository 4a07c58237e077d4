"""Confusion matrix and per-class precision/recall/F1 against hand-worked examples."""

import pytest

from paracnn.metrics import classification_report, confusion_matrix, format_report, per_class


def test_confusion_matrix_rows_are_true_classes():
    assert confusion_matrix([0, 1, 1, 2], [0, 1, 0, 1], 3) == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]


def test_precision_recall_f1_by_hand():
    #            true: 0 0 0 1 1 2       pred: 0 0 1 1 2 2
    rep = classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 3, loss_sum=3.0)
    assert rep["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    c0, c1, c2 = rep["per_class"]
    assert (c0["precision"], c0["recall"], c0["support"]) == (1.0, 2 / 3, 3)
    assert c0["f1"] == pytest.approx(0.8)
    assert (c1["precision"], c1["recall"], c1["f1"]) == (0.5, 0.5, 0.5)
    assert (c2["precision"], c2["recall"]) == (0.5, 1.0)
    assert c2["f1"] == pytest.approx(2 / 3)
    assert rep["accuracy"] == 4 / 6 and rep["loss"] == 0.5 and rep["samples"] == 6
    assert rep["macro_avg"]["recall"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert rep["weighted_avg"]["precision"] == pytest.approx((1.0 * 3 + 0.5 * 2 + 0.5) / 6)


def test_absent_classes_score_zero_not_nan():
    rows = per_class([[2, 0], [0, 0]])
    assert rows[1] == {"class": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_format_report_names_classes():
    rep = classification_report([0, 1], [0, 0], 2, class_names=["cat", "dog"])
    text = format_report(rep, "test set")
    assert "test set: 2 samples, accuracy 0.5000" in text
    assert "cat" in text and "dog" in text and "confusion matrix" in text


def test_the_confusion_matrix_names_its_axes_and_classes_keep_their_full_names():
    names = ["T-shirt/top", "Trouser", "Ankle boot"]
    rep = classification_report([0, 1, 2, 2], [0, 1, 2, 0], 3, class_names=names)
    lines = format_report(rep, "test set").splitlines()
    rows = {line.split()[0]: line for line in lines}
    assert "T-shirt/top" in rows and "Ankle" in rows  # not cut to 8 characters
    header = lines.index("confusion matrix (rows: true class, columns: predicted class)") + 1
    assert lines[header].split() == ["true", "\\", "predicted", "0", "1", "2"]
    assert lines[header + 1].split() == ["0", "T-shirt/top", "1", "0", "0"]
    assert lines[header + 3].split() == ["2", "Ankle", "boot", "1", "0", "1"]
    # the columns line up under their header
    assert len({len(line) for line in lines[header:]}) == 1
