"""scripts/study_robustness.py: every row, zero drift for the clean run, reuse and resume, pass-through."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from paracnn.compare import compare
from paracnn.config import load_config
from paracnn.train import train

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "study_robustness.py"
TINY = str(REPO / "configs" / "tiny.yaml")
#: four runs of one tiny epoch on generated data: clean, chance, jitter_20pct, corrupt_20pct.
QUICK = ["--config", TINY, "--epochs", "1", "--levels", "20"]
NAMES = ["clean", "chance", "jitter_20pct", "corrupt_20pct"]


def _module():
    spec = importlib.util.spec_from_file_location("study_robustness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(out):
    return json.loads((out / "robustness.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The quick study, run once: ``(out folder, stdout)``."""
    out = tmp_path_factory.mktemp("study")
    done = subprocess.run([sys.executable, str(SCRIPT), *QUICK, "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_the_table_has_every_run_and_the_settings(study):
    out, stdout = study
    data = _json(out)
    assert [r["run"] for r in data["rows"]] == NAMES
    assert [r["seed_001"] for r in data["rows"]] == ["clean", "chance", "noise_20pct", "corrupt_20pct"]
    assert [(r["jitter"], r["label_noise"], r["noise"]) for r in data["rows"]] == [
        (0, 0, 0), (0, 0, 1e-6), (0.2, 0, 0), (0, 0.2, 0)]
    assert data["epochs"] == 1 and data["validation"] == 0.1 and data["levels"] == [20]
    assert data["chance"] == 1e-6
    table = (out / "robustness.md").read_text(encoding="utf-8")
    assert table.strip() in stdout
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0][2:] for row in rows] == NAMES
    # seed 001's Table 1 figures stand next to the runs it has
    assert "noise_20pct: 12.354 / 0.4819 / 0.8966" in rows[2]
    assert "corrupt_20pct: 13.990 / 0.5478 / 0.8474" in rows[3]


def test_every_run_trained_with_its_perturbation_and_the_same_settings(study):
    out, _ = study
    configs = [load_config(out / name / "config.yaml").data for name in NAMES]
    assert [(c["data"]["augment"]["jitter"], c["data"]["label_noise"], c["data"]["augment"]["noise"])
            for c in configs] == [(0.0, 0.0, 0.0), (0.0, 0.0, 1e-6), (0.2, 0.0, 0.0), (0.0, 0.2, 0.0)]
    for c in configs:
        assert c["train"]["epochs"] == 1 and c["data"]["validation"] == 0.1
        assert c["train"]["seed"] == configs[0]["train"]["seed"]
    assert (out / "corrupt_20pct" / "label_noise.json").is_file()
    assert not (out / "clean" / "label_noise.json").exists()


def test_the_clean_row_has_no_drift_and_the_others_drift_as_compare_says(study):
    out, _ = study
    rows = {r["run"]: r for r in _json(out)["rows"]}
    clean = rows["clean"]
    assert clean["l2"] == 0.0 and clean["relative_change"] == 0.0 and clean["cosine"] == 1.0
    for name in NAMES[1:]:
        row, c = rows[name], compare(out / name, out / "clean")
        assert row["l2"] > 0 and row["cosine"] < 1
        assert (row["l2"], row["relative_change"], row["cosine"]) == (
            c.overall.l2, c.overall.relative_change, c.overall.cosine)
        assert (row["test_accuracy"], row["test_loss"]) == (c.a.test_accuracy, c.a.test_loss)
        assert row["checkpoint"].endswith(str(Path("checkpoints") / "last.json"))
    for row in rows.values():
        assert 0 <= row["test_accuracy"] <= 1 and row["test_loss"] > 0
        assert 0 <= row["val_accuracy"] <= 1 and row["val_loss"] > 0 and row["how"] == "trained"


def test_a_second_run_reuses_every_finished_run(study, tmp_path):
    out, _ = study
    before = _json(out)
    stamps = {n: (out / n / "checkpoints" / "last.json").stat().st_mtime_ns for n in NAMES}
    done = subprocess.run([sys.executable, str(SCRIPT), *QUICK, "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    for name in NAMES:
        assert f"[{name}] reused the finished run in {out / name}" in done.stdout
        assert (out / name / "checkpoints" / "last.json").stat().st_mtime_ns == stamps[name]
    after = _json(out)
    assert [r["how"] for r in after["rows"]] == ["reused"] * 4
    for a, b in zip(before["rows"], after["rows"]):
        assert {k: v for k, v in a.items() if k != "how"} == {k: v for k, v in b.items() if k != "how"}


def test_an_interrupted_run_is_resumed_to_the_same_weights(study, tmp_path):
    out, _ = study
    module = _module()
    args = module.parse_args([*QUICK, "--out", str(tmp_path)])
    config = load_config(TINY, module.overrides(args, None, 0))
    # as if the study had been stopped mid-epoch: a checkpoint after 5 steps
    train(config, run_dir=tmp_path / "clean", max_steps=5, progress=False, log=lambda line: None)
    assert module.main([*QUICK, "--out", str(tmp_path)]) == 0
    rows = {r["run"]: r for r in _json(tmp_path)["rows"]}
    assert rows["clean"]["how"] == "resumed" and rows["jitter_20pct"]["how"] == "trained"
    # the resumed clean run reached the uninterrupted one's weights
    assert compare(tmp_path / "clean", out / "clean").overall.l2 == 0.0


def test_chance_0_leaves_the_chance_run_out(tmp_path):
    assert _module().main([*QUICK, "--levels", "20", "--chance", "0", "--out", str(tmp_path)]) == 0
    assert [r["run"] for r in _json(tmp_path)["rows"]] == ["clean", "jitter_20pct", "corrupt_20pct"]
    assert not (tmp_path / "chance").exists()


def test_pass_through_options_reach_training(tmp_path):
    out = tmp_path / "out"
    code = _module().main([*QUICK, "--out", str(out), "--workers", "2", "--train-limit", "100",
                           "--test-limit", "30", "--validation", "0.2"])
    assert code == 0
    for name in NAMES:
        record = json.loads((out / name / "metrics.jsonl").read_text().splitlines()[-1])
        assert record["workers"] == 2 and record["samples"] == 80  # 100 images, 20 held out
        evaluated = json.loads((out / name / "checkpoints" / "last.json").read_text())
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
    assert _module().main(["--config", str(config), "--epochs", "1", "--levels", "20",
                           "--out", str(out), "--data-dir", str(data)]) == 0
    for name in NAMES:
        record = json.loads((out / name / "metrics.jsonl").read_text().splitlines()[-1])
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
                        "--address", "10.0.0.1:6379", "--data-dir", str(tmp_path / "d")])
    assert code == 2 and capsys.readouterr().err == "study_robustness: stopped by the test\n"
    (config, kwargs), = recorder.calls
    assert (kwargs["workers"], kwargs["backend"], kwargs["address"], kwargs["data_dir"]) == (
        3, "ray", "10.0.0.1:6379", str(tmp_path / "d"))
    assert kwargs["run_dir"] == tmp_path / "o" / "clean" and kwargs["resume"] is None
    assert config.data["data"]["validation"] == 0.1 and config.data["train"]["epochs"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--levels", "5,x"], "--levels '5,x' is not a list of different percentages"),
    (["--levels", "0,10"], "--levels '0,10' is not a list of different percentages"),
    (["--levels", "10,10"], "--levels '10,10' is not a list of different percentages"),
    (["--workers", "two"], "--workers 'two' is not a number of worker processes"),
    (["--epochs", "0"], "--epochs 0"),
    (["--chance", "-1"], "--chance -1 is not a noise sigma in [0, 1)"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, argv, message):
    done = subprocess.run([sys.executable, str(SCRIPT), "--config", TINY, "--out", str(tmp_path / "o"),
                           *argv], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("study_robustness: ") and done.stderr.count("\n") == 1
    assert message in done.stderr


def test_an_out_that_is_a_file_or_holds_other_epochs_is_refused(study, tmp_path, capsys):
    out, _ = study
    module = _module()
    file = tmp_path / "file"
    file.write_text("")
    assert module.main([*QUICK, "--out", str(file)]) == 2
    assert f"--out {file} is a file" in capsys.readouterr().err
    assert module.main(["--config", TINY, "--epochs", "2", "--levels", "20", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'clean'} holds a run of 1 epoch, not 2" in err and err.count("\n") == 1
    assert module.main([*QUICK, "--validation", "0.2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"study_robustness: cannot reuse {out / 'clean'} for the clean run: ")
    assert "data.validation" in err and err.count("\n") == 1
