"""The harness must catch broken layers, not just pass good ones."""

import pytest

from paracnn.layer import Layer
from paracnn.layers.dense import Dense
from paracnn.testing import GradientCheckError, check_layer


class Square(Layer):
    """y = x², with a switchable bug in backward."""

    examples = (({}, (4,)),)
    bug = None

    def forward(self, x):
        self._x = x
        return [v * v for v in x]

    def backward(self, dy):
        factor = 3.0 if self.bug == "gradient" else 2.0
        return [factor * v * g for v, g in zip(self._x, dy)]


class WrongShape(Square):
    def build(self, input_shape, rng=None):
        self.input_shape = input_shape
        self.output_shape = (input_shape[0] + 1,)
        return self.output_shape


class Overwrites(Dense):
    """Assigns its weight gradient instead of adding to it."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.sync_grads()
        self.grads["weight"] = [dy[o] * v for o in range(self.units) for v in self._x]
        return dx


class LosesConfig(Dense):
    def get_config(self):
        return {"units": self.units + 1}


class Closure(Square):
    def build(self, input_shape, rng=None):
        self.hook = lambda v: v   # lambdas cannot be pickled
        return super().build(input_shape, rng)


def test_good_layer_passes_and_reports_worst_element():
    report = check_layer(Square, {}, (5,))
    assert report.checked == {"input": 5}
    assert report.worst["input"].rel_error < 1e-8
    assert "relative error" in str(report)


def test_wrong_gradient_is_caught_with_the_worst_element():
    class Buggy(Square):
        bug = "gradient"
    with pytest.raises(GradientCheckError, match=r"gradient check failed for input\[\d+\]: analytic"):
        check_layer(Buggy, {}, (5,))


def test_wrong_build_shape_is_caught():
    with pytest.raises(GradientCheckError, match=r"build\(\) says \(6,\).*returned 5"):
        check_layer(WrongShape, {}, (5,))


def test_overwriting_gradients_is_caught():
    with pytest.raises(GradientCheckError, match=r"must add into grads\['weight'\]"):
        check_layer(Overwrites, {"units": 2}, (3,))


def test_config_round_trip_is_checked():
    with pytest.raises(GradientCheckError, match="round trip changed the config"):
        check_layer(LosesConfig, {"units": 2}, (3,))


def test_unpicklable_layer_is_caught():
    with pytest.raises(GradientCheckError, match="does not pickle"):
        check_layer(Closure, {}, (3,))


def test_large_tensors_are_sampled():
    report = check_layer(Dense, {"units": 30}, (20,), max_elements=50)
    assert report.checked["weight"] == 50 and report.checked["input"] == 20
