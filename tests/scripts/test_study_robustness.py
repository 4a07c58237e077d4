"""scripts/study_robustness.py: every run of every seed, early stopping, means and spreads, drift beyond
chance, the verdicts, reuse and resume, pass-through, the plot."""

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from paracnn.compare import compare
from paracnn.config import load_config
from paracnn.train import train

from .helpers import run_without_matplotlib

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "study_robustness.py"
TINY = str(REPO / "configs" / "tiny.yaml")
#: one seed, runs of one tiny epoch on generated data: clean, chance, jitter_20pct, corrupt_20pct.
QUICK = ["--config", TINY, "--seeds", "1", "--max-epochs", "1", "--levels", "20"]
NAMES = ["clean", "chance", "jitter_20pct", "corrupt_20pct"]
#: the study the module's tests share: two seeds, up to two epochs each.
TWO_SEEDS = ["--config", TINY, "--seeds", "2", "--max-epochs", "2", "--levels", "20"]


def _module(path=SCRIPT):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report():
    return _module(REPO / "scripts" / "robustness_report.py")


def _json(out):
    return json.loads((out / "robustness.json").read_text(encoding="utf-8"))


def _run(argv):
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True,
                          timeout=600, cwd=REPO)  # NOTE: a liveness bound; the study takes seconds


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The two-seed study, run once: ``(out folder, stdout)``."""
    out = tmp_path_factory.mktemp("study")
    done = _run([*TWO_SEEDS, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_every_setting_runs_with_every_seed_in_its_own_folder(study):
    out, stdout = study
    data = _json(out)
    assert [(r["seed"], r["run"]) for r in data["rows"]] == [(s, n) for s in (0, 1) for n in NAMES]
    assert [r["seed_001"] for r in data["rows"][:4]] == ["clean", "chance", "noise_20pct", "corrupt_20pct"]
    assert [(r["jitter"], r["label_noise"], r["noise"]) for r in data["rows"][:4]] == [
        (0, 0, 0), (0, 0, 1e-6), (0.2, 0, 0), (0, 0.2, 0)]
    assert (data["seeds"], data["max_epochs"], data["patience"], data["checkpoint"]) == (2, 2, 2, "best.json")
    assert data["validation"] == 0.1 and data["levels"] == [20] and data["chance"] == 1e-6
    for seed in (0, 1):
        for name in NAMES:
            assert (out / f"seed{seed}" / name / "checkpoints" / "best.json").is_file()
    report = (out / "robustness.md").read_text(encoding="utf-8")
    assert report.strip() in stdout
    # seed 001's Table 1 figures stand next to the settings it has
    assert "| jitter_20pct | 2 |" in report and "noise_20pct: 12.354 / 0.4819 / 0.8966" in report
    assert "corrupt_20pct: 13.990 / 0.5478 / 0.8474" in report


def test_each_run_has_its_seed_its_perturbation_early_stopping_and_the_same_settings(study):
    out, _ = study
    for seed in (0, 1):
        configs = [load_config(out / f"seed{seed}" / name / "config.yaml").data for name in NAMES]
        assert [(c["data"]["augment"]["jitter"], c["data"]["label_noise"], c["data"]["augment"]["noise"])
                for c in configs] == [(0.0, 0.0, 0.0), (0.0, 0.0, 1e-6), (0.2, 0.0, 0.0), (0.0, 0.2, 0.0)]
        for c in configs:
            assert c["train"]["seed"] == seed and c["train"]["epochs"] == 2
            assert c["train"]["early_stopping"] == {"monitor": "val_loss", "patience": 2, "min_delta": 0.0}
            assert c["data"]["validation"] == 0.1
        assert (out / f"seed{seed}" / "corrupt_20pct" / "label_noise.json").is_file()
        assert not (out / f"seed{seed}" / "clean" / "label_noise.json").exists()


def test_drift_is_measured_between_the_kept_epochs_from_the_same_seeds_clean_run(study):
    out, _ = study
    rows = _json(out)["rows"]
    for row in rows:
        folder = out / f"seed{row['seed']}"
        c = compare(folder / row["run"], folder / "clean", "best.json")
        assert (row["l2"], row["relative_change"], row["cosine"]) == (
            c.overall.l2, c.overall.relative_change, c.overall.cosine)
        assert (row["test_accuracy"], row["test_loss"]) == (c.a.test_accuracy, c.a.test_loss)
        assert row["checkpoint"].endswith(str(Path("checkpoints") / "best.json"))
        # the validation figures are those of the epoch best.json kept
        kept = [json.loads(line) for line in (folder / row["run"] / "metrics.jsonl").read_text().splitlines()]
        kept = next(r for r in kept if r.get("epoch") == row["best_epoch"])
        assert (row["val_accuracy"], row["val_loss"]) == (kept["val_accuracy"], kept["val_loss"])
        assert 1 <= row["best_epoch"] <= row["epochs"] <= 2 and row["how"] == "trained"
        if row["run"] == "clean":
            assert row["l2"] == 0.0 and row["relative_change"] == 0.0 and row["cosine"] == 1.0
        elif row["run"] != "chance":
            assert row["l2"] > 0 and row["cosine"] < 1
    # the two seeds are different runs, not one run twice
    assert rows[0]["val_loss"] != rows[4]["val_loss"]


def test_the_settings_are_the_mean_and_spread_of_their_seeds_rows(study):
    out, _ = study
    data = _json(out)
    rows = {(r["seed"], r["run"]): r for r in data["rows"]}
    settings = {s["run"]: s for s in data["settings"]}
    assert list(settings) == NAMES
    for name in NAMES:
        for figure in ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "l2", "cosine", "epochs"):
            values = [rows[(0, name)][figure], rows[(1, name)][figure]]
            assert settings[name][figure] == [statistics.fmean(values), statistics.stdev(values)]
    for name in ("jitter_20pct", "corrupt_20pct"):
        beyond = settings[name]["beyond"]
        l2 = [rows[(s, name)]["l2"] - rows[(s, "chance")]["l2"] for s in (0, 1)]
        cos = [rows[(s, "chance")]["cosine"] - rows[(s, name)]["cosine"] for s in (0, 1)]
        assert beyond["l2"] == [statistics.fmean(l2), statistics.stdev(l2)]
        assert beyond["cosine"] == [statistics.fmean(cos), statistics.stdev(cos)]
    assert "beyond" not in settings["clean"] and "beyond" not in settings["chance"]


def test_the_verdicts_name_every_setting_and_level_and_end_with_the_answer(study):
    out, _ = study
    verdicts = _json(out)["verdicts"]
    assert [v.split(":")[0] for v in verdicts[:2]] == ["jitter_20pct", "corrupt_20pct"]
    assert verdicts[2].startswith("At 20 %, label noise moves the weights ")
    assert verdicts[-1].startswith("Verdict: ")
    report = (out / "robustness.md").read_text(encoding="utf-8")
    assert all(f"- {v}" in report for v in verdicts)


def _setting(run, l2, sd):
    kind, _, _ = run.partition("_")
    return {"run": run, "kind": kind, "l2": (l2, sd)}


@pytest.mark.parametrize("jitter, noise, answer", [
    ((10.0, 1.0), (14.0, 1.5), "Verdict: yes."),
    ((14.0, 1.0), (10.0, 1.5), "Verdict: no, label noise does not move the weights more than jitter "
                               "beyond the between-seed spread at every level: jitter moves them more, "
                               "beyond the spread, at 5 %."),
    ((10.0, 3.0), (12.0, 1.0), "Verdict: no, label noise does not move the weights more than jitter "
                               "beyond the between-seed spread at every level: the two are within the "
                               "spread of each other at 5 %."),
    ((10.0, None), (14.0, None), "Verdict: with one seed there is no between-seed spread"),
])
def test_a_difference_counts_only_beyond_the_larger_between_seed_spread(jitter, noise, answer):
    report = _report()
    settings = [_setting("chance", 7.0, 0.5 if jitter[1] else None), _setting("jitter_5pct", *jitter),
                _setting("corrupt_5pct", *noise)]
    lines = report.judge(settings, [5])
    assert lines[-1].startswith(answer)
    assert len(lines) == 4  # two settings against chance, one level, the verdict
    if jitter[1] is not None:
        spread = max(jitter[1], noise[1])
        assert f"the between-seed spread ({spread:.3f})" in lines[2]


def test_spread_is_mean_and_sample_deviation_and_none_for_one_value():
    report = _report()
    assert report.spread([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert report.spread([4.0]) == (4.0, None)
    assert report.spread([1.0, None]) == (None, None)
    assert report._pm((0.98765, 0.00123), 2, 100, " %") == "98.77 ± 0.12 %"
    assert report._pm((14.5, None), 3) == "14.500" and report._pm((None, None), 3) == "-"


def test_a_second_run_reuses_every_finished_run(study):
    out, _ = study
    before = _json(out)
    last = [out / f"seed{s}" / n / "checkpoints" / "last.json" for s in (0, 1) for n in NAMES]
    stamps = [path.stat().st_mtime_ns for path in last]
    done = _run([*TWO_SEEDS, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    for seed in (0, 1):
        for name in NAMES:
            assert (f"[seed{seed}/{name}] reused the finished run in {out / f'seed{seed}' / name}"
                    in done.stdout)
    assert [path.stat().st_mtime_ns for path in last] == stamps
    after = _json(out)
    assert [r["how"] for r in after["rows"]] == ["reused"] * 8
    for a, b in zip(before["rows"], after["rows"]):
        assert {k: v for k, v in a.items() if k != "how"} == {k: v for k, v in b.items() if k != "how"}
    assert after["settings"] == before["settings"] and after["verdicts"] == before["verdicts"]


def test_an_interrupted_run_is_resumed_to_the_same_weights(tmp_path):
    module = _module()
    argv = [*QUICK, "--out", str(tmp_path / "whole")]
    assert module.main(argv) == 0
    args = module.parse_args([*QUICK, "--out", str(tmp_path / "cut")])
    config = load_config(TINY, module.overrides(args, None, 0, seed=0))
    # as if the study had been stopped mid-epoch: a checkpoint after 5 steps
    train(config, run_dir=tmp_path / "cut" / "seed0" / "clean", max_steps=5, progress=False,
          log=lambda line: None)
    assert module.main([*QUICK, "--out", str(tmp_path / "cut")]) == 0
    rows = {r["run"]: r for r in _json(tmp_path / "cut")["rows"]}
    assert rows["clean"]["how"] == "resumed" and rows["jitter_20pct"]["how"] == "trained"
    # the resumed clean run reached the uninterrupted one's weights
    assert compare(tmp_path / "cut" / "seed0" / "clean", tmp_path / "whole" / "seed0" / "clean").overall.l2 == 0.0


def test_patience_reaches_training(tmp_path):
    # NOTE: patience 0 stops every run after its first epoch, whatever the data does
    assert _module().main([*QUICK, "--max-epochs", "3", "--patience", "0", "--chance", "0",
                           "--out", str(tmp_path)]) == 0
    rows = _json(tmp_path)["rows"]
    assert [(r["epochs"], r["best_epoch"], r["stopped_early"]) for r in rows] == [(1, 1, True)] * 3
    events = [json.loads(line) for line in (tmp_path / "seed0" / "clean" / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "early_stop" and events[-1]["patience"] == 0


def test_chance_0_leaves_the_chance_run_and_drift_beyond_chance_out(tmp_path):
    assert _module().main([*QUICK, "--chance", "0", "--out", str(tmp_path)]) == 0
    data = _json(tmp_path)
    assert [r["run"] for r in data["rows"]] == ["clean", "jitter_20pct", "corrupt_20pct"]
    assert not (tmp_path / "seed0" / "chance").exists()
    assert all("beyond" not in s for s in data["settings"])
    assert data["verdicts"][-1].startswith("Verdict: with one seed")


def test_pass_through_options_reach_training(tmp_path):
    out = tmp_path / "out"
    code = _module().main([*QUICK, "--out", str(out), "--workers", "2", "--train-limit", "100",
                           "--test-limit", "30", "--validation", "0.2"])
    assert code == 0
    for name in NAMES:
        record = json.loads((out / "seed0" / name / "metrics.jsonl").read_text().splitlines()[0])
        assert record["workers"] == 2 and record["samples"] == 80  # 100 images, 20 held out
        evaluated = json.loads((out / "seed0" / name / "checkpoints" / "last.json").read_text())
        assert evaluated["config"]["data"]["test_limit"] == 30
    about = _json(out)
    assert about["workers"] == 2 and [r["workers"] for r in about["rows"]] == [2] * len(NAMES)
    assert about["train_limit"] == 100 and about["test_limit"] == 30 and about["validation"] == 0.2


def test_data_dir_reaches_training(tmp_path, monkeypatch):
    from paracnn.data import checksums
    from paracnn.data.idx import write_fake_dataset

    data = tmp_path / "data"
    hashes = write_fake_dataset(data / "mnist", train_size=40, test_size=10)
    # NOTE: as if the generated files were the official ones, so they load without a download
    monkeypatch.setitem(checksums.SHA256, "mnist", hashes)
    config = tmp_path / "mnist.yaml"
    config.write_text(Path(TINY).read_text().replace("input_shape: [1, 12, 12]", "input_shape: [1, 28, 28]")
                      .replace("dataset: synthetic", "dataset: mnist\n  download: false"))
    out = tmp_path / "out"
    assert _module().main(["--config", str(config), "--seeds", "1", "--max-epochs", "1", "--levels", "20",
                           "--out", str(out), "--data-dir", str(data)]) == 0
    for name in NAMES:
        record = json.loads((out / "seed0" / name / "metrics.jsonl").read_text().splitlines()[0])
        assert record["samples"] == 36  # the 40 generated images, 4 held out for validation


def test_backend_and_address_reach_training(tmp_path, capsys):
    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed: this checks the one-line refusal without it")
    code = _module().main([*QUICK, "--out", str(tmp_path), "--workers", "1", "--backend", "ray",
                           "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install" in err and "ray" in err


class Recorder:
    """Stands in for paracnn.train.train: records what it was given, then stops the study."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, **kwargs):
        from paracnn.errors import ParacnnError

        self.calls.append((config, kwargs))
        raise ParacnnError("stopped by the test")


def test_every_training_option_is_handed_to_train(tmp_path, capsys):
    module = _module()
    module.train = recorder = Recorder()
    code = module.main([*QUICK, "--out", str(tmp_path / "o"), "--workers", "3", "--backend", "ray",
                        "--address", "10.0.0.1:6379", "--data-dir", str(tmp_path / "d"),
                        "--seeds", "4", "--max-epochs", "7", "--patience", "3"])
    assert code == 2 and capsys.readouterr().err == "study_robustness: stopped by the test\n"
    (config, kwargs), = recorder.calls
    assert (kwargs["workers"], kwargs["backend"], kwargs["address"], kwargs["data_dir"]) == (
        3, "ray", "10.0.0.1:6379", str(tmp_path / "d"))
    assert kwargs["run_dir"] == tmp_path / "o" / "seed0" / "clean" and kwargs["resume"] is None
    tc = config.data["train"]
    assert config.data["data"]["validation"] == 0.1 and tc["epochs"] == 7 and tc["seed"] == 0
    assert tc["early_stopping"] == {"monitor": "val_loss", "patience": 3, "min_delta": 0.0}


def test_the_defaults_are_seed_001s_setup():
    args = _module().parse_args(["--out", "o"])
    assert (args.seeds, args.patience, args.max_epochs, args.validation) == (3, 2, 20, 0.1)


@pytest.mark.parametrize("argv, message", [
    (["--levels", "5,x"], "--levels '5,x' is not a list of different percentages"),
    (["--levels", "0,10"], "--levels '0,10' is not a list of different percentages"),
    (["--levels", "10,10"], "--levels '10,10' is not a list of different percentages"),
    (["--workers", "two"], "--workers 'two' is not a number of worker processes"),
    (["--max-epochs", "0"], "--max-epochs 0"),
    (["--patience", "-1"], "--patience -1"),
    (["--seeds", "0"], "--seeds 0 trains nothing"),
    (["--chance", "-1"], "--chance -1 is not a noise sigma in [0, 1)"),
    (["--validation", "0"], "--validation 0"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, argv, message):
    done = _run(["--config", TINY, "--out", str(tmp_path / "o"), *argv])
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("study_robustness: ") and done.stderr.count("\n") == 1
    assert message in done.stderr


def test_an_out_that_is_a_file_or_holds_other_epochs_is_refused(study, tmp_path, capsys):
    out, _ = study
    module = _module()
    file = tmp_path / "file"
    file.write_text("")
    assert module.main([*TWO_SEEDS, "--out", str(file)]) == 2
    assert f"--out {file} is a file" in capsys.readouterr().err
    assert module.main([*TWO_SEEDS, "--max-epochs", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'seed0' / 'clean'} holds a run of at most 2 epochs, not 3" in err
    assert err.count("\n") == 1
    assert module.main([*TWO_SEEDS, "--validation", "0.2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"study_robustness: cannot reuse {out / 'seed0' / 'clean'} for the clean run: ")
    assert "data.validation" in err and err.count("\n") == 1


def test_plot_draws_a_png_of_the_finished_study(study, tmp_path):
    pytest.importorskip("matplotlib")
    out, _ = study
    png = tmp_path / "drift.png"
    done = _run([*TWO_SEEDS, "--out", str(out), "--plot", str(png)])
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in done.stdout


def test_plot_without_matplotlib_is_one_line_before_any_training(tmp_path):
    done = run_without_matplotlib(SCRIPT, [*QUICK, "--out", str(tmp_path / "o"),
                                           "--plot", str(tmp_path / "d.png")], cwd=REPO)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("study_robustness: study_robustness.py --plot needs matplotlib, which is not "
                           'installed; install it with: pip install "paracnn[plot]"\n')
    assert not (tmp_path / "o").exists() and not (tmp_path / "d.png").exists()
