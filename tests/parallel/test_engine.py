"""The engine's own contract: stopping an evaluation, the protocol's dispatch, the shared layout."""

import pytest

from paracnn.parallel import Engine, EvaluationStopped
from paracnn.parallel.layout import SharedLayout
from paracnn.parallel.protocol import HANDLERS, EvalTask, ReduceTask, Stop, TrainTask, UpdateTask, run_task

from .helpers import datasets, model_with


class StopAfter:
    """``should_stop`` that says True from its ``n``-th call on, counting the calls."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self):
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize("workers", [0, 2])
def test_evaluation_stops_when_asked_and_the_engine_stays_usable(workers):
    model = model_with()
    with Engine(model, datasets(), workers=workers, batch_size=12, eval_batch=2,
                start_method="fork") as engine:
        engine.set_weights(model.get_weights())
        whole = engine.evaluate("train")  # 20 chunks of 2
        stop = StopAfter(3)
        with pytest.raises(EvaluationStopped, match=r"stopped after \d+ of 20 chunks"):
            engine.evaluate("train", should_stop=stop)
        assert stop.calls >= 3
        # nothing stale is left in a pipe: the next evaluation gives the same answers
        assert engine.evaluate("train")[:2] == whole[:2]
        assert engine.evaluate("train", should_stop=StopAfter(10 ** 6))[:2] == whole[:2]


def test_every_task_type_has_one_handler_and_others_are_refused():
    assert set(HANDLERS) == {TrainTask, EvalTask, ReduceTask, UpdateTask}
    with pytest.raises(ValueError, match="unknown task Stop"):
        run_task(None, Stop())


def test_the_shared_layout_puts_each_vector_after_the_previous_one():
    model = model_with()
    p = model.num_params()
    layout = SharedLayout(p, slots=3, buffers=1)
    assert (layout.state_bytes, layout.grads_bytes) == (8 * 4 * p, 8 * 5 * p)
    compute = layout.private_compute(model, {}, None)
    values = {"slot 2": compute.grads[2 * p:], "mean": compute.mean, "prefix": compute.prefix}
    assert [len(v) for v in values.values()] == [p, p, p]
    compute.mean[0] = 1.5
    compute.prefix[p - 1] = 2.5
    raw = memoryview(compute.grads.obj).cast("d")  # the whole gradient buffer
    assert raw[3 * p] == 1.5 and raw[5 * p - 1] == 2.5
    compute.buffer(0, 1)[0] = 7.0
    assert compute.state[3 * p] == 7.0
    SharedLayout.release(compute)
    with pytest.raises(ValueError):
        compute.mean[0]
