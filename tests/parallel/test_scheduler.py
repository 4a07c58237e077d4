"""The one scheduler, run against the toy thread backend and the local worker pool alike."""

import os
import signal

import pytest

from paracnn.optim import SGD
from paracnn.parallel.layout import SharedLayout
from paracnn.parallel.local import InProcess, LocalPool
from paracnn.parallel.protocol import run_task
from paracnn.parallel.scheduler import Backend

from .helpers import datasets, model_with
from .scheduler_contract import CHECKS, InFlight, eval_tasks, run_check
from .toy_backend import ThreadBackend


def _local_pool(model, sets, layout):
    backend = LocalPool(model, sets, layout, SGD(), workers=2, start_method="fork")
    pool = backend.pool

    def crash(w):
        os.kill(pool.procs[w].pid, signal.SIGKILL)

    return backend, pool, crash


def _threads(model, sets, layout):
    backend = ThreadBackend(model, sets, layout, SGD(), workers=2)
    return backend, backend, backend.crash


@pytest.fixture(params=["threads", "local-pool"])
def case(request):
    model, sets = model_with(), datasets()
    layout = SharedLayout(model.num_params(), 4)
    owner, backend, crash = {"threads": _threads, "local-pool": _local_pool}[request.param](model, sets, layout)
    here = InProcess(model, sets, layout, SGD())
    for compute in (owner.compute, here.compute):  # NOTE: real weights, so predictions differ by sample
        compute.weights(0)[:] = model.get_weights()
    try:
        yield backend, crash, lambda task: run_task(here.compute, task)
    finally:
        owner.close()


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_scheduler_contract(case, check, monkeypatch):
    run_check(check, case, monkeypatch)


def test_a_backend_that_provides_nothing_says_which_method_is_missing():
    with pytest.raises(NotImplementedError):
        Backend().run([object()])


@pytest.mark.parametrize("workers, cores", [(3, 2), (4, 1)])
def test_no_more_workers_are_busy_at_once_than_there_are_cores(monkeypatch, workers, cores):
    model, sets = model_with(), datasets()
    layout = SharedLayout(model.num_params(), 4)
    backend = ThreadBackend(model, sets, layout, SGD(), workers=workers)
    backend.cores = cores
    here = InProcess(model, sets, layout, SGD())
    for compute in (backend.compute, here.compute):
        compute.weights(0)[:] = model.get_weights()
    counts = InFlight(backend, monkeypatch)
    try:
        tasks = eval_tasks(10)
        results = backend.run(tasks)
        assert counts.most_busy == cores
        assert [r.preds for r in results] == [run_task(here.compute, t).preds for t in tasks]
    finally:
        backend.close()
