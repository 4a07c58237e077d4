"""Adam and AdamW through the whole trainer: resume to the bit, checkpointed moments, and torch."""

import json
import shutil

import pytest

from paracnn.checkpoint import load_checkpoint
from paracnn.config import config_from_dict
from paracnn.errors import CheckpointError
from paracnn.optim import Adam, AdamW
from paracnn.parallel import Engine
from paracnn.train import Trainer, train

from .parallel.helpers import quiet, tiny_config, tiny_dict

ADAM = {"optimizer": "adam", "lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 1e-3}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted two-epoch Adam run, in-process."""
    run = tmp_path_factory.mktemp("adam") / "run"
    return train(tiny_config(**ADAM), workers=0, run_dir=run, progress=False, log=quiet)


def test_the_checkpoint_holds_the_moments_and_the_step(straight):
    state = load_checkpoint(f"{straight['run_dir']}/checkpoints/last.json")["optimizer"]
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "step", "type"]
    assert (state["type"], state["step"]) == ("adam", 10)
    assert len(state["exp_avg"]) == len(state["exp_avg_sq"]) == straight["num_params"]
    assert min(state["exp_avg_sq"]) >= 0.0 and max(state["exp_avg_sq"]) > 0.0


@pytest.mark.parametrize("stop_at, workers, resume_workers", [(3, 2, 0), (5, 0, 2)])
def test_resume_is_bit_identical(tmp_path, straight, stop_at, workers, resume_workers):
    run = tmp_path / "run"
    first = train(tiny_config(**ADAM), workers=workers, run_dir=run, max_steps=stop_at, progress=False,
                  log=quiet)
    assert first["stopped"] and load_checkpoint(run / "checkpoints" / "last.json")["optimizer"]["step"] == stop_at
    second = train(None, resume=run, workers=resume_workers, progress=False, log=quiet)
    assert second["weights_sha256"] == straight["weights_sha256"]


def test_a_mid_epoch_checkpoint_of_checkpoint_every_resumes_to_the_same_weights(tmp_path, straight,
                                                                                monkeypatch):
    # The run goes on to the end; a copy of its folder taken just after the mid-epoch
    # checkpoint of step 2 is then resumed, as after a crash at that point.
    import paracnn.runfolder

    real, run, copy = paracnn.runfolder.save_checkpoint, tmp_path / "run", tmp_path / "crashed"

    def save_and_copy(path, **state):
        out = real(path, **state)
        if path.name == "last.json" and (state["step"], state["step_in_epoch"]) == (2, 2):
            shutil.copytree(run, copy)
        return out

    monkeypatch.setattr(paracnn.runfolder, "save_checkpoint", save_and_copy)
    full = train(config_from_dict(tiny_dict(checkpoint_every=2, **ADAM)), workers=2, run_dir=run,
                 progress=False, log=quiet)
    monkeypatch.setattr(paracnn.runfolder, "save_checkpoint", real)
    assert full["weights_sha256"] == straight["weights_sha256"]  # checkpointing changes nothing
    assert load_checkpoint(copy / "checkpoints" / "last.json")["step_in_epoch"] == 2
    resumed = train(None, resume=copy, workers=0, progress=False, log=quiet)
    assert resumed["weights_sha256"] == straight["weights_sha256"]


def test_resuming_an_sgd_run_with_adam_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(), workers=0, run_dir=run, max_steps=2, progress=False, log=quiet)
    with pytest.raises(CheckpointError, match="train.optimizer is 'adam' in the config but 'sgd' in "
                                              "checkpoint .*; resuming must not change it"):
        train(tiny_config(optimizer="adam"), resume=run, progress=False, log=quiet)
    # Loading it into an Adam trainer directly (as the API allows) names both optimisers.
    with Trainer(tiny_config(**ADAM), workers=0, log=quiet) as t:
        with pytest.raises(CheckpointError, match=r"checkpoint .*last.json holds the state of optimizer "
                                                  r"sgd, not adam: continue it with optimizer sgd"):
            t.load_state(load_checkpoint(run / "checkpoints" / "last.json"))


@pytest.mark.parametrize("damage, message", [
    (lambda o: o["exp_avg"].pop(), r"has an optimizer exp_avg of the wrong length \(.*, expected"),
    (lambda o: o["exp_avg_sq"].__setitem__(3, "x"), r"optimizer exp_avg_sq\[3\] is 'x'; expected a finite"),
    (lambda o: o.__setitem__("step", -1), "has optimizer step -1 .*; it is damaged"),
    # Adam's bias correction needs t = the run's step: an off-by-one would resume silently wrong
    (lambda o: o.__setitem__("step", o["step"] - 1), r"has optimizer step \d+ but step \d+; .* damaged"),
])
def test_a_damaged_adam_state_is_one_clear_line(straight, tmp_path, damage, message):
    state = json.loads(open(f"{straight['run_dir']}/checkpoints/last.json").read())
    damage(state["optimizer"])
    path = tmp_path / "last.json"
    path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=message) as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value)


def test_a_state_without_moments_yet_starts_them_from_zero(straight, tmp_path):
    # A checkpoint of step 0 (as written before the first step) has null moments.
    with Trainer(tiny_config(**ADAM), workers=0, log=quiet) as t:
        assert t.optimizer_state() == {"type": "adam", "step": 0, "exp_avg": None, "exp_avg_sq": None}
        t.step(t.batches(0)[0], 0)
        state = t.optimizer_state()
    assert state["step"] == 1 and len(state["exp_avg"]) == straight["num_params"]


# -- against PyTorch, through the engine ---------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("kind, name", [(Adam, "Adam"), (AdamW, "AdamW")])
def test_engine_steps_equal_torch_optim_in_float64(workers, kind, name):
    """Several engine steps (gradients summed by slots, the update sliced in the workers, the
    step number from the engine) against ``torch.optim`` fed the same mean gradients."""
    torch = pytest.importorskip("torch")
    from .parallel.helpers import datasets, model_with

    model = model_with()
    initial = list(model.get_weights())
    batches, rates = [range(3, 15), range(20, 31), range(0, 12), range(26, 38)], [0.05, 0.02, 0.05, 0.01]
    p = torch.tensor(initial, dtype=torch.float64, requires_grad=True)
    ref = getattr(torch.optim, name)([p], lr=rates[0], betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05,
                                     foreach=False)
    with Engine(model, datasets(), workers=0, batch_size=12, micro_batch=2, seed=5) as grads:
        for epoch, (indices, lr) in enumerate(zip(batches, rates)):
            grads.set_weights(p.detach().tolist())
            p.grad = torch.tensor(grads.gradient(indices, epoch)["grad"], dtype=torch.float64)
            ref.param_groups[0]["lr"] = lr
            ref.step()
    model.set_weights(initial)
    opt = kind(lr=rates[0], betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05)
    with Engine(model, datasets(), workers=workers, batch_size=12, micro_batch=2, seed=5,
                optimizer=opt, start_method="fork") as engine:
        engine.set_state(initial)
        for epoch, (indices, lr) in enumerate(zip(batches, rates)):
            assert engine.step(indices, epoch, lr).diverged is None
        weights, buffers = engine.get_weights(), engine.get_buffers()
    state = ref.state[p]
    assert weights == pytest.approx(p.detach().tolist(), rel=1e-12, abs=1e-15)
    assert buffers["exp_avg"] == pytest.approx(state["exp_avg"].tolist(), rel=1e-12, abs=1e-15)
    assert buffers["exp_avg_sq"] == pytest.approx(state["exp_avg_sq"].tolist(), rel=1e-12, abs=1e-15)
    assert engine.steps == int(state["step"]) == len(batches)
