"""The parameter budget: a model's build is refused at the first parameter past the limit."""

import random

import pytest

from paracnn.budget import OverBudget, ParamBudget, charge
from paracnn.layers.dense import Dense


def test_a_parameter_past_the_limit_raises_before_it_is_allocated():
    layer = Dense(units=4)
    with pytest.raises(OverBudget) as info:
        with ParamBudget(10):
            layer.build((3,), random.Random(0))      # weight (4, 3): 12 > 10
    assert (info.value.name, info.value.shape, info.value.count) == ("weight", (4, 3), 12)
    assert "weight" not in layer.params


def test_the_budget_counts_every_parameter_built_inside_the_block():
    with ParamBudget(16) as budget:
        Dense(units=4).build((3,), random.Random(0))   # 12 + 4
    assert budget.total == 16


def test_no_limit_counts_without_refusing_and_outside_a_block_nothing_counts():
    with ParamBudget(None) as budget:
        Dense(units=100).build((100,), random.Random(0))
    assert budget.total == 100 * 100 + 100
    charge("weight", (10 ** 9,))   # no block open: no budget to charge
    assert budget.total == 10100


def test_the_block_ends_its_budget_even_when_the_build_fails():
    with pytest.raises(OverBudget):
        with ParamBudget(1):
            Dense(units=2).build((2,), random.Random(0))
    with ParamBudget(100) as outer:
        with ParamBudget(5) as inner:
            charge("bias", (5,))
        charge("weight", (50,))   # the inner block is closed: the outer one counts it
    assert (inner.total, outer.total) == (5, 50)
