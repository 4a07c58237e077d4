"""The README's serial training step is real code: it runs, and the loss falls."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def serial_step_code():
    section = README.split("## The training step, serially", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_serial_training_step_runs_and_the_loss_falls(capsys):
    code = serial_step_code()
    assert 12 <= len([line for line in code.splitlines() if line.strip()]) <= 22  # "about 15 lines"
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    losses = scope["losses"]
    assert len(losses) == 30 and losses[-1] < 0.5 * losses[0]
    assert capsys.readouterr().out.startswith("loss ")


def test_the_serial_step_equals_the_engines():
    """The README's loop and the Engine reach the same weights (up to the summation order)."""
    from paracnn.parallel import Engine

    scope = {}
    exec(compile(serial_step_code(), "README.md", "exec"), scope)
    model, data = scope["model"], scope["data"]
    # NOTE: no dropout, so the per-sample seeds (the README's and the engine's differ) do not matter.
    ds = _ListSet(data)
    model.build(seed=0)
    with Engine(model, {"train": ds}, workers=0, batch_size=len(data), micro_batch=len(data),
                optimizer=type(scope["opt"])(lr=0.01)) as engine:
        engine.set_state(model.get_weights())
        for step in range(30):
            engine.step(list(range(len(data))), step, 0.01)
        weights = engine.get_weights()
    assert weights == pytest.approx(scope["weights"], rel=1e-9, abs=1e-12)


class _ListSet:
    """The README's samples as the engine reads a dataset."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def sample(self, i):
        return self.items[i]

    def train_sample(self, i, seed, epoch):
        return self.items[i]
