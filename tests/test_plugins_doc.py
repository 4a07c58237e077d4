"""``docs/plugins.md`` is true: its reference lists every helper the guide names, with the module
it imports from and the signature ``inspect`` gives; its examples run; its depthwise convolution
passes the harness and computes what conv2d computes.
"""

import doctest
import importlib
import inspect
import random
import re
import sys
from pathlib import Path

import pytest

from paracnn import errors, kernels, layer, testing
from paracnn.layers.conv2d import Conv2d
from paracnn.testing import check_layer

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "docs" / "plugins.md").read_text()
BODY, REFERENCE = GUIDE.split("\n## Reference\n")
ENTRY = re.compile(r"^#### `([\w.]+)(\(.*\))?`$", re.M)


def entries():
    """``(dotted name, documented signature or None)`` for every reference entry."""
    found = ENTRY.findall(REFERENCE)
    assert len(found) > 30, found
    return [(name, signature or None) for name, signature in found]


def resolve(dotted):
    """The object ``dotted`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        owner = None
        for attr in parts[cut:]:
            owner, obj = obj, getattr(obj, attr)
        return obj, owner
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted, documented", entries(), ids=[e[0] for e in entries()])
def test_every_reference_entry_imports_from_its_module_with_its_signature(dotted, documented):
    obj, owner = resolve(dotted)
    if documented is None:
        assert not callable(obj) or (inspect.isclass(obj) and issubclass(obj, Exception))
        return
    signature = inspect.signature(obj)
    if inspect.isclass(owner):  # a method: documented as called on an instance, without self
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    assert documented == str(signature)


def test_every_helper_the_guide_names_has_a_reference_entry():
    documented = {name.rsplit(".", 1)[1] for name, _ in entries()}
    named = set(re.findall(r"`(?:K\.|kernels\.|paracnn\.\w+\.)?(\w+)[(`]", BODY))
    helpers = set()
    for module in (errors, kernels, layer, testing):
        for name in named & set(dir(module)):
            obj = getattr(module, name)
            if name != "Layer" and (inspect.isfunction(obj) or inspect.isbuiltin(obj)
                                    or inspect.isclass(obj) and obj.__module__ == module.__name__):
                helpers.add(name)
    assert {"check_float", "expect_image", "window_table", "Scatter", "ConfigError"} <= helpers
    assert helpers - documented == set()


def test_the_reference_examples_run(monkeypatch):
    monkeypatch.chdir(REPO)  # the examples load configs/tiny.yaml
    blocks = "\n".join(re.findall(r"```pycon\n(.*?)```", REFERENCE, re.S))
    test = doctest.DocTestParser().get_doctest(blocks, {}, "docs/plugins.md#reference",
                                               "docs/plugins.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=lambda text: pytest.fail(text))
    assert runner.summarize(verbose=False).attempted > 60


# -- the depthwise convolution built from the kernels -------------------------------------

@pytest.fixture(scope="module")
def depthwise(tmp_path_factory):
    code = next(block for block in re.findall(r"```python\n(.*?)```", GUIDE, re.S)
                if "class DepthwiseConv2d(Layer)" in block)
    folder = tmp_path_factory.mktemp("guide")
    (folder / "guide_depthwise.py").write_text(code)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("guide_depthwise").DepthwiseConv2d
    finally:
        sys.path.remove(str(folder))
        del sys.modules["guide_depthwise"]


def test_the_guides_depthwise_conv_passes_the_harness(depthwise):
    for config, shape in depthwise.examples:
        report = check_layer(depthwise, config, shape)
        assert set(report.checked) == {"input", "weight", "bias"}


@pytest.mark.parametrize("config", [{"kernel_size": 3}, {"kernel_size": [2, 3], "stride": 2, "padding": 1}])
def test_the_guides_depthwise_conv_is_conv2d_channel_by_channel(depthwise, config):
    rng = random.Random(5)
    dw = depthwise(**config)
    c, h, w = 3, 7, 6
    dw.build((c, h, w), random.Random(0))
    dw.params["bias"] = [rng.uniform(-1, 1) for _ in range(c)]
    x = [rng.uniform(-1, 1) for _ in range(c * h * w)]
    expected = []
    k = len(dw.params["weight"]) // c
    for ch in range(c):
        conv = Conv2d(filters=1, **config)
        conv.build((1, h, w), random.Random(0))
        conv.params["weight"] = dw.params["weight"][ch * k:(ch + 1) * k]
        conv.params["bias"] = [dw.params["bias"][ch]]
        expected += conv.forward(x[ch * h * w:(ch + 1) * h * w])
    assert dw.forward(x) == expected
