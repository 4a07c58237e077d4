"""The scheduler's contract (``tests/parallel/scheduler_contract.py``) on Ray actors."""

import pytest

from paracnn.parallel.protocol import run_task

from ..parallel.scheduler_contract import CHECKS, run_check
from .test_ray_backend import ray_trainer

ray = pytest.importorskip("ray")


@pytest.fixture
def case(ray_cluster):
    cluster, _ = ray_cluster
    with ray_trainer(cluster) as trainer:
        backend = trainer.engine.backend
        # NOTE: the contract's tasks read weight version 0: give it the model's initial weights
        backend.compute.weights(0)[:] = backend.compute.weights(trainer.engine.version)

        def crash(w):
            ray.kill(backend.actors[w], no_restart=True)

        yield backend, crash, lambda task: run_task(backend.compute, task)


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_scheduler_contract_on_ray(case, check, monkeypatch):
    run_check(check, case, monkeypatch)
