"""The memory estimate that sizes the default parameter budget (paracnn/memory.py)."""

from paracnn import memory
from paracnn.config import config_from_dict

from .parallel.helpers import tiny_dict


def test_adam_s_second_moment_is_counted_and_sgd_is_unchanged():
    sgd = memory.training_bytes(1000, workers=2, buffers=1)
    assert sgd == 1000 * memory.FLOAT_BYTES * (memory.PARENT_VECTORS + 2 * memory.WORKER_VECTORS)
    assert memory.training_bytes(1000, workers=2, buffers=0) == sgd  # momentum-free SGD: as before
    assert memory.training_bytes(1000, workers=2, buffers=2) > sgd


def test_the_config_sizes_the_budget_by_its_optimizer(monkeypatch):
    asked = []
    monkeypatch.setattr(memory, "available_memory", lambda: 10**9)
    real = memory.training_bytes

    def spy(num_params, workers=0, buffers=1):
        asked.append(buffers)
        return real(num_params, workers, buffers)

    monkeypatch.setattr(memory, "training_bytes", spy)
    sgd = tiny_dict()  # momentum 0.9: one buffer
    adam = tiny_dict(optimizer="adam", momentum=0.0, nesterov=False)  # two moments
    for cfg, buffers in ((sgd, 1), (adam, 2)):
        config_from_dict(cfg).build_model()
        assert asked[-1] == buffers, cfg["train"]["optimizer"] if "optimizer" in cfg["train"] else "sgd"
