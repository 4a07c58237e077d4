"""Every layer of the package passes paracnn's harness on each of its examples, and a few more."""

import pytest

from paracnn.testing import check_layer
from paracnn_extras.leaky_relu import LeakyReLU
from paracnn_extras.pointwise_conv import PointwiseConv
from paracnn_extras.prelu import PReLU
from paracnn_extras.residual import Residual

LAYERS = [LeakyReLU, PReLU, PointwiseConv, Residual]

EXTRA = [
    (LeakyReLU, {"alpha": 0.0}, (7,)),
    (LeakyReLU, {"alpha": 1.0}, (1, 3, 3)),
    (PReLU, {"num_parameters": 1, "init": -0.5}, (3, 2, 2)),
    (PointwiseConv, {"filters": 1, "init": "xavier_normal", "bias_init": {"type": "constant",
                                                                           "value": 0.1}}, (4, 2, 3)),
    # identity shortcut around a plugin layer, and a shortcut that only changes channels
    (Residual, {"layers": [{"type": "pointwise_conv", "filters": 2}, {"type": "prelu"}]}, (2, 3, 3)),
    (Residual, {"layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}],
                "projection": "auto"}, (2, 4, 4)),
    (Residual, {"layers": [{"type": "tanh"}], "projection": "always"}, (2, 3, 3)),
    # nested blocks
    (Residual, {"layers": [{"type": "residual", "layers": [{"type": "dense", "units": 4}]},
                           {"type": "sigmoid"}]}, (4,)),
]

CASES = [pytest.param(cls, cfg, shape, id=f"{cls.__name__}-example{i}")
         for cls in LAYERS for i, (cfg, shape) in enumerate(cls.examples)]
CASES += [pytest.param(cls, cfg, shape, id=f"{cls.__name__}-extra{i}")
          for i, (cls, cfg, shape) in enumerate(EXTRA)]


@pytest.mark.parametrize("cls,config,shape", CASES)
def test_check_layer(cls, config, shape):
    report = check_layer(cls, config, shape)
    assert report.checked["input"] > 0
    assert report.max_rel_error() < 1e-5


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_every_layer_declares_examples_for_the_project_harness(cls):
    assert cls.examples
    for config, shape in cls.examples:
        assert isinstance(config, dict) and isinstance(shape, tuple)
