"""The optimiser step in the engine: summed and applied slice by slice, bit for bit like the optimiser's step."""

import os
import random
import signal
from array import array

import pytest

from paracnn.optim import SGD, Adam, AdamW, clip_grad_norm
from paracnn.parallel import Engine
from paracnn.parallel import engine as engine_module
from paracnn.parallel import plan
from paracnn.parallel.protocol import TrainTask
from paracnn.parallel.tasks import Compute, add_slots, mean_of_slots

from .helpers import datasets, model_with
from .killer import Sleepy

OPTIMIZERS = {
    "plain": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov+decay": (SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 1e-3}),
    "decay": (SGD, {"weight_decay": 0.05}),
    "adam+decay": (Adam, {"weight_decay": 0.01}),
    "adamw": (AdamW, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
}


def make(name):
    kind, kwargs = OPTIMIZERS[name]
    return kind(**kwargs)


def buffers_of(opt):
    """The buffers the optimiser's own ``step`` kept, as ``Engine.get_buffers`` gives them."""
    return {name: getattr(opt, name) for name in opt.buffer_names}


class KillingSGD(SGD):
    """SGD whose update SIGKILLs the worker process running it while ``marker`` exists (once)."""

    def __init__(self, marker, parent_pid, **kw):
        super().__init__(**kw)
        self.marker, self.parent_pid = str(marker), parent_pid

    def update(self, weights, grads, buffers, lr, step):
        if os.getpid() != self.parent_pid and os.path.exists(self.marker):
            try:
                os.unlink(self.marker)
            except FileNotFoundError:
                pass  # another worker took the hit
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().update(weights, grads, buffers, lr, step)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_sliced_apply_is_bit_identical_to_the_optimizers_step(name):
    rng = random.Random(name)
    model = model_with()
    p = model.num_params()
    weights = [rng.gauss(0, 1) for _ in range(p)]
    grads = [[rng.gauss(0, 1) for _ in range(p)] for _ in range(3)]
    opt = make(name)
    reference = weights
    for g in grads:
        reference = opt.step(reference, g, lr=0.1)

    state = memoryview(array("d", bytes(8 * 2 * (1 + len(opt.buffer_names)) * p)))
    compute = Compute(model, state, None, {}, make(name))
    compute.weights(0)[:] = array("d", weights)
    cuts = [0, 1, 7, 20, 33, p]
    for version, g in enumerate(grads):
        for lo, hi in zip(cuts, cuts[1:]):
            assert compute.apply(version, lo, hi, g[lo:hi], 0.1, version + 1) == (True, True)
    assert compute.weights(len(grads)).tolist() == reference
    for i, buf in enumerate(buffers_of(opt).values()):
        assert compute.buffer(i, len(grads)).tolist() == buf
    # the previous version's weights are still there, untouched (double buffering)
    assert compute.weights(len(grads) - 1).tolist() != reference


def reference_steps(model, batches, lr, clip, kind=SGD, **opt):
    """Gradient from the engine, then clip_grad_norm and the optimiser's own step in this process.

    NOTE: an in-process engine loads weights into ``model`` itself; the model's weights are
    put back afterwards, so callers start from the same initial weights.
    """
    sgd = kind(**opt)
    initial = list(model.get_weights())
    weights = initial
    with Engine(model, datasets(), workers=0, batch_size=12, micro_batch=2, seed=5) as engine:
        for epoch, indices in enumerate(batches):
            engine.set_weights(weights)
            grad = engine.gradient(indices, epoch)["grad"]
            if clip:
                grad, _ = clip_grad_norm(grad, clip)
            weights = sgd.step(weights, grad, lr)
    model.set_weights(initial)
    return weights, buffers_of(sgd)


@pytest.mark.parametrize("name", ["nesterov+decay", "adam+decay", "adamw"])
@pytest.mark.parametrize("clip", [None, 0.05, 100.0], ids=["no-clip", "clipping", "clip-inactive"])
def test_engine_steps_match_the_reference_at_every_worker_count(monkeypatch, clip, name):
    monkeypatch.setattr(plan, "REDUCE_SLICE", 4)  # 51 parameters, up to 13 slices
    monkeypatch.setattr(plan, "SLICES_PER_WORKER", 4)
    model = model_with()
    batches = [range(3, 15), range(20, 31), range(0, 12)]
    kind, opt = OPTIMIZERS[name]
    initial = list(model.get_weights())
    weights, buf = reference_steps(model, batches, 0.3, clip, kind, **opt)
    for workers in (0, 1, 2, 3):
        with Engine(model, datasets(), workers=workers, batch_size=12, micro_batch=2, seed=5,
                    optimizer=kind(**opt), start_method="fork") as engine:
            engine.set_state(initial)
            for epoch, indices in enumerate(batches):
                out = engine.step(indices, epoch, 0.3, clip=clip)
                assert out.diverged is None
                assert (out.grad_norm is not None) == bool(clip)
            assert engine.get_weights() == weights, workers
            assert engine.get_buffers() == buf and engine.steps == len(batches), workers
            if workers > 1:
                assert len(engine.reduce_slices) == min(4 * min(workers, plan.affinity_cpus()), 13)


def test_sliced_reduction_in_workers_is_bit_identical(monkeypatch):
    monkeypatch.setattr(plan, "REDUCE_SLICE", 4)  # 51 parameters, up to 13 slices
    monkeypatch.setattr(plan, "SLICES_PER_WORKER", 4)
    model = model_with()
    results = {}
    for workers in (0, 2, 3):
        with Engine(model, datasets(), workers=workers, batch_size=12, micro_batch=2, seed=5,
                    start_method="fork") as engine:
            if workers:
                assert len(engine.reduce_slices) == min(4 * min(workers, plan.affinity_cpus()), 13)
            engine.set_weights(model.get_weights())
            results[workers] = engine.gradient(range(3, 15), epoch=1)["grad"]
    assert results[0] == results[2] == results[3]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_step_that_is_not_finite_keeps_the_last_weights(workers):
    model = model_with()
    with Engine(model, datasets(), workers=workers, batch_size=12, micro_batch=2, seed=5,
                optimizer=SGD(momentum=0.5), start_method="fork") as engine:
        engine.set_state(list(model.get_weights()))
        assert engine.step(range(12), 0, 0.1).diverged is None
        good, good_buf, version = engine.get_weights(), engine.get_buffers(), engine.version
        out = engine.step(range(12), 0, float("inf"))  # every weight with a gradient overflows
        assert out.diverged == "weights"
        assert (engine.get_weights(), engine.get_buffers(), engine.version) == (good, good_buf, version)
        engine.set_state([float("nan")] * len(good), good_buf)
        assert engine.step(range(12), 0, 0.1).diverged == "loss"


def test_a_gradient_that_is_not_finite_is_reported_not_applied():
    model = model_with()
    p = model.num_params()
    compute = Compute(model, memoryview(array("d", bytes(8 * 4 * p))), None, {}, SGD())
    g = [0.0] * p
    g[5] = float("nan")
    assert compute.apply(0, 0, p, g, 0.1, 1) == (False, False)


@pytest.mark.parametrize("clip", [None, 0.05], ids=["fused", "after-a-reduce-pass"])
def test_a_worker_killed_during_the_update_is_replaced_and_the_slice_recomputed(tmp_path, monkeypatch,
                                                                                clip):
    monkeypatch.setattr(plan, "REDUCE_SLICE", 4)
    model = model_with()
    batches = [range(3, 15), range(20, 31)]
    opt = {"momentum": 0.9}
    weights, buf = reference_steps(model, batches, 0.3, clip, **opt)
    marker = tmp_path / "kill"
    messages = []
    with Engine(model, datasets(), workers=2, batch_size=12, micro_batch=2, seed=5,
                optimizer=KillingSGD(marker, os.getpid(), **opt), start_method="fork",
                log=messages.append) as engine:
        engine.set_state(model.get_weights())
        engine.step(batches[0], 0, 0.3, clip=clip)
        marker.touch()
        engine.step(batches[1], 1, 0.3, clip=clip)
        assert not marker.exists()  # a worker really died in the update
        assert engine.get_weights() == weights and engine.get_buffers() == buf
    assert len(messages) == 1 and "killed by signal 9 (SIGKILL)" in messages[0], messages


def test_set_state_checks_lengths_and_names():
    model = model_with()
    with Engine(model, datasets(), workers=0, batch_size=12, optimizer=Adam()) as engine:
        with pytest.raises(ValueError, match="exp_avg_sq holds 3 values, the model has 51"):
            engine.set_state(model.get_weights(), {"exp_avg_sq": [0.0] * 3})
        with pytest.raises(ValueError, match="the optimizer keeps only"):
            engine.set_state(model.get_weights(), {"momentum_buffer": [0.0] * 51})
        engine.set_state(model.get_weights(), {"exp_avg": [1.0] * 51}, steps=7)
        assert engine.get_buffers() == {"exp_avg": [1.0] * 51, "exp_avg_sq": [0.0] * 51}
        engine.set_weights([0.5] * 51)  # keeps the optimiser's state
        assert engine.get_buffers()["exp_avg"] == [1.0] * 51 and engine.steps == 7


def test_prefix_sums_give_the_bits_of_the_whole_reduction():
    rng = random.Random(1)
    p, count = 10, 5
    grads = memoryview(array("d", [rng.gauss(0, 1) * 10 ** rng.randint(-8, 8) for _ in range(p * count)]))
    whole = mean_of_slots(grads, p, count, 7.0, 0, p)
    for steps in ([2], [3, 5], [2, 3, 4], [5]):
        prefix, done = memoryview(array("d", bytes(8 * p))), 0
        for upto in steps:
            add_slots(grads, p, prefix, 2, 9, done, upto)
            done = upto
        middle = mean_of_slots(grads, p, count, 7.0, 2, 9, prefix, done)
        assert whole[:2] + middle + whole[9:] == whole


def test_an_idle_worker_lets_the_parent_sum_the_finished_slots(monkeypatch, tmp_path):
    monkeypatch.setattr(plan, "REDUCE_SLICE", 4)
    calls = []
    # NOTE: the last micro-batch waits until the parent, with slots 0..4 done, finds
    # nothing more to sum, rather than sleeping a second a busy host might not cover.
    nothing_left = tmp_path / "nothing-left"

    class Recording(engine_module.TailSums):
        def __call__(self, results):
            worked = super().__call__(results)
            if worked:
                calls.append(list(self.done))
            elif all(r is not None for r in results[:5]):
                nothing_left.touch()
            return worked

    monkeypatch.setattr(engine_module, "TailSums", Recording)
    last = datasets()["train"].sample(14)[0]  # in the last micro-batch of range(3, 15)
    model = model_with(Sleepy(last, seconds=0.0, after=nothing_left))
    batches = [range(3, 15)]
    weights, buf = reference_steps(model, batches, 0.3, None, momentum=0.9)
    initial = list(model.get_weights())
    with Engine(model, datasets(), workers=2, batch_size=12, micro_batch=2, seed=5,
                optimizer=SGD(momentum=0.9), start_method="fork") as engine:
        engine.set_state(initial)
        engine.step(batches[0], 0, 0.3)
        assert engine.get_weights() == weights and engine.get_buffers() == buf
    # slots 0..4 were all done before slot 5: every slice got summed that far
    assert calls and calls[-1] == [5] * len(engine.reduce_slices)


def test_tail_is_the_idle_time_a_slow_last_micro_batch_causes(monkeypatch, tmp_path):
    # NOTE: no wall-clock race. The last micro-batch sleeps only once the parent has
    # seen the other worker idle (its first TailSums call), so that worker idles for
    # at least the whole sleep however slowly the host runs either of them.
    seen_idle = tmp_path / "seen-idle"

    class NotingIdle(engine_module.TailSums):
        def __call__(self, results):
            seen_idle.touch()
            return super().__call__(results)

    monkeypatch.setattr(engine_module, "TailSums", NotingIdle)
    last = datasets()["train"].sample(14)[0]  # in the last micro-batch of range(3, 15)
    model = model_with(Sleepy(last, seconds=0.5, after=seen_idle))
    with Engine(model, datasets(), workers=2, batch_size=12, micro_batch=2, seed=5,
                start_method="fork") as engine:
        engine.set_state(list(model.get_weights()))
        out = engine.step(range(3, 15), 0, 0.1)
    # one worker sleeps through slot 5 while the other has nothing left: half a
    # second idle for one of two workers is a quarter of a second per worker
    assert 0.2 <= out.tail <= out.wall - out.compute
    with Engine(model, datasets(), workers=0, batch_size=12, micro_batch=2, seed=5) as engine:
        engine.set_state(list(model.get_weights()))
        assert engine.step(range(3, 15), 0, 0.1).tail == 0.0


def test_long_micro_batches_are_handed_out_one_per_worker_at_a_time(monkeypatch):
    model = model_with()
    with Engine(model, datasets(), workers=2, batch_size=12, micro_batch=2, seed=5,
                start_method="fork") as engine:
        engine.set_state(list(model.get_weights()))
        depths = []
        run = engine.pool.run

        def recording_run(tasks, on_idle=None, depth=None, **kw):
            if isinstance(tasks[0], TrainTask):
                depths.append(depth)
            return run(tasks, on_idle, depth, **kw)

        monkeypatch.setattr(engine.pool, "run", recording_run)
        engine.step(range(12), 0, 0.1)
        assert engine.task_seconds > 0
        engine.task_seconds = 2 * plan.LONG_TASK  # as if the last step's tasks were long
        engine.step(range(12), 0, 0.1)
        assert depths == [None, 1]  # the first step knows no task times yet


def test_one_task_at_a_time_gives_the_same_bits(monkeypatch):
    monkeypatch.setattr(plan, "LONG_TASK", -1.0)  # every run of micro-batches at depth 1
    model = model_with()
    batches = [range(3, 15), range(20, 31), range(0, 12)]
    initial = list(model.get_weights())
    weights, buf = reference_steps(model, batches, 0.3, None, momentum=0.9)
    with Engine(model, datasets(), workers=2, batch_size=12, micro_batch=2, seed=5,
                optimizer=SGD(momentum=0.9), start_method="fork") as engine:
        engine.set_state(initial)
        for epoch, indices in enumerate(batches):
            engine.step(indices, epoch, 0.3)
        assert engine.get_weights() == weights and engine.get_buffers() == buf


@pytest.mark.parametrize("workers", [0, 2])
def test_an_empty_batch_and_a_closed_engine_are_refused(workers):
    model = model_with()
    engine = Engine(model, datasets(), workers=workers, batch_size=12, micro_batch=2,
                    optimizer=SGD(momentum=0.9), start_method="fork")
    engine.set_state(list(model.get_weights()))
    with pytest.raises(ValueError, match="at least one sample"):
        engine.step([], 0, 0.1)
    engine.step(range(12), 0, 0.1)
    weights, buf = engine.get_weights(), engine.get_buffers()
    engine.close()
    # the last state stays readable; work is refused with a clear message
    assert engine.get_weights() == weights and engine.get_buffers() == buf
    for call in (lambda: engine.step(range(12), 0, 0.1), lambda: engine.evaluate("test"),
                 lambda: engine.set_weights(weights)):
        with pytest.raises(RuntimeError, match="this Engine is closed"):
            call()


def test_without_momentum_the_engine_keeps_no_buffer():
    model = model_with()
    with Engine(model, datasets(), workers=0, batch_size=12, micro_batch=2) as engine:
        with pytest.raises(ValueError, match="the optimizer keeps only"):
            engine.set_state(list(model.get_weights()), {"momentum_buffer": [1.0] * 51})
        engine.set_state(list(model.get_weights()))
        for _ in range(3):
            engine.step(range(12), 0, 0.1)
            assert engine.get_buffers() == {}
        assert len(engine.compute.state) == 2 * 51  # two weight versions, nothing else
