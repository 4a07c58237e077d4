"""SIGINT / SIGTERM: during evaluation, twice during a step, and what the first one prints.

The runs are subprocesses writing to files (never a blocking read of a pipe); each
wait is a generous timeout on a condition that must become true.
"""

import json
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
from paracnn.signals import StopNow, StopSignals
from paracnn.train import train, weights_hash

from .parallel.helpers import REPO, pid_alive, quiet, tiny_dict

PATIENCE = 120


def slow_dict(**train_cfg):
    """A conv net on 28x28 synthetic images: 3 steps of 16, then a long evaluation of 1,000 images."""
    cfg = tiny_dict(log_every=1, **train_cfg)
    cfg["model"] = {"input_shape": [1, 28, 28], "layers": [
        {"type": "conv2d", "filters": 8, "kernel_size": 5}, {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"}, {"type": "dense", "units": 4}]}
    cfg["data"]["validation"] = 0.0
    cfg["data"]["synthetic"].update(train_size=48, test_size=1000, image_shape=[1, 28, 28])
    return cfg


def start(tmp_path, cfg):
    config = tmp_path / "slow.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    out, err = open(tmp_path / "out.txt", "w"), open(tmp_path / "err.txt", "w")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "paracnn", "train", str(config), "--workers", "2",
                             "--run-dir", str(run)], cwd=REPO, env=env, stdout=out, stderr=err)
    out.close()
    err.close()
    return proc, run


def rows(run):
    try:
        return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        return []


def wait_for(condition, what, proc):
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {PATIENCE} s")
        time.sleep(0.02)


def finish(proc):
    try:
        return proc.wait(timeout=PATIENCE)
    finally:
        proc.kill()


@pytest.mark.parametrize("sig, epochs, code", [(signal.SIGINT, 1, 130), (signal.SIGTERM, 2, 143)])
def test_a_signal_during_evaluation_stops_it_with_a_checkpoint_and_is_not_a_completed_run(
        tmp_path, sig, epochs, code):
    # With one epoch this is the final evaluation: the run must not end as complete (exit 0).
    proc, run = start(tmp_path, slow_dict(epochs=epochs))
    try:
        # The epoch's last steps.jsonl row is written just before its evaluation starts.
        wait_for(lambda: any(r["step"] == 3 for r in rows(run)), "end of the epoch's training", proc)
        workers = [c.pid for c in psutil.Process(proc.pid).children()]
        proc.send_signal(sig)
    finally:
        status = finish(proc)
    out, err = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert status == code, err
    assert f"interrupted by {sig.name}" in err and "evaluation was cut short" in err, err
    key = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    assert f"{key}: stopping after this part of the evaluation; {key} again to stop now" in out
    # The evaluation did not finish: no epoch record, no eval.json; the checkpoint holds
    # the epoch's training, so --resume evaluates it and goes on.
    state = load_checkpoint(run / "checkpoints" / "last.json")
    assert (state["epoch"], state["step"], state["step_in_epoch"]) == (0, 3, 3)
    assert not (run / "eval.json").exists()
    assert not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text().strip()
    assert len(workers) >= 2
    wait_for(lambda: not any(map(pid_alive, workers)), "exit of the workers", None)


def ten_long_steps():
    """One epoch of ten long steps: time to send signals while it trains."""
    cfg = slow_dict(epochs=1, batch_size=48)
    cfg["data"]["synthetic"].update(train_size=480, test_size=8)
    return cfg


def test_the_first_ctrl_c_while_training_says_what_will_happen_then_stops_after_the_step(tmp_path):
    cfg = ten_long_steps()
    proc, run = start(tmp_path, cfg)
    try:
        wait_for(lambda: len(rows(run)) >= 1, "finished step", proc)
        proc.send_signal(signal.SIGINT)
    finally:
        status = finish(proc)
    out, err = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert status == 130, err
    assert "Ctrl-C: stopping after this step; Ctrl-C again to stop now" in out
    state = load_checkpoint(run / "checkpoints" / "last.json")
    assert 1 <= state["step"] == state["step_in_epoch"] < 10
    assert f"step {state['step']}/10" in err and "dropped" not in err, err


def test_a_second_ctrl_c_drops_the_step_in_progress_and_saves_the_last_finished_one(tmp_path):
    cfg = ten_long_steps()
    proc, run = start(tmp_path, cfg)
    try:
        wait_for(lambda: len(rows(run)) >= 1, "finished step", proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
    finally:
        status = finish(proc)
    err = (tmp_path / "err.txt").read_text()
    assert status == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "interrupted by SIGINT" in err and "--resume" in err, err
    # What was saved is consistent: the weights of exactly that many finished steps.
    state = load_checkpoint(run / "checkpoints" / "last.json")
    assert 1 <= state["step"] == state["step_in_epoch"] < 10
    same = train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "ref", max_steps=state["step"],
                 progress=False, log=quiet)
    assert weights_hash(state["weights"]) == same["weights_sha256"]


def test_the_first_signal_asks_for_a_notice_and_a_second_one_stops_a_step():
    signals = StopSignals()
    assert signals.notice() is None and signals.received is None
    signals._on_signal(signal.SIGINT, None)
    assert signals.received == signal.SIGINT and not signals.now and signals.exit_code == 130
    assert signals.notice() == "Ctrl-C: stopping after this step; Ctrl-C again to stop now"
    assert signals.notice() is None  # once
    with pytest.raises(StopNow):
        with signals.interruptible():
            signals._on_signal(signal.SIGINT, None)
    # Outside a step (writing a checkpoint, say) a second signal is only recorded.
    term = StopSignals()
    term._on_signal(signal.SIGTERM, None)
    term._on_signal(signal.SIGTERM, None)
    assert term.now and term.exit_code == 143
    assert term.notice() == "SIGTERM: stopping after this step; SIGTERM again to stop now"
    with pytest.raises(StopNow):
        with term.interruptible():
            pass


def test_the_command_blocks_late_signals_once_it_has_its_exit_status(tmp_path):
    # A second Ctrl-C that lands while Python shuts down (its default handlers back,
    # waiting for the workers) used to end a stopped run with -2 instead of its 130.
    code = ("import signal, sys\n"
            "from paracnn import cli\n"
            "sys.argv = ['paracnn', 'layers', '--json']\n"
            "def report(code):\n"
            "    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])\n"
            "    sys.stderr.write(f'{code} {signal.SIGINT in blocked} {signal.SIGTERM in blocked}')\n"
            "sys.exit = report\n"
            "cli.entry()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert out.stderr == "0 True True"
