"""paracnn plot: every figure of a run and a self-contained report.html."""

import base64
import json
import re
import shutil
import sys

import pytest

from paracnn.cli import main
from paracnn.trained import load_model

pytest.importorskip("matplotlib")

from paracnn.tools.plot import choose_images, evaluate, plot_run  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
EVERY_FIGURE = ["curves_steps.png", "curves_epochs.png", "confusion_matrix.png", "filters_layer0.png",
                "feature_maps_0.png", "feature_maps_1.png", "feature_maps_2.png", "saliency.png",
                "predictions.png", "mistakes.png"]


def quiet(line):
    pass


@pytest.fixture(scope="module")
def plotted(tiny_run, tmp_path_factory):
    run, _ = tiny_run
    copy = tmp_path_factory.mktemp("plotted") / "run"
    shutil.copytree(run, copy)
    return copy, plot_run(copy, images=3, log=quiet)


def test_plot_writes_every_figure_as_a_png(plotted):
    run, result = plotted
    names = [f.path.name for f in result.figures]
    assert names == EVERY_FIGURE
    for f in result.figures:
        assert f.path.parent == run / "plots"
        assert f.path.read_bytes()[:8] == PNG and f.path.stat().st_size > 5000
        assert f.title and f.about


def test_report_is_one_page_with_every_figure_the_config_and_the_metrics(plotted):
    run, result = plotted
    page = result.report.read_text()
    assert result.report == run / "report.html"
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert [base64.b64decode(i) for i in images] == [f.path.read_bytes() for f in result.figures]
    assert "dataset: synthetic" in page  # the config
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in epochs:
        assert f"<td>{r['train_loss']:.4f}</td>" in page and f"<td>{r['test_accuracy']:.2%}</td>" in page
    assert "src='" not in page.replace("src='data:", "")  # nothing outside the file


def test_the_confusion_counts_are_the_trainers_own_evaluation(tiny_run):
    run, result = tiny_run
    trained = load_model(run / "checkpoints" / "last.json")
    results = evaluate(trained, trained.test_set())
    cm = [[0] * 10 for _ in range(10)]
    for t, p, prob in results:
        cm[t][p] += 1
        assert 0.1 <= prob <= 1.0
    assert cm == result["eval"]["test"]["confusion_matrix"]


def test_chosen_images_take_one_class_after_another(tiny_run):
    run, _ = tiny_run
    test = load_model(run / "checkpoints" / "last.json").test_set()
    chosen = choose_images(test, 12)
    labels = [test.label(i) for i in chosen]
    assert len(set(chosen)) == 12
    assert labels[:10] == sorted(set(labels[:10])) and len(set(labels[:10])) == 10


def test_a_run_without_steps_jsonl_plots_the_epoch_curves_and_says_so(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    copy = tmp_path / "old"
    shutil.copytree(run, copy)
    (copy / "steps.jsonl").unlink()
    assert not (copy / "checkpoints" / "best.json").exists()  # TINY holds no validation split out
    out = tmp_path / "figs"
    assert main(["plot", str(copy), "--out", str(out), "--images", "1"]) == 0
    printed = capsys.readouterr().out
    assert "no steps.jsonl" in printed and "no checkpoints/best.json; using" in printed
    assert not (out / "curves_steps.png").exists() and (out / "curves_epochs.png").is_file()
    assert (out / "feature_maps_0.png").is_file() and not (out / "feature_maps_1.png").exists()
    assert "no steps.jsonl" in (copy / "report.html").read_text()


def test_without_matplotlib_plot_is_one_line_naming_the_extra(tiny_run, capsys, monkeypatch):
    run, _ = tiny_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "paracnn[plot]"' in err


def test_plot_of_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "neither checkpoints/best.json nor checkpoints/last.json" in capsys.readouterr().err


def test_curves_draw_train_validation_and_test_where_present():
    from paracnn.tools.curves import epoch_curves, step_curves

    epochs = [{"epoch": e, "steps": 4, "train_loss": 1.0 / e, "train_accuracy": 0.5 + 0.1 * e,
               "val_loss": 1.1 / e, "val_accuracy": 0.45 + 0.1 * e,
               "test_loss": 1.2 / e, "test_accuracy": 0.4 + 0.1 * e} for e in (1, 2, 3)]
    steps = [{"step": s, "epoch": (s - 1) // 4 + 1, "loss": 2.0 / s, "accuracy": 0.05 * s, "lr": 0.1,
              "samples_per_second": 100.0, "seconds": s} for s in range(1, 13)]
    loss_ax, acc_ax = epoch_curves(epochs).axes
    assert [line.get_label() for line in loss_ax.lines] == [
        "train (mean over the epoch's steps)", "validation", "test"]
    assert list(acc_ax.lines[1].get_ydata()) == pytest.approx([55.0, 65.0, 75.0])
    loss_ax, acc_ax = step_curves(steps, epochs).axes
    labels = [line.get_label() for line in loss_ax.lines]
    assert labels[:3] == ["train (mean over the steps since the previous point)",
                          "val (end of each epoch)", "test (end of each epoch)"]
    assert list(loss_ax.lines[1].get_xdata()) == [4, 8, 12]  # each epoch's evaluation at its last step
    assert len(loss_ax.lines) == 3 + 2  # and a dotted line between epochs


def test_a_refused_run_is_left_without_a_plots_folder(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    (tmp_path / "run").mkdir()
    assert main(["plot", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert list((tmp_path / "run").iterdir()) == []


def test_plot_out_naming_a_file_is_one_line(tiny_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run, _ = tiny_run
    (tmp_path / "afile").write_text("x")
    assert main(["plot", str(run), "--out", str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err == (f"paracnn: error: {tmp_path / 'afile'} is a file, not a folder; "
                                       f"choose a folder for the figures (--out)\n")


def test_step_and_epoch_lines_with_keys_missing_or_wrong_are_left_out_and_counted(tiny_run, tmp_path):
    pytest.importorskip("matplotlib")
    run, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with open(copy / "steps.jsonl", "a") as f:
        f.write('{"step": 99}\n{"step": 100, "epoch": 2, "loss": "x", "accuracy": 0.5}\n')
    with open(copy / "metrics.jsonl", "a") as f:
        f.write('{"epoch": "3", "test_loss": 1.0}\n{"epoch": 3, "test_accuracy": null}\n')
    lines = []
    plotted = plot_run(copy, images=1, log=lines.append)
    said = "\n".join(lines)
    for name in ("steps.jsonl", "metrics.jsonl"):
        assert re.search(rf"^{name}: left out 2 of \d+ lines whose numbers are missing or not numbers "
                         rf"\(edited or damaged\)$", said, re.M)
    assert plotted.report.is_file()


def test_a_figure_that_cannot_be_written_is_one_line_naming_it(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    (tmp_path / "out" / "curves_steps.png").mkdir(parents=True)  # a folder in the way
    assert main(["plot", str(run), "--out", str(tmp_path / "out"), "--images", "1"]) == 2
    err = capsys.readouterr().err
    assert err == (f"paracnn: error: cannot write {tmp_path / 'out' / 'curves_steps.png'}: Is a directory; "
                   f"choose another --out, or free some space\n")
