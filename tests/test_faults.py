"""Faults during a real run: dead, hung and failing workers, NaN, signals, a kill during a save.

Every test goes through :func:`paracnn.train.train` (or the ``paracnn``
command) on a tiny model, and checks the three promises: no hang, nothing
lost (the weights equal an undisturbed run's, the checkpoint loads), and a
clear message. The misbehaving layers are in ``tests/faults/layers.py`` and
are registered the way a plugin would be (:func:`fault_registry`).

A single SIGINT or SIGTERM (step boundary, checkpoint, exit 130/143, no worker
or shared memory left, an exact resume) is tested in ``tests/test_train.py``;
a killed worker at the pool level in ``tests/parallel/test_pool.py``.
"""

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from paracnn.checkpoint import load_checkpoint, save_checkpoint
from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.errors import TaskError
from paracnn.parallel import WorkerError, WorkerTaskError
from paracnn.train import TrainingDiverged, train

from .faults.layers import fault_registry
from .parallel.helpers import REPO, pid_alive, quiet, read_line, shm_exists, tiny_dict

#: a liveness bound for recoveries that take about a second: generous, not a speed test.
LIVENESS = 60


@pytest.fixture
def registry(monkeypatch):
    """Configs loaded during the test see the fault layers, as if a plugin provided them."""
    reg = fault_registry()
    monkeypatch.setattr("paracnn.config.loaded.get_registry", lambda: reg)
    return reg


def with_layer(layer, index=3, **train_cfg):
    """The tiny config with ``layer`` inserted at ``index`` (after dense, relu, before dropout)."""
    cfg = tiny_dict(**train_cfg)
    cfg["model"]["layers"].insert(index, layer)
    return cfg


def run(cfg, tmp_path, name="run", **kw):
    kw.setdefault("workers", 2)
    return train(config_from_dict(copy.deepcopy(cfg)), run_dir=tmp_path / name, progress=False,
                 log=kw.pop("log", quiet), **kw)


def write_config(tmp_path, cfg):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def scores(result):
    return [{k: v for k, v in r.items() if k.endswith(("_loss", "_accuracy"))} for r in result["history"]]


def one_line(err):
    assert err.endswith("\n") and "\n" not in err[:-1], err
    assert "Traceback" not in err
    return err


def disturbed_run(cfg, tmp_path, marker, what):
    """The undisturbed serial result, then a pooled run whose layer acts once ``marker`` exists.

    Returns ``(undisturbed, result, replaced)``, the last being the pool's
    "starting a new worker" lines.
    """
    undisturbed = run(cfg, tmp_path, "ref", workers=0)
    marker.touch()
    lines = []
    start = time.monotonic()
    result = run(cfg, tmp_path, log=lines.append)
    assert time.monotonic() - start < LIVENESS
    assert not marker.exists(), f"no worker {what}"
    return undisturbed, result, [line for line in lines if "starting a new worker" in line]


# -- dead workers -------------------------------------------------------------------------

def test_a_worker_killed_mid_epoch_changes_nothing(tmp_path, registry):
    marker = tmp_path / "kill"
    cfg = with_layer({"type": "kill_after", "marker": str(marker), "calls": 20})
    undisturbed, result, replaced = disturbed_run(cfg, tmp_path, marker, "died")
    assert len(replaced) == 1 and "killed by signal 9 (SIGKILL)" in replaced[0], replaced
    assert result["weights_sha256"] == undisturbed["weights_sha256"]
    assert scores(result) == scores(undisturbed)


def test_workers_that_keep_dying_stop_the_run_with_a_checkpoint_then_it_resumes(tmp_path, registry,
                                                                                 capsys):
    marker = tmp_path / "kill"
    marker.touch()
    cfg = with_layer({"type": "killer", "marker": str(marker), "once": False},
                     max_worker_failures=1)
    config = write_config(tmp_path, cfg)
    run_dir = tmp_path / "run"
    code = main(["train", str(config), "--workers", "2", "--run-dir", str(run_dir), "--no-progress"])
    err = one_line(capsys.readouterr().err)
    assert code == 3, err
    assert re.search(r"worker \d \(pid \d+\) killed by signal 9 \(SIGKILL\); giving up after 2 "
                     r"worker failures in a row; checkpoint saved to ", err), err
    assert f"--resume {run_dir}" in err
    state = load_checkpoint(run_dir / "checkpoints" / "last.json")
    assert (state["epoch"], state["step"], state["step_in_epoch"]) == (0, 0, 0)
    # The cause goes away; the run continues from its checkpoint to the undisturbed weights.
    marker.unlink()
    resumed = train(None, resume=run_dir, workers=2, progress=False, log=quiet)
    undisturbed = run(cfg, tmp_path, "ref", workers=0)
    assert resumed["weights_sha256"] == undisturbed["weights_sha256"]


def test_max_worker_failures_is_a_config_key(tmp_path, registry):
    marker = tmp_path / "kill"
    marker.touch()
    cfg = with_layer({"type": "killer", "marker": str(marker), "once": False}, max_worker_failures=0)
    with pytest.raises(WorkerError, match=r"giving up after 1 worker failures in a row") as info:
        run(cfg, tmp_path)
    assert info.value.exit_code == 3


# -- hung workers ---------------------------------------------------------------------------

def test_a_hung_worker_is_killed_after_the_timeout_and_its_work_redone(tmp_path, registry):
    marker = tmp_path / "stop"
    # NOTE: 5 s, not 1: a busy host can hold up a healthy worker for a second, and
    # killing it too would make two replacements where the test expects one.
    cfg = with_layer({"type": "stopper", "marker": str(marker)}, worker_timeout=5)
    undisturbed, result, replaced = disturbed_run(cfg, tmp_path, marker, "stopped")
    assert len(replaced) == 1, replaced
    assert re.search(r"worker \d \(pid \d+\) did not finish a task within 5 s \(hung, or stopped\); "
                     r"killed it with signal 9 \(SIGKILL\)", replaced[0]), replaced
    assert result["weights_sha256"] == undisturbed["weights_sha256"]


def test_workers_that_keep_hanging_stop_the_run(tmp_path, registry):
    marker = tmp_path / "stop"
    marker.touch()
    cfg = with_layer({"type": "stopper", "marker": str(marker), "once": False},
                     worker_timeout=0.5, max_worker_failures=0)
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        run(cfg, tmp_path)
    assert time.monotonic() - start < LIVENESS
    message = str(info.value)
    assert re.search(r"pid \d+\) did not finish a task within 0.5 s .*SIGKILL", message), message
    assert "checkpoint saved to" in message
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.json")["step"] == 0


# -- exceptions in layers -------------------------------------------------------------------

@pytest.mark.parametrize("error, phase, method, shown", [
    ("value", "forward", "fork", "ValueError: slope must be finite, got nan"),
    ("value", "backward", "fork", "ValueError: slope must be finite, got nan"),
    ("unpicklable", "forward", "fork", "Unpicklable: holds a lock"),
    ("two-arguments", "backward", "spawn", "TwoArguments: the slope went wrong with 42"),
])
def test_an_exception_in_a_worker_names_the_layer(tmp_path, registry, error, phase, method, shown):
    cfg = with_layer({"type": "flaky", "error": error, "phase": phase})
    with pytest.raises(WorkerTaskError) as info:
        run(cfg, tmp_path, start_method=method)
    message = str(info.value)
    assert re.match(rf"layers\[3\] flaky raised {re.escape(shown)} \(in {phase}\), in worker \d "
                    rf"\(pid \d+\); run with --debug", message), message
    assert "PicklingError" not in message and "cannot pickle" not in message and "\n" not in message
    assert isinstance(info.value, TaskError) and info.value.exit_code == 1
    # The worker's own traceback travels as text, as the cause.
    assert "tests/faults/layers.py" in str(info.value.__cause__.__cause__)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.json")["step"] == 0


def test_an_exception_in_process_names_the_layer_too(tmp_path, registry, monkeypatch):
    cfg = with_layer({"type": "flaky", "parent_pid": -1})  # every process counts as a worker
    with pytest.raises(TaskError, match=r"^layers\[3\] flaky raised ValueError: slope must be "
                                        r"finite, got nan \(in forward\)"):
        run(cfg, tmp_path, workers=0)


def test_cli_layer_exception_is_one_line_and_debug_shows_the_worker_traceback(tmp_path, registry,
                                                                               capsys):
    config = write_config(tmp_path, with_layer({"type": "flaky", "error": "unpicklable"}))
    args = ["train", str(config), "--workers", "2", "--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(args) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("paracnn: error: layers[3] flaky raised Unpicklable: holds a lock")
    assert main(["--debug", *args, "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "raise ERRORS[self.error]()" in err  # the worker's frames
    assert err.rstrip().splitlines()[-1].startswith("paracnn: error: layers[3] flaky raised")


# -- NaN and infinity -----------------------------------------------------------------------

def test_nan_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, registry):
    # 72 training samples per epoch in steps of 16: sample 93 is in step 2 of epoch 2.
    cfg = with_layer({"type": "nan_after", "samples": 92}, schedule="constant")
    with pytest.raises(TrainingDiverged) as info:
        run(cfg, tmp_path, workers=0)
    last = tmp_path / "run" / "checkpoints" / "last.json"
    message = str(info.value)
    assert message.startswith("training diverged: the loss became nan in step 2/5 of epoch 2 "
                              "(global step 7)"), message
    assert f"the last good checkpoint {last} is kept" in message
    assert "train.lr" in message and "clip_grad_norm" in message
    assert info.value.exit_code == 1
    state = load_checkpoint(last)  # finite: load_checkpoint refuses NaN
    assert (state["epoch"], state["step"]) == (1, 5)
    before = run(cfg, tmp_path, "ref", workers=0, max_steps=5)
    assert state["weights"] == before["weights"]


def test_a_diverging_learning_rate_is_a_one_line_error(tmp_path, capsys):
    cfg = tiny_dict(lr=1e300, momentum=0.0, nesterov=False, clip_grad_norm=None)
    config = write_config(tmp_path, cfg)
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--workers", "2", "--run-dir", str(run_dir),
                 "--no-progress"]) == 1
    err = one_line(capsys.readouterr().err)
    assert re.match(r"paracnn: error: training diverged: the (loss became nan|gradient holds NaN|"
                    r"update made some weights)[^;]* in step \d+/5 of epoch 1 ", err), err
    assert "no checkpoint was saved" in err
    assert not (run_dir / "checkpoints" / "last.json").exists()


# -- signals --------------------------------------------------------------------------------

def test_two_ctrl_c_stop_at_once_leaving_no_workers_or_shared_memory(tmp_path):
    config = write_config(tmp_path, tiny_dict(epochs=400))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "paracnn", "train", str(config), "--workers", "2",
                             "--run-dir", str(tmp_path / "run"), "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert read_line(proc.stdout, LIVENESS).startswith("training ")
        workers = [c.pid for c in psutil.Process(proc.pid).children()]
        with open(f"/proc/{proc.pid}/maps") as f:
            blocks = {line.split("/dev/shm/")[1].split()[0] for line in f if "/dev/shm/psm_" in line}
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=LIVENESS)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert len(workers) >= 2 and blocks  # the workers, and multiprocessing's resource tracker
    deadline = time.monotonic() + LIVENESS
    while (any(map(pid_alive, workers)) or any(map(shm_exists, blocks))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(pid_alive, workers)) and not any(map(shm_exists, blocks))
    last = tmp_path / "run" / "checkpoints" / "last.json"
    if last.exists():  # the first Ctrl-C may have finished its checkpoint
        load_checkpoint(last)


# -- a kill during a save -------------------------------------------------------------------

KILLED_MID_SAVE = """
import os, signal, sys
from paracnn import checkpoint
path, stage = sys.argv[1], sys.argv[2]
real = getattr(checkpoint.os, stage)
def die(*args):
    if stage == "replace":
        real(*args)  # the new file is complete, the rename not yet durable
    os.kill(os.getpid(), signal.SIGKILL)
setattr(checkpoint.os, stage, die)
checkpoint.save_checkpoint(path, config={}, weights=[2.0] * 1000, optimizer=None, epoch=2, step=20)
"""


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_a_process_killed_while_saving_leaves_a_loadable_checkpoint(tmp_path, stage):
    path = tmp_path / "last.json"
    save_checkpoint(path, config={}, weights=[1.0] * 1000, optimizer=None, epoch=1, step=10)
    child = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(path), stage], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=LIVENESS)
    assert child.returncode == -signal.SIGKILL
    state = load_checkpoint(path)
    # Killed before the rename: the old file; after it: the new one. Never a mix.
    expected = {"fsync": (1, 10, 1.0), "replace": (2, 20, 2.0)}[stage]
    assert (state["epoch"], state["step"], state["weights"][0]) == expected
    assert set(state["weights"]) == {expected[2]}
    json.loads(path.read_text())


def test_a_metrics_line_cut_short_by_a_crash_does_not_stop_the_resume(tmp_path):
    cfg = tiny_dict()
    reference = run(cfg, tmp_path, "ref", workers=0)
    stopped = run(cfg, tmp_path, max_steps=7, workers=0)  # epoch 1 done, its metrics written
    metrics = tmp_path / "run" / "metrics.jsonl"
    with open(metrics, "ab") as f:
        f.write(b'{"epoch": 2, "train_lo\xff')  # killed while appending epoch 2's line
    resumed = train(None, resume=stopped["run_dir"], workers=0, progress=False, log=quiet)
    assert resumed["weights_sha256"] == reference["weights_sha256"]
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2]
