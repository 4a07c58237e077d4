"""The shared-memory mailboxes: every task and result type survives the codec; the rest takes the pipe."""

import pytest
from hypothesis import given, strategies as st

from paracnn.parallel import mailbox
from paracnn.parallel.engine import Engine
from paracnn.parallel.mailbox import CAPACITY, PIPE, Mailbox, Ring
from paracnn.parallel.protocol import (EvalResult, EvalTask, Failed, ReduceResult, ReduceTask, Stop,
                                       TrainResult, TrainTask, UpdateResult, UpdateTask)

from .helpers import datasets, model_with

SPLITS = ("train", "val", "test")
ints = st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1)
small = st.integers(min_value=0, max_value=10 ** 6)
floats = st.floats(allow_nan=False)
split = st.sampled_from(SPLITS)
indices = st.lists(small, max_size=8)

TASKS_AND_RESULTS = st.one_of(
    st.builds(TrainTask, small, small, split, ints, small, indices, small),
    st.builds(EvalTask, small, small, split, st.one_of(indices, st.builds(range, small, small))),
    st.builds(ReduceTask, small, small, floats, small, small, small),
    st.builds(UpdateTask, small, small, st.one_of(st.none(), small), floats, small, small, floats, small,
              st.one_of(st.none(), floats), small),
    st.builds(TrainResult, floats, small, floats, floats, floats, floats),
    st.builds(EvalResult, st.lists(floats, max_size=8), st.lists(small, max_size=8), floats, floats),
    st.builds(ReduceResult, st.booleans(), floats, floats),
    st.builds(UpdateResult, st.booleans(), st.booleans(), floats, floats, floats, floats, floats))


def ring(items=8):
    return Ring(memoryview(bytearray(Ring.nbytes(items))), SPLITS, items)


def same(a, b):
    """Equal field by field, a range and the list of its numbers counting as equal."""
    fields = [list(x) if isinstance(x, range) else x for x in a]
    return type(a) is type(b) and fields == [list(y) if isinstance(y, range) else y for y in b]


@given(TASKS_AND_RESULTS, st.integers(min_value=0, max_value=3 * CAPACITY))
def test_every_task_and_result_comes_back_equal_from_any_record(obj, n):
    r = ring()
    assert r.write(n, obj)
    assert same(r.read(n), obj)


def test_records_do_not_overwrite_each_other_within_the_capacity():
    r = ring()
    tasks = [TrainTask(k, 3, "val", 7, 1, [k, k + 1], k) for k in range(CAPACITY)]
    for k, task in enumerate(tasks):
        r.write(k, task)
    assert [r.read(k) for k in range(CAPACITY)] == tasks


@pytest.mark.parametrize("obj", [
    Stop(), Failed(0, "Traceback ...", "layers[1] boom"),
    TrainTask(0, 1, "train", 2 ** 64, 0, [1], 0),              # a seed past int64
    TrainTask(0, 1, "holdout", 0, 0, [1], 0),                  # a split the pool does not know
    EvalTask(0, 1, "test", list(range(100))),                  # more indices than a record holds
    EvalResult([0.5] * 100, [1] * 100, 0.1, 0.0)], ids=["stop", "failed", "seed", "split", "long", "big"])
def test_what_has_no_codec_or_does_not_fit_is_marked_for_the_pipe(obj):
    r = ring(items=8)
    assert not r.write(1, obj)
    assert r.read(1) is PIPE


def test_a_mailbox_starts_empty_and_reset_forgets_its_records():
    box = Mailbox(memoryview(bytearray(Mailbox.nbytes(4))), SPLITS, 4)
    box.results.write(0, ReduceResult(True, 0.5, 1.0))
    box.counter[0] = 1
    box.reset()
    assert box.counter[0] == 0 and box.results.read(0) is None
    box.release()


def test_evaluation_chunks_too_big_for_a_record_take_the_pipe_and_give_the_same_answers(monkeypatch):
    monkeypatch.setattr(mailbox, "MAX_ITEMS", 2)  # every chunk and result of 5 samples overflows
    model = model_with()
    answers = []
    for workers in (0, 2):
        with Engine(model, datasets(), workers=workers, batch_size=12, eval_batch=5,
                    start_method="fork") as engine:
            engine.set_weights(model.get_weights())
            answers.append(engine.evaluate("train")[:2])
            answers.append(engine.gradient(range(12), epoch=0)["grad"])
    assert answers[0] == answers[2] and answers[1] == answers[3]
