import math

from paracnn.loss import softmax, softmax_cross_entropy


def test_uniform_logits():
    loss, d = softmax_cross_entropy([0.0, 0.0, 0.0, 0.0], 2)
    assert loss == math.log(4)
    assert d == [0.25, 0.25, -0.75, 0.25]


def test_stable_for_huge_logits():
    loss, d = softmax_cross_entropy([1000.0, 0.0], 0)
    assert loss == 0.0 and d[0] == 0.0 and d[1] == 0.0
    loss, _ = softmax_cross_entropy([-1000.0, 1000.0], 0)
    assert loss == 2000.0


def test_gradient_is_softmax_minus_onehot_and_sums_to_zero():
    logits = [1.0, 2.0, -0.5]
    _, d = softmax_cross_entropy(logits, 1)
    p = softmax(logits)
    assert d == [p[0], p[1] - 1.0, p[2]]
    assert abs(sum(d)) < 1e-15
