"""The files ``paracnn new-layer`` writes, as :class:`string.Template` texts.

:func:`paracnn.scaffold.new_layer` fills in ``$name`` (the layer type,
``scaled_tanh``), ``$dist`` (``paracnn-scaled-tanh``), ``$module``
(``paracnn_scaled_tanh``), ``$cls`` (``ScaledTanh``) and
``$paracnn_version``, in file paths and contents alike. The layer is the
example every generated package starts from, and follows ``docs/plugins.md``.
"""

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "The $name layer for paracnn"
readme = "README.md"
requires-python = ">=3.9"
dependencies = ["paracnn>=$paracnn_version"]

[project.optional-dependencies]
test = ["pytest>=7"]

# This table is what makes the package a paracnn plugin: the name on the left is
# the `type:` configs use; the value is module:class.
[project.entry-points."paracnn.layers"]
$name = "$module.$name:$cls"

[tool.setuptools.packages.find]
include = ["$module*"]
'''

INIT = '''"""$dist: the $name layer for paracnn, found through its entry point in pyproject.toml."""

__version__ = "0.1.0"
'''

LAYER = '''"""The $name layer, still ``paracnn new-layer``'s example body (a scaled tanh): make it yours.

Registered as ``$name`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math
from itertools import repeat
from operator import mul, sub

from paracnn import kernels as K
from paracnn.layer import Layer, check_float


class $cls(Layer):
    """A scaled tanh, ``y = a_c·tanh(x)`` with a learnable scale per channel (new-layer's example).

    (The first docstring line is what ``paracnn layers`` shows: say what your
    layer computes once you have replaced this example.) The channel is
    the first dimension: ``C`` of a ``(C, H, W)`` image, each feature of ``(n,)``.

    Args:
        scale: the initial value of every ``a_c``. Default 1.0.

    Shape:
        - Input: any shape ``(C, ...)``. Output: the same shape.

    Attributes:
        weight: ``(C,)``, the scales.

    Backward: dx = dy·a_c·(1 - tanh²(x)); da_c += Σ over channel c of dy·tanh(x).

    Example::

        layer = $cls(scale=0.5)
        layer.build((3, 8, 8), random.Random(0))    # -> (3, 8, 8), 3 parameters
    """

    # (config, input_shape) pairs that check_layer runs (tests/, and paracnn's
    # all-layers test once the package is installed).
    examples = (({}, (2, 4, 4)), ({"scale": 0.5}, (5,)))
    # Per-sample state, dropped when the layer is pickled for a worker process.
    transient = ("_t",)

    def __init__(self, scale=1.0):
        super().__init__()
        # check_* raise ConfigError(key="scale"): a bad value is reported at its YAML line.
        self.scale = check_float("scale", scale)

    def build(self, input_shape, rng=None):
        """Create the parameters for ``input_shape``; return the output shape."""
        channels = input_shape[0]
        self.input_shape = self.output_shape = tuple(input_shape)
        self._plane = math.prod(input_shape) // channels
        self.add_param("weight", (channels,), init={"type": "constant", "value": self.scale},
                       rng=rng, fan_in=self._plane, fan_out=self._plane)
        return self.output_shape

    def forward(self, x):
        self._t = list(map(math.tanh, x))  # what backward needs
        y = []
        for a, t in zip(self.params["weight"], K.rows_of(self._t, self._plane)):
            y += K.scaled(t, a)
        return y

    def backward(self, dy):
        # Parameter gradients are *added*: a micro-batch sums over its samples.
        gw, p = self.grads["weight"], self._plane
        dx = []
        for c, (a, g, t) in enumerate(zip(self.params["weight"], K.rows_of(dy, p),
                                          K.rows_of(self._t, p))):
            gw[c] += K.sumprod(g, t)
            dx += K.scaled(list(map(mul, g, map(sub, repeat(1.0), map(mul, t, t)))), a)
        return dx

    def get_config(self):
        # The constructor's arguments: type(layer)(**layer.get_config()) rebuilds the layer.
        return {"scale": self.scale}
'''

TEST = '''"""$cls passes paracnn's layer harness, and paracnn finds it by name once installed."""

import pytest

from paracnn.config import config_from_dict
from paracnn.registry import resolve_layer
from paracnn.testing import check_layer

from $module.$name import $cls


@pytest.mark.parametrize("config,input_shape", $cls.examples)
def test_check_layer(config, input_shape):
    # gradients against finite differences, += accumulation, get_config, pickling
    check_layer($cls, config, input_shape)


def test_registered_under_its_name():
    # The entry point in pyproject.toml does this; it needs `pip install -e .`.
    assert resolve_layer("$name") is $cls
    assert resolve_layer("$dist:$name") is $cls


def test_trains_in_a_model():
    config = config_from_dict({
        "model": {"input_shape": [1, 6, 6], "layers": [
            {"type": "conv2d", "filters": 2, "kernel_size": 3},
            {"type": "$name"},
            {"type": "flatten"},
            {"type": "dense", "units": 3}]},
        "data": {"dataset": "synthetic",
                 "synthetic": {"image_shape": [1, 6, 6], "num_classes": 3}}})
    model = config.build_model()
    x = [0.1 * (i % 7) - 0.3 for i in range(36)]
    before, _ = model.train_sample(x, 1)
    weights, grads = model.get_weights(), model.get_grads()
    model.set_weights([w - 0.01 * g for w, g in zip(weights, grads)])
    model.zero_grad()
    after, _ = model.train_sample(x, 1)
    assert after < before
'''

README = '''# $dist

The `$name` layer for [paracnn](https://pypi.org/project/paracnn/). Generated by
`paracnn new-layer $name`, it still holds the example body, a scaled tanh with a
learnable scale per channel, `y = a_c·tanh(x)`: replace the layer in
`$module/$name.py` with yours, and this paragraph with what it does.

## Install and test

```sh
pip install -e .            # registers layer type "$name" (the entry point in pyproject.toml)
pytest                      # check_layer: gradients, accumulation, config, pickling
paracnn layers              # lists $name, from $dist 0.1.0
```

## Use

```yaml
model:
  input_shape: [1, 28, 28]
  layers:
    - {type: conv2d, filters: 6, kernel_size: 5}
    - {type: $name, scale: 1.0}
    - {type: flatten}
    - {type: dense, units: 10}
```

If another installed package also registers `$name`, write `type: $dist:$name`.

## Publish

```sh
python -m pip install build twine
python -m build             # dist/*.whl and dist/*.tar.gz
python -m twine upload dist/*
```
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "$module/__init__.py": INIT,
    "$module/$name.py": LAYER,
    "tests/test_$name.py": TEST,
}
