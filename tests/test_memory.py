"""The memory estimate that sizes the default parameter budget (paracnn/memory.py)."""

import pytest
import yaml

from paracnn import memory
from paracnn.budget import OverMemory, ParamBudget
from paracnn.cli import main
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


def huge_input(side=20_000, samples=1):
    cfg = tiny_dict()
    cfg["model"]["input_shape"] = [1, side, side]
    cfg["data"]["synthetic"].update(image_shape=[1, side, side], train_size=samples, test_size=samples)
    return cfg


def test_a_huge_input_is_refused_with_the_figure_before_any_layer_allocates(monkeypatch):
    from paracnn import kernels
    from paracnn.errors import ModelTooLarge
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 10**9)
    monkeypatch.setattr(kernels, "window_table", lambda *a, **k: pytest.fail("a conv plan was built"))
    with pytest.raises(ModelTooLarge, match=r"the input \(1, 20000, 20000\) is too large: training would "
                                            r"need about 52.8 GB \(51.2 GB for one sample's 400,000,000 "
                                            r"activations in 1 process, 1.6 GB for the dataset\) but 8.0 GB "
                                            r"of memory may be used"):
        config_from_dict(huge_input(), name="x.yaml").build_model()


def test_activations_and_parameters_are_held_to_the_memory_together():
    # each fits alone, not both: the parameters' share is what the activations may not take
    plan = memory.MemoryPlan(available=memory.training_bytes(1000) + memory.activation_bytes(500))
    assert plan.fits(1000, 0) and plan.fits(0, 1000) and plan.fits(1000, 500)
    with ParamBudget(None, plan) as budget:
        budget.take_values((500,))
        budget.take("weight", (1000,))
        with pytest.raises(OverMemory, match=r"1,000 parameters, .* one sample's 501 activations"):
            budget.take_values((1,))


def test_a_synthetic_dataset_too_large_for_memory_is_refused_even_by_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 10**9)
    cfg = tiny_dict()
    cfg["data"]["synthetic"]["train_size"] = 10**10
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(cfg))
    for argv in (["summary", str(path)], ["train", str(path), "--run-dir", str(tmp_path / "run")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "the dataset of 10,000,000," in err and "use fewer samples" in err
    assert not (tmp_path / "run").exists()


def test_the_address_space_limit_counts_as_the_memory_available():
    pytest.importorskip("resource")
    # NOTE: a child process, so the limit cannot starve this one
    code = ("import resource, sys; from paracnn import memory; "
            "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY)); "
            "sys.exit(0 if memory.available_memory() < 4 << 30 else 1)")
    import subprocess
    import sys
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
