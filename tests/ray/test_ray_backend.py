"""The Ray backend on a real (local) cluster: placement, bit-identity, faults, clean errors.

One session-scoped cluster (see ``conftest.py``): a head without CPUs and
two 1-CPU nodes, so two actors must land on two different nodes.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from paracnn.cli import main
from paracnn.train import Trainer, train

from ..parallel.helpers import REPO, quiet, tiny_config
from .conftest import processes_using

ray = pytest.importorskip("ray")


def ray_trainer(cluster, workers=2, log=quiet, **train_cfg):
    return Trainer(tiny_config(**train_cfg), workers=workers, backend="ray", address=cluster.address,
                   log=log)


def reference_weights(steps):
    """The weights after ``steps`` steps of epoch 0, in-process."""
    with Trainer(tiny_config(), workers=0, log=quiet) as t:
        for indices in t.batches(0)[:steps]:
            t.step(indices, 0)
        return t.weights


def test_actors_are_placed_on_distinct_nodes(ray_cluster):
    cluster, nodes = ray_cluster
    with ray_trainer(cluster) as t:
        placed = t.engine.backend.nodes()
    assert sorted(placed) == sorted(node.node_id for node in nodes)


def test_ray_training_is_bit_identical_to_in_process(ray_cluster, tmp_path):
    cluster, _ = ray_cluster
    config = tiny_config(backend="ray", ray_address=cluster.address)
    on_ray = train(config, workers=2, run_dir=tmp_path / "ray", progress=False, log=quiet)
    here = train(tiny_config(), workers=0, run_dir=tmp_path / "here", progress=False, log=quiet)
    assert on_ray["weights_sha256"] == here["weights_sha256"]
    assert on_ray["final"]["test_loss"] == here["final"]["test_loss"]  # evaluation on the actors too


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_ray_training_with_adam_is_bit_identical_to_in_process(ray_cluster, tmp_path, optimizer):
    cluster, _ = ray_cluster
    adam = {"optimizer": optimizer, "lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.01}
    config = tiny_config(backend="ray", ray_address=cluster.address, **adam)
    on_ray = train(config, workers=2, run_dir=tmp_path / "ray", progress=False, log=quiet)
    here = train(tiny_config(**adam), workers=0, run_dir=tmp_path / "here", progress=False, log=quiet)
    assert on_ray["weights_sha256"] == here["weights_sha256"]


def kill_during_step(backend, monkeypatch, at, fault):
    """Call ``fault()`` when the ``at``-th result of the run arrives (others are then in flight)."""
    record, calls = backend._record, []

    def faulty_record(task, value):
        calls.append(task)
        if len(calls) == at:
            fault()
        return record(task, value)

    monkeypatch.setattr(backend, "_record", faulty_record)


@pytest.mark.parametrize("sig, timeout, message", [
    (signal.SIGKILL, 300.0, "Ray actor 1 (pid {victim}"),
    (signal.SIGSTOP, 2.0, "did not finish a task within 2 s (hung)")], ids=["sigkill", "hung"])
def test_an_actor_killed_or_hung_mid_step_is_replaced_and_its_work_redone(ray_cluster, monkeypatch,
                                                                          sig, timeout, message):
    cluster, _ = ray_cluster
    messages = []
    with ray_trainer(cluster, log=messages.append, worker_timeout=timeout) as t:
        backend = t.engine.backend
        victim = backend.info[1]["pid"]
        kill_during_step(backend, monkeypatch, 10, lambda: os.kill(victim, sig))
        for indices in t.batches(0)[:3]:
            t.step(indices, 0)
        assert backend.restarts == 1 and backend.size == 2
        assert backend.info[1]["pid"] != victim
        weights = t.weights
    assert weights == reference_weights(3)
    assert len(messages) == 1 and message.format(victim=victim) in messages[0], messages


def test_a_node_removed_mid_step_leaves_the_run_on_the_other_actor(ray_cluster, monkeypatch):
    from paracnn.parallel import ray_backend

    cluster, nodes = ray_cluster
    monkeypatch.setattr(ray_backend, "REPLACE_TIMEOUT", 2.0)  # the lost bundle cannot be placed
    messages = []
    try:
        with ray_trainer(cluster, log=messages.append) as t:
            backend = t.engine.backend
            doomed = next(n for n in nodes if n.node_id == backend.info[1]["node_id"])
            kill_during_step(backend, monkeypatch, 10, lambda: cluster.remove_node(doomed))
            for indices in t.batches(0)[:3]:
                t.step(indices, 0)
            assert backend.size == 1
            weights = t.weights
    finally:
        nodes[:] = [n for n in nodes if n in cluster.worker_nodes]
        while len(nodes) < 2:  # NOTE: give the session its two nodes back
            nodes.append(cluster.add_node(num_cpus=1))
        cluster.wait_for_nodes()
    assert weights == reference_weights(3)
    assert any("going on with 1 actors" in m for m in messages), messages


def test_too_few_cpus_is_one_clear_error(ray_cluster, tmp_path, capsys):
    cluster, _ = ray_cluster
    code = main(["train", str(REPO / "configs" / "tiny.yaml"), "--backend", "ray", "--workers", "3",
                 "--address", cluster.address, "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "has 2 CPUs but --workers 3 needs 3" in err, err


def test_sigterm_stops_with_a_checkpoint_and_leaves_no_ray_process(tmp_path):
    folder = tempfile.mkdtemp(prefix="pcr-", dir="/tmp")  # NOTE: short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=folder, PYTHONPATH=str(REPO))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "paracnn", "train", str(REPO / "configs" / "tiny.yaml"),
                             "--backend", "ray", "--workers", "2", "--set", "train.epochs=100",
                             "--run-dir", str(run), "--no-progress"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # a liveness bound: a local Ray starts in 5-15 s
        while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err
        assert "interrupted by SIGTERM" in err and (run / "checkpoints" / "last.json").is_file()
        deadline = time.monotonic() + 30
        while processes_using(folder) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_using(folder), "Ray processes outlived the run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_local_ray_the_command_starts_leaves_no_session_behind(tmp_path):
    # Without --address paracnn starts its own Ray; its sockets and logs must go with it.
    def leftovers():
        ours = {f"/tmp/{n}" for n in os.listdir("/tmp") if n.startswith("paracnn-ray-")}
        sessions = set(os.listdir("/tmp/ray")) if os.path.isdir("/tmp/ray") else set()
        return ours | {f"/tmp/ray/{n}" for n in sessions - {"session_latest"}}

    before = leftovers()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "paracnn", "train", str(REPO / "configs" / "tiny.yaml"),
                          "--backend", "ray", "--workers", "1", "--set", "train.epochs=1",
                          "--run-dir", str(tmp_path / "run"), "--no-progress"],
                         capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr
    assert leftovers() - before == set()
