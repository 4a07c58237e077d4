"""StepStats: one step's record, and the sum of several."""

from dataclasses import fields

from paracnn.parallel.step_stats import LATEST, SUMMED, StepStats


def test_every_field_either_adds_up_or_describes_the_latest_step():
    assert sorted(f.name for f in fields(StepStats)) == sorted(SUMMED + LATEST)
    assert not set(SUMMED) & set(LATEST)


def test_a_sum_adds_counts_and_seconds_and_keeps_the_later_steps_lr():
    a = StepStats(samples=16, loss_sum=2.5, correct=3, slots=8, compute=0.5, wait=0.25, tail=0.125,
                  broadcast=0.0, reduce_update=0.0625, presum=0.03125, seconds=1.0, lr=0.1,
                  grad_norm=4.0)
    b = StepStats(samples=8, loss_sum=1.5, correct=5, slots=4, compute=0.25, wait=0.5, tail=0.0,
                  broadcast=0.75, reduce_update=0.125, presum=0.0, seconds=2.0, lr=0.05)
    total = StepStats() + a + b
    assert (total.samples, total.loss_sum, total.correct, total.slots) == (24, 4.0, 8, 12)
    assert (total.compute, total.wait, total.tail, total.broadcast) == (0.75, 0.75, 0.125, 0.75)
    assert (total.reduce_update, total.presum, total.seconds) == (0.1875, 0.03125, 3.0)
    assert total.lr == 0.05 and total.grad_norm == 4.0  # b computed no norm: a's stays
    assert total.wall == total.compute + total.wait + total.broadcast
    assert (a.samples, a.lr) == (16, 0.1)  # the operands are left as they were
    assert total.as_dict()["samples"] == 24
