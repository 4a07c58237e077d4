"""``paracnn new-layer NAME``: a plugin package with one working layer, ready to install and test.

The package is what ``docs/plugins.md`` describes, filled in::

    paracnn-<name>/
      pyproject.toml             the entry point: <name> = "paracnn_<name>.<name>:<Class>"
      README.md
      paracnn_<name>/__init__.py
      paracnn_<name>/<name>.py   the layer: the example body, a scaled tanh, to replace with yours
      tests/test_<name>.py       check_layer on its examples, registry lookup, a model step

Whatever ``NAME`` is, the layer is the same example (a tanh with a learnable
scale per channel, which shows parameters, gradients and the kernels), and it
says so: ``paracnn layers`` shows "A scaled tanh ..." until its author
replaces it.

Example::

    path = new_layer("scaled_tanh", "plugins")    # -> plugins/paracnn-scaled-tanh
    # then: pip install -e plugins/paracnn-scaled-tanh && pytest plugins/paracnn-scaled-tanh
"""

import argparse
import keyword
import os
import re
import shutil
from pathlib import Path
from string import Template

from . import __version__
from .errors import ParacnnError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
MAX_NAME = 40


def package_names(name):
    """What layer type ``name`` becomes: distribution (and folder), module and class names."""
    return {"name": name, "dist": "paracnn-" + name.replace("_", "-"), "module": "paracnn_" + name,
            "cls": "".join(part.capitalize() for part in name.split("_")),
            "paracnn_version": __version__}


def check_name(name, registry=None):
    """Raise ParacnnError unless ``name`` can be a new layer type (and a Python module)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > MAX_NAME:
        raise ParacnnError(
            f"invalid layer name {name!r}: use lowercase letters, digits and single underscores, "
            f"starting with a letter and at most {MAX_NAME} characters (e.g. scaled_tanh); it "
            f"becomes the config's type:, the module paracnn_<name> and the package paracnn-<name>")
    if keyword.iskeyword(name):
        raise ParacnnError(f"invalid layer name '{name}': it is a Python keyword, so the module "
                           f"paracnn_{name}.{name} could not be imported; choose another name")
    if registry is None:
        from .registry import get_registry
        registry = get_registry()
    taken = [e for e in registry.entries() if e.name == name]
    if taken:
        owners = ", ".join(f"{e.distribution} {e.version}".strip() for e in taken)
        raise ParacnnError(f"layer type '{name}' is already registered by {owners}; a second one "
                           f"would make every config that says type: {name} ambiguous, so choose "
                           f"another name ('paracnn layers' lists the names in use)")
    return name


def new_layer(name, directory=None):
    """Create the plugin package for layer type ``name`` in ``directory`` (default: the current one).

    Returns the package folder, ``<directory>/paracnn-<name>``. Raises
    :class:`~paracnn.errors.ParacnnError` for an invalid or taken name, or when
    that folder exists already (nothing is overwritten).
    """
    check_name(name)
    names = package_names(name)
    parent = Path(directory) if directory is not None else Path.cwd()
    target = parent / names["dist"]
    if target.exists() or target.is_symlink():
        raise ParacnnError(f"{target} already exists; remove it or choose another --dir "
                           f"(new-layer never overwrites)")
    if parent.exists() and not parent.is_dir():
        raise ParacnnError(f"--dir {parent} is a file, not a directory")
    try:
        _write_package(parent, target, names)
    except OSError as e:
        raise ParacnnError(f"cannot create {target}: {e.strerror or e}") from None
    return target


def _write_package(parent, target, names):
    parent.mkdir(parents=True, exist_ok=True)
    # Written in a scratch folder and renamed into place, so a failure leaves nothing behind.
    scratch = parent / f".{names['dist']}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)  # left by an earlier crash of this same pid
    scratch.mkdir()
    try:
        for relative, template in FILES.items():
            path = scratch / Template(relative).substitute(names)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(template).substitute(names), encoding="utf-8")
        os.rename(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


# -- the command ------------------------------------------------------------------

EPILOG = """examples:
  paracnn new-layer scaled_tanh                 creates ./paracnn-scaled-tanh
  paracnn new-layer my_layer --dir plugins      creates plugins/paracnn-my-layer

Whatever NAME is, the package holds the same example layer, a scaled tanh
(y = a_c*tanh(x), one learnable scale per channel): replace it with yours.

then:
  pip install -e paracnn-scaled-tanh            registers layer type scaled_tanh
  pytest paracnn-scaled-tanh                    runs check_layer on it

docs/plugins.md explains every part of the package."""


def add_parser(subparsers, parents=()):
    """Register ``new-layer`` on the CLI's subparsers; its handler is :func:`run`."""
    help_text = "create a plugin package with a working example layer"
    p = subparsers.add_parser("new-layer", parents=list(parents), help=help_text,
                              description=help_text, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME",
                   help="the layer type, e.g. scaled_tanh (lowercase, digits, underscores)")
    p.add_argument("--dir", metavar="DIR", default=None,
                   help="where to create paracnn-NAME/ (default: the current directory)")
    p.set_defaults(handler=run)
    return p


def run(args):
    """Handler of ``paracnn new-layer``; returns the exit status (errors raise ParacnnError)."""
    path = new_layer(args.name, args.dir)
    names = package_names(args.name)
    print(f"created {path}: layer type '{args.name}' ({names['cls']} in "
          f"{names['module']}/{args.name}.py), distribution {names['dist']}; its body is the "
          f"example, a scaled tanh: replace it with your layer")
    print("next:")
    print(f"  pip install -e {path}")
    print(f"  pytest {path}")
    print(f"  paracnn layers                 # lists {args.name} from {names['dist']}")
    return 0


# -- the package template ($name, $dist, $module, $cls, $paracnn_version) ----------

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

LAYER = '''"""The $name layer, still ``paracnn new-layer``'s example body (a scaled tanh): make it yours."""

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
