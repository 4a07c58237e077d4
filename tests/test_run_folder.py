"""Run folders: a run is never overwritten, default folders never collide, finished runs stay finished."""

import hashlib
import json
import os
import re
import threading

import pytest
import yaml

from paracnn import runfolder
from paracnn.cli import main
from paracnn.runfolder import RunFolderTaken, default_run_dir
from paracnn.train import train

from .parallel.helpers import quiet, tiny_config, tiny_dict


def write_config(tmp_path, **train_cfg):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_dict(**train_cfg)))
    return path


def snapshot(folder):
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


@pytest.fixture
def finished_run(tmp_path):
    run = tmp_path / "R"
    config = write_config(tmp_path, epochs=2)
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    return config, run


def test_a_run_dir_that_holds_a_run_is_refused_and_left_unchanged(finished_run, capsys):
    config, run = finished_run
    before = snapshot(run)
    capsys.readouterr()
    code = main(["train", str(config), "--run-dir", str(run), "--no-progress",
                 "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.match(rf"paracnn: error: run folder {re.escape(str(run))} already holds a run "
                    r"\(config.yaml, metrics.jsonl, .*\); continue it with --resume .*, or start "
                    r"afresh with --overwrite", err), err
    assert snapshot(run) == before
    assert not [p for p in os.listdir(run.parent) if ".old-" in p]


def test_the_python_api_refuses_it_too(finished_run):
    _, run = finished_run
    before = snapshot(run)
    with pytest.raises(RunFolderTaken, match="already holds a run") as info:
        train(tiny_config(epochs=1), run_dir=run, progress=False, log=quiet)
    assert info.value.exit_code == 2
    assert snapshot(run) == before


def test_overwrite_moves_the_old_run_aside_and_says_where(finished_run, capsys):
    config, run = finished_run
    before = snapshot(run)
    capsys.readouterr()
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress", "--overwrite",
                 "--set", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    moved = [p for p in os.listdir(run.parent) if p.startswith("R.old-")]
    assert len(moved) == 1 and re.fullmatch(r"R\.old-\d{8}-\d{6}", moved[0])
    assert f"moved the earlier run {run} to {run.parent / moved[0]}" in out
    assert snapshot(run.parent / moved[0]) == before
    assert len(open(run / "metrics.csv").read().splitlines()) == 2  # the new one-epoch run


def test_a_run_that_saved_no_checkpoint_is_not_offered_for_resuming(tmp_path):
    run = tmp_path / "R"
    run.mkdir()
    (run / "config.yaml").write_text("{}")  # a run killed before its first checkpoint
    with pytest.raises(RunFolderTaken, match=r"already holds a run \(config.yaml\) that saved no "
                                             r"checkpoint to resume from; start afresh with "
                                             r"--overwrite"):
        train(tiny_config(epochs=1), run_dir=run, progress=False, log=quiet)


def test_a_folder_without_a_run_is_used(tmp_path):
    run = tmp_path / "R"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    result = train(tiny_config(epochs=1), run_dir=run, progress=False, log=quiet)
    assert result["epochs"] == 1 and (run / "notes.txt").read_text() == "mine"


def test_default_run_folders_never_collide_even_in_the_same_second(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder.time, "strftime", lambda fmt: "20260101-120000")
    config = tiny_config()
    found = []

    def claim():
        found.append(default_run_dir(config, root=tmp_path / "runs"))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(p.name for p in found)
    assert len(set(names)) == 6, names
    assert all(p.is_dir() for p in found)
    assert names[0] == "run-20260101-120000" and "run-20260101-120000-6" in names


def test_resuming_a_finished_run_says_so_and_writes_nothing(finished_run, capsys):
    _, run = finished_run
    before = snapshot(run)
    mtimes = {p: os.stat(run / p).st_mtime_ns for p in before}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (f"run {run} already finished its 2 epochs; raise train.epochs with --set "
            f"train.epochs=3") in out
    assert "resuming from" not in out and "training " not in out
    assert snapshot(run) == before
    assert {p: os.stat(run / p).st_mtime_ns for p in before} == mtimes


def test_resume_with_more_epochs_still_trains(finished_run):
    _, run = finished_run
    assert main(["train", "--resume", str(run), "--no-progress", "--set", "train.epochs=3"]) == 0
    assert len(open(run / "metrics.csv").read().splitlines()) == 4


def test_overwrite_of_the_current_folder_is_one_line_and_moves_nothing(finished_run, capsys, monkeypatch):
    config, run = finished_run
    before = snapshot(run)
    monkeypatch.chdir(run)
    assert main(["train", str(config), "--run-dir", ".", "--overwrite", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite cannot move . aside: it is (or holds) the current folder" in err
    assert snapshot(run) == before


def test_a_run_that_fails_on_its_data_leaves_no_folder_behind(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PARACNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PARACNN_DATA_DIR", raising=False)
    cfg = tiny_dict()
    cfg["model"] = {"input_shape": [1, 28, 28], "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]}
    cfg["data"] = {"dataset": "mnist", "download": False, "dir": str(tmp_path / "nothing")}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--run-dir", str(tmp_path / "R"), "--no-progress"]) == 2
    assert "cannot find" in capsys.readouterr().err
    assert not (tmp_path / "R").exists() and not (tmp_path / "cache").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made is theirs: emptied of the run, kept
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["train", str(path), "--run-dir", str(tmp_path / "mine"), "--no-progress"]) == 2
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_resume_passes_over_a_metrics_line_whose_epoch_is_not_a_number(finished_run, capsys):
    config, run = finished_run
    lines = (run / "metrics.jsonl").read_text().splitlines()
    bad = dict(yaml.safe_load(lines[0]), epoch="one")
    (run / "metrics.jsonl").write_text("\n".join([json.dumps(bad)] + lines[1:]) + "\n")
    assert main(["train", "--resume", str(run), "--set", "train.epochs=3", "--no-progress"]) == 0
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [2, 3]


def test_every_file_of_a_run_has_the_one_mode(finished_run):
    import stat
    _, run = finished_run
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {str(p.relative_to(run)): stat.S_IMODE(p.stat().st_mode) for p in run.rglob("*") if p.is_file()}
    assert {"config.yaml", "metrics.jsonl", "steps.jsonl", "eval.json", "checkpoints/last.json"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~mask}, modes  # as any file the user creates
