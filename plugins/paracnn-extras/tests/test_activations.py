"""leaky_relu and prelu: values, PyTorch semantics, argument checks."""

import random

import pytest

from paracnn.errors import ConfigError, ShapeError
from paracnn_extras.leaky_relu import LeakyReLU
from paracnn_extras.prelu import PReLU


def test_leaky_relu_values_and_gradient():
    layer = LeakyReLU(alpha=0.1)
    layer.build((3,))
    assert layer.forward([-1.0, 2.0, 0.0]) == pytest.approx([-0.1, 2.0, 0.0])
    assert layer.backward([1.0, 1.0, 1.0]) == pytest.approx([0.1, 1.0, 0.1])
    assert layer.params == {} and layer.get_config() == {"alpha": 0.1}


@pytest.mark.parametrize("alpha,fragment", [(-0.1, "alpha must be >= 0.0"), (1.5, "alpha must be <= 1.0"),
                                            ("0.1", "alpha must be a number"),
                                            (True, "alpha must be a number")])
def test_leaky_relu_rejects_bad_alpha_with_its_key(alpha, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        LeakyReLU(alpha=alpha)
    assert info.value.key == "alpha"


def test_prelu_has_one_slope_per_channel():
    layer = PReLU(num_parameters=2, init=0.5)
    layer.build((2, 1, 2), random.Random(0))
    assert layer.params["weight"] == [0.5, 0.5] and layer.param_shapes["weight"] == (2,)
    layer.params["weight"][1] = 0.25
    assert layer.forward([-2.0, 3.0, -4.0, 1.0]) == [-1.0, 3.0, -1.0, 1.0]
    dx = layer.backward([1.0, 1.0, 1.0, 1.0])
    assert dx == [0.5, 1.0, 0.25, 1.0]
    # da_c = Σ dy·x over the negative inputs of channel c
    assert layer.grads["weight"] == [-2.0, -4.0]


def test_prelu_shared_slope_covers_every_element():
    layer = PReLU()
    layer.build((3,))
    assert layer.params["weight"] == [0.25]
    layer.forward([-1.0, -3.0, 2.0])
    layer.backward([2.0, 1.0, 5.0])
    assert layer.grads["weight"] == [-5.0]


def test_prelu_on_vectors_uses_features_as_channels():
    layer = PReLU(num_parameters=4)
    assert layer.build((4,)) == (4,)


def test_prelu_num_parameters_must_match_the_channels():
    layer = PReLU(num_parameters=3)
    with pytest.raises(ShapeError, match=r"num_parameters: 3 but its input \(2, 5, 5\) has 2 "
                                         r"channels; use num_parameters: 1 \(shared\) or 2"):
        layer.build((2, 5, 5))


@pytest.mark.parametrize("kwargs,key", [({"num_parameters": 0}, "num_parameters"),
                                        ({"num_parameters": 2.5}, "num_parameters"),
                                        ({"init": "x"}, "init")])
def test_prelu_rejects_bad_arguments_with_their_key(kwargs, key):
    with pytest.raises(ConfigError) as info:
        PReLU(**kwargs)
    assert info.value.key == key
