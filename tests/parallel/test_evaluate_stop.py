"""``Engine.evaluate(split, should_stop)``: the contract every engine keeps.

``should_stop`` is called with no arguments between chunks (in-process) or as
results arrive (workers); once it says True no more chunks start, and
``EvaluationStopped`` is raised; the engine stays usable. Without a stop the
result is the same as without it.
"""

import pytest

from paracnn.parallel import Engine, EvaluationStopped

from .helpers import datasets, model_with


class StopAt:
    """A should_stop that says True from its ``n``-th call on (picklable, no closure)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self):
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize("workers", [0, 2])
def test_should_stop_stops_the_evaluation_and_the_engine_stays_usable(workers):
    model = model_with()
    with Engine(model, datasets(), workers=workers, batch_size=8, eval_batch=1) as engine:
        engine.set_state(model.get_weights())
        plain = engine.evaluate("test")
        never = StopAt(10 ** 9)
        assert engine.evaluate("test", should_stop=never)[:2] == plain[:2]
        # 8 test samples in chunks of 1: asked before each chunk in-process, as results
        # arrive with workers
        assert never.calls == 8 if workers == 0 else never.calls >= 1
        stop = StopAt(3)
        with pytest.raises(EvaluationStopped, match=r"evaluation of the test set stopped after \d of 8"):
            engine.evaluate("test", should_stop=stop)
        assert stop.calls >= 3
        again = engine.evaluate("test")
        assert again[:2] == plain[:2]
