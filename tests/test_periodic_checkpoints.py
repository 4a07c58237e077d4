"""``train.checkpoint_every``: mid-epoch checkpoints, and a run whose parent was SIGKILLed resumes exactly."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from paracnn.checkpoint import load_checkpoint
from paracnn.config import config_from_dict
from paracnn.train import train

from .parallel.helpers import REPO, pid_alive, quiet, shm_exists, tiny_dict

#: seconds to wait for a condition that must become true (a slow, shared CI machine).
PATIENCE = 120


def long_dict(**train_cfg):
    """Two epochs of 225 small steps (batch 4): long enough to be killed in the middle of one."""
    cfg = tiny_dict(epochs=2, batch_size=4, **train_cfg)
    cfg["data"]["synthetic"].update(train_size=1200, test_size=64)
    return cfg


def wait_for(condition, what, proc=None):
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before {what}: "
                        f"{proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {PATIENCE} s")
        time.sleep(0.02)


def mid_epoch_checkpoint(path):
    try:
        state = load_checkpoint(path)
    except Exception:  # noqa: BLE001 - not written yet
        return False
    return state["step_in_epoch"] > 0


def test_a_parent_killed_mid_epoch_resumes_to_the_same_weights_leaving_nothing_behind(tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump(long_dict(checkpoint_every=10)))
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "paracnn", "train", str(config), "--workers", "2",
                             "--run-dir", str(run), "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        parent = psutil.Process(proc.pid)
        wait_for(lambda: len(parent.children()) >= 2, "workers", proc)
        wait_for(lambda: mid_epoch_checkpoint(last), "mid-epoch checkpoint", proc)
        workers = [c.pid for c in parent.children()]
        with open(f"/proc/{proc.pid}/maps") as f:
            blocks = sorted({line.split("/dev/shm/")[1].split()[0] for line in f
                             if "/dev/shm/psm_" in line})
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=PATIENCE)
    finally:
        proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(last)
    assert 0 < state["step"] < 450
    # Nothing is left behind: the workers see their parent gone, the resource tracker
    # unlinks the shared memory.
    assert len(workers) >= 2 and len(blocks) >= 3
    wait_for(lambda: not any(map(pid_alive, workers)) and not any(map(shm_exists, blocks)),
             "exit of every worker and release of every shared block")

    resumed = train(None, resume=run, workers=2, progress=False, log=quiet)
    undisturbed = train(config_from_dict(long_dict(checkpoint_every=10)), workers=0,
                        run_dir=tmp_path / "straight", progress=False, log=quiet)
    assert resumed["steps"] == undisturbed["steps"] == 450
    assert resumed["weights_sha256"] == undisturbed["weights_sha256"]
    assert [r["test_accuracy"] for r in resumed["history"]] == \
        [r["test_accuracy"] for r in undisturbed["history"]]


def test_checkpoints_are_written_every_n_steps_in_the_middle_of_an_epoch(tmp_path, monkeypatch):
    saved = []
    import paracnn.runfolder

    real = paracnn.runfolder.save_checkpoint

    def spy(path, **state):
        saved.append((path.name, state["step"], state["step_in_epoch"]))
        return real(path, **state)

    monkeypatch.setattr(paracnn.runfolder, "save_checkpoint", spy)
    cfg = tiny_dict(epochs=1, checkpoint_every=2)  # 5 steps of 16
    train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "run", progress=False, log=quiet)
    assert ("last.json", 2, 2) in saved and ("last.json", 4, 4) in saved
    assert saved[-2:] == [("last.json", 5, 0), ("best.json", 5, 0)]


def test_checkpoint_every_zero_writes_only_at_epoch_ends(tmp_path, monkeypatch):
    saved = []
    import paracnn.runfolder

    real = paracnn.runfolder.save_checkpoint

    def spy(path, **state):
        saved.append(state["step_in_epoch"])
        return real(path, **state)

    monkeypatch.setattr(paracnn.runfolder, "save_checkpoint", spy)
    train(config_from_dict(tiny_dict(epochs=2, checkpoint_every=0)), workers=0,
          run_dir=tmp_path / "run", progress=False, log=quiet)
    assert saved and set(saved) == {0}
