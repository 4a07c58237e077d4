"""End-to-end training: run folders, metrics, checkpoints, resume, evaluation, signals."""

import csv
import json
import os
import signal
import subprocess
import sys

import psutil
import pytest
import yaml

from paracnn.checkpoint import load_checkpoint
from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.errors import CheckpointError
from paracnn.train import evaluate, train, weights_hash

from .parallel.helpers import REPO, pid_alive, quiet, read_line, shm_exists, tiny_config, tiny_dict

SCORES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted two-epoch run, in-process."""
    run = tmp_path_factory.mktemp("ref") / "run"
    return train(tiny_config(), workers=0, run_dir=run, progress=False, log=quiet)


def test_run_folder_contents(reference):
    run = reference["run_dir"]
    names = sorted(os.listdir(run))
    assert names == ["checkpoints", "config.yaml", "eval.json", "metrics.csv", "metrics.jsonl",
                     "steps.jsonl"]
    assert sorted(os.listdir(f"{run}/checkpoints")) == ["best.json", "last.json"]
    saved = yaml.safe_load(open(f"{run}/config.yaml"))
    assert config_from_dict(saved).data == tiny_config().data


def test_metrics_files_agree_with_the_result(reference):
    run = reference["run_dir"]
    lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
    assert lines == reference["history"] and [l["epoch"] for l in lines] == [1, 2]
    for key in SCORES + ("seconds", "samples_per_second", "compute_seconds", "broadcast_seconds",
                         "reduce_update_seconds", "eval_seconds", "wait_seconds", "tail_seconds",
                         "parent_rss_mb", "worker_uss_mb", "total_pss_mb", "cpu_percent"):
        assert key in lines[0], key
    first = lines[0]
    assert first["samples"] == 72 and first["steps"] == 5 and first["worker_uss_mb"] == []
    assert first["tail_seconds"] == 0.0  # in-process: no worker waits for another
    assert 0 <= first["train_accuracy"] <= 1 and first["train_loss"] > 0
    assert first["parent_rss_mb"] > 0 and first["total_pss_mb"] > 0
    rows = list(csv.DictReader(open(f"{run}/metrics.csv")))
    assert [float(r["test_accuracy"]) for r in rows] == [l["test_accuracy"] for l in lines]
    evaluation = json.load(open(f"{run}/eval.json"))
    assert evaluation["test"]["accuracy"] == lines[-1]["test_accuracy"]
    assert evaluation["val"]["samples"] == 24 and evaluation["test"]["samples"] == 32
    cm = evaluation["test"]["confusion_matrix"]
    assert sum(map(sum, cm)) == 32
    assert sum(cm[i][i] for i in range(4)) / 32 == lines[-1]["test_accuracy"]


def test_checkpoints_hold_the_final_state(reference):
    last = load_checkpoint(f"{reference['run_dir']}/checkpoints/last.json")
    assert weights_hash(last["weights"]) == reference["weights_sha256"]
    assert (last["epoch"], last["step"], last["step_in_epoch"]) == (2, 10, 0)
    assert len(last["optimizer"]["momentum_buffer"]) == reference["num_params"]
    best = load_checkpoint(f"{reference['run_dir']}/checkpoints/best.json")
    assert best["best"]["metric"] == "val_accuracy"
    assert best["best"]["value"] == max(r["val_accuracy"] for r in reference["history"])


@pytest.mark.parametrize("stop_at, workers, resume_workers", [(3, 2, 1), (5, 0, 2), (7, 1, 0)])
def test_resume_is_bit_identical(tmp_path, reference, stop_at, workers, resume_workers):
    # mid-epoch 1, exactly at the epoch boundary, and mid-epoch 2
    run = tmp_path / "run"
    first = train(tiny_config(), workers=workers, run_dir=run, max_steps=stop_at,
                  progress=False, log=quiet)
    assert first["stopped"] and first["steps"] == stop_at
    state = load_checkpoint(run / "checkpoints" / "last.json")
    assert state["step"] == stop_at
    second = train(None, resume=run, workers=resume_workers, progress=False, log=quiet)
    assert not second["stopped"] and second["steps"] == 10
    assert second["weights_sha256"] == reference["weights_sha256"]
    scores = [[r[k] for k in SCORES] for r in second["history"]]
    assert scores == [[r[k] for k in SCORES] for r in reference["history"]]
    assert [json.loads(l)["epoch"] for l in open(run / "metrics.jsonl")] == [1, 2]


def test_resume_refuses_a_changed_config(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(), workers=0, run_dir=run, max_steps=1, progress=False, log=quiet)
    with pytest.raises(CheckpointError, match="train.lr is 0.5 in the config but 0.1"):
        train(tiny_config(lr=0.5), resume=run, progress=False, log=quiet)
    more = train(tiny_config(epochs=3, workers=1), resume=run, progress=False, log=quiet)
    assert more["epochs"] == 3


def test_evaluate_a_checkpoint(reference):
    out = evaluate(f"{reference['run_dir']}/checkpoints/last.json", workers=2, log=quiet)
    assert out["weights_sha256"] == reference["weights_sha256"]
    assert out["test"]["accuracy"] == reference["final"]["test_accuracy"]
    assert out["val"]["loss"] == reference["final"]["val_loss"]


def test_training_learns_the_synthetic_task(tmp_path):
    cfg = tiny_dict(epochs=4, lr=0.05, momentum=0.9)
    cfg["data"]["synthetic"].update(train_size=256, test_size=64)
    result = train(config_from_dict(cfg), workers=2, run_dir=tmp_path / "r", progress=False, log=quiet)
    accuracies = [r["test_accuracy"] for r in result["history"]]
    assert accuracies[-1] > 0.5, accuracies  # chance is 0.25
    # every step's idle tail is a part of its wait, so every epoch's sum is too
    assert all(0.0 <= r["tail_seconds"] <= r["wait_seconds"] for r in result["history"])
    assert result["history"][-1]["train_loss"] < result["history"][0]["train_loss"]


@pytest.mark.timeout(900)  # the slowest test: about a minute on a busy 2-core host
def test_real_mnist_subset(tmp_path, shared_data_dir):
    """A small MLP learns real digits, and the pool reproduces the serial run bit for bit."""
    cfg = tiny_dict(epochs=2, batch_size=16, lr=0.02, momentum=0.9, schedule="constant",
                    clip_grad_norm=None)
    cfg["model"] = {"input_shape": [1, 28, 28], "layers": [
        {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"},
        {"type": "dense", "units": 10}]}
    cfg["data"] = {"dataset": "mnist", "dir": str(shared_data_dir), "download": False,
                   "train_limit": 640, "test_limit": 200, "normalize": "centered"}
    serial = train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "a", progress=False, log=quiet)
    pooled = train(config_from_dict(cfg), workers=2, run_dir=tmp_path / "b", progress=False, log=quiet)
    assert pooled["weights_sha256"] == serial["weights_sha256"]
    # 80 steps on 640 digits: far above the 10 % of chance (0.81 when written).
    assert pooled["final"]["test_accuracy"] > 0.7


# -- the command line ----------------------------------------------------------------

def write_config(tmp_path, **train_cfg):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_dict(**train_cfg)))
    return path


def test_cli_train_and_evaluate(tmp_path, reference, capsys):
    config = write_config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(config), "--workers", "2", "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"weights sha256 {reference['weights_sha256']}" in out
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints" / "last.json"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test"]["accuracy"] == reference["final"]["test_accuracy"]


def test_default_run_folder(tmp_path, monkeypatch):
    config = write_config(tmp_path, epochs=1)
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(config), "--no-progress"]) == 0
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1 and runs[0].startswith("tiny-2")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_a_step_boundary_with_a_checkpoint(tmp_path, sig, code):
    # Many epochs, so the signal surely lands while training.
    config = write_config(tmp_path, epochs=400)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "paracnn", "train", str(config), "--workers", "2",
                             "--run-dir", str(run), "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert read_line(proc.stdout).startswith("training ")
        read_line(proc.stdout)  # the first epoch's line: training is under way
        workers = [c.pid for c in psutil.Process(proc.pid).children()]
        blocks = shared_blocks(proc.pid)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert f"interrupted by {sig.name}" in err and "--resume" in err
    state = load_checkpoint(run / "checkpoints" / "last.json")
    assert 0 < state["step"] < 400 * 5
    # The checkpoint holds what an uninterrupted run has at that step, and resuming
    # from it continues exactly like the uninterrupted run.
    same = train(config_from_dict(tiny_dict(epochs=400)), workers=0, run_dir=tmp_path / "ref",
                 max_steps=state["step"], progress=False, log=quiet)
    assert weights_hash(state["weights"]) == same["weights_sha256"]
    later = state["step"] + 7
    resumed = train(None, resume=run, workers=2, max_steps=later, progress=False, log=quiet)
    straight = train(config_from_dict(tiny_dict(epochs=400)), workers=0, run_dir=tmp_path / "ref2",
                     max_steps=later, progress=False, log=quiet)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    # Nothing is left behind: no worker processes, no shared memory.
    assert len(workers) >= 2 and len(blocks) >= 3
    assert not any(map(pid_alive, workers))
    assert not any(map(shm_exists, blocks))


def shared_blocks(pid):
    """Names of the shared-memory blocks process ``pid`` has mapped."""
    with open(f"/proc/{pid}/maps") as f:
        return sorted({line.split("/dev/shm/")[1].split()[0] for line in f if "/dev/shm/psm_" in line})
