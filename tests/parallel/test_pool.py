"""The worker pool: dead workers are replaced and their work redone; nothing is left behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

from paracnn.parallel import Engine, WorkerError, WorkerTaskError
from paracnn.parallel.failures import describe_exit

from .helpers import REPO, datasets, model_with, pid_alive, read_line, shm_exists
from .killer import Boom, Killer

def gradient(model, workers, **kw):
    with Engine(model, datasets(), workers=workers, batch_size=12, micro_batch=2, seed=5,
                start_method="fork", **kw) as engine:
        engine.set_weights(model.get_weights())
        out = engine.gradient(range(3, 15), epoch=1)
        return out, engine


def test_gradient_is_the_mean_of_per_sample_gradients():
    model = model_with()
    out, _ = gradient(model, workers=0)
    sets = datasets()
    total = [0.0] * model.num_params()
    for i in range(3, 15):
        model.zero_grad()
        x, y = sets["train"].sample(i)
        model.train_sample(x, y, seed=0)
        total = [a + b for a, b in zip(total, model.get_grads())]
    assert out["samples"] == 12
    assert max(abs(a / 12 - b) for a, b in zip(total, out["grad"])) < 1e-12


def test_a_killed_worker_is_replaced_and_the_step_recomputed(tmp_path):
    marker = tmp_path / "kill"
    reference, _ = gradient(model_with(Killer(marker)), workers=0)
    marker.touch()
    messages = []
    out, engine = gradient(model_with(Killer(marker)), workers=2, log=messages.append)
    assert not marker.exists()  # a worker really died on it
    assert out["grad"] == reference["grad"]
    assert out["loss_sum"] == reference["loss_sum"]
    assert len(messages) == 1 and "killed by signal 9 (SIGKILL)" in messages[0], messages


def test_workers_killed_while_idle_are_replaced():
    model = model_with()
    reference, _ = gradient(model, workers=0)
    messages = []
    with Engine(model, datasets(), workers=2, batch_size=12, micro_batch=2, seed=5,
                start_method="fork", log=messages.append) as engine:
        victims = engine.worker_pids()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        engine.set_weights(model.get_weights())
        out = engine.gradient(range(3, 15), epoch=1)
        assert out["grad"] == reference["grad"]
        assert engine.pool.restarts == 2 and len(messages) == 2
        assert len(set(engine.worker_pids()) - set(victims)) == 2


def test_workers_that_keep_dying_stop_the_run_naming_pid_and_signal(tmp_path):
    marker = tmp_path / "kill"
    marker.touch()
    with pytest.raises(WorkerError) as info:
        gradient(model_with(Killer(marker, once=False)), workers=2, max_failures=2,
                 log=lambda m: None)
    message = str(info.value)
    assert "killed by signal 9 (SIGKILL)" in message and "pid" in message
    assert "3 worker failures in a row" in message


def test_an_exception_in_a_worker_is_reported_with_its_traceback():
    with pytest.raises(WorkerTaskError) as info:
        gradient(model_with(Boom()), workers=1)
    assert "ZeroDivisionError: boom in a layer" in str(info.value)


def test_close_stops_workers_and_unlinks_shared_memory():
    model = model_with()
    engine = Engine(model, datasets(), workers=2, batch_size=12, seed=0)
    pids = engine.worker_pids()
    names = [b.name for b in engine.backend._blocks]
    assert len(pids) == 2 and all(map(shm_exists, names))
    engine.set_weights(model.get_weights())
    engine.evaluate("test")
    engine.close()
    assert not any(map(pid_alive, pids))
    assert not any(map(shm_exists, names))
    engine.close()  # idempotent


def test_evaluation_does_not_depend_on_workers_or_chunks():
    model = model_with()
    results = []
    for workers, chunk in ((0, None), (2, 3), (3, 40)):
        with Engine(model, datasets(), workers=workers, batch_size=12, eval_batch=chunk) as engine:
            engine.set_weights(model.get_weights())
            results.append(engine.evaluate("train"))
    assert results[0][:2] == results[1][:2] == results[2][:2]
    sets = datasets()
    preds = [max(range(3), key=model.predict(sets["train"].sample(i)[0]).__getitem__) for i in range(40)]
    assert results[0][1] == preds


CHILD = """
import sys, time
from tests.parallel.helpers import model_with, datasets
from paracnn.parallel import Engine
engine = Engine(model_with(), datasets(), workers=2, batch_size=12, start_method=sys.argv[1])
print(" ".join(map(str, engine.worker_pids())), flush=True)
print(" ".join(b.name for b in engine.backend._blocks), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_exit_when_the_parent_is_killed(method):
    child = subprocess.Popen([sys.executable, "-c", CHILD, method], cwd=REPO, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        pids = [int(p) for p in read_line(child.stdout).split()]
        names = read_line(child.stdout).split()
    finally:
        child.kill()
        child.wait()
    assert len(pids) == 2 and len(names) >= 3
    deadline = time.monotonic() + 30  # a liveness bound, not a speed requirement
    while (any(map(pid_alive, pids)) or any(map(shm_exists, names))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(pid_alive, pids)), "workers outlived their parent"
    # multiprocessing's resource tracker unlinks what the killed parent created
    assert not any(map(shm_exists, names))


def test_describe_exit():
    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(1) == "exited with status 1"


def test_a_failed_engine_start_reports_its_error_and_frees_shared_memory(monkeypatch):
    from paracnn.parallel import local as local_module

    created = []
    real_create = local_module.create_block

    def create_block(nbytes):
        block = real_create(nbytes)
        created.append(block.name)
        return block

    def share_datasets(datasets):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_module, "create_block", create_block)
    monkeypatch.setattr(local_module, "share_datasets", share_datasets)
    with pytest.raises(OSError, match="No space left on device"):
        Engine(model_with(), datasets(), workers=2, batch_size=12)
    assert len(created) == 2 and not any(map(shm_exists, created))
