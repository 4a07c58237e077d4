"""Plugins: the guide's example layer passes the harness; the example plugin, once installed, is
listed with its distribution, usable by qualified name, and its errors inside a residual block
point at the inner YAML line.

The paracnn-extras tests run when it is installed (``pip install -e ./plugins/paracnn-extras``).
"""

import importlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from paracnn.cli import main
from paracnn.config import config_from_dict, load_config
from paracnn.errors import ConfigError
from paracnn.registry import resolve_layer
from paracnn.testing import check_layer, check_model

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("leaky_relu", "pointwise_conv", "prelu", "residual")

# Line numbers in the tests below refer to this text.
GOOD = """\
model:
  input_shape: [1, 8, 8]
  layers:
    - type: paracnn-extras:residual
      layers:
        - type: conv2d
          filters: 2
          kernel_size: 3
          padding: same
        - type: paracnn-extras:prelu
          num_parameters: 2
    - type: flatten
    - type: dense
      units: 3
data:
  dataset: synthetic
  synthetic: {image_shape: [1, 8, 8], num_classes: 3}
"""


@pytest.fixture
def extras():
    return pytest.importorskip("paracnn_extras")


def test_the_guides_example_layer_passes_the_harness(tmp_path, monkeypatch):
    guide = (REPO / "docs" / "plugins.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", guide, re.S)
                if "class ChannelAffine(Layer)" in block)
    (tmp_path / "guide_channel_affine.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("guide_channel_affine")
    try:
        for config, shape in module.ChannelAffine.examples:
            report = check_layer(module.ChannelAffine, config, shape)
            assert set(report.checked) == {"input", "weight", "bias"}
    finally:
        del sys.modules["guide_channel_affine"]


def write(tmp_path, old=None, new=None):
    text = GOOD
    if old is not None:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "model.yaml"
    path.write_text(text)
    return path


def test_layers_lists_the_plugin_with_its_distribution_and_version(capsys, extras):
    assert main(["layers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["layers"]}
    version = metadata.version("paracnn-extras")
    assert version == extras.__version__
    for name in EXTRAS:
        row = rows[name]
        assert (row["distribution"], row["version"], row["error"], row["clash"]) == \
            ("paracnn-extras", version, None, [])
        assert row["qualified"] == f"paracnn-extras:{name}" and row["description"]


def test_qualified_names_resolve(extras):
    from paracnn_extras.residual import Residual
    assert resolve_layer("paracnn-extras:residual") is Residual
    assert resolve_layer("paracnn_extras:residual") is Residual  # PEP 503 spelling


def test_a_config_using_qualified_plugin_layers_builds_and_checks(tmp_path, extras):
    config = load_config(write(tmp_path))
    model = config.build_model()
    assert model.output_shape == (3,)
    block = model.layers[0]
    assert list(block.params) == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                                  "projection.weight"]
    assert check_model(model).max_rel_error() < 1e-4
    # the resolved config keeps the inner layers, and rebuilds the same model
    again = config_from_dict(config.data).build_model()
    assert list(again.get_weights()) == list(model.get_weights())


@pytest.mark.parametrize("old,new,where,fragment", [
    ("filters: 2", "filters: 0", "7:11",
     "layers[0] paracnn-extras:residual: layers[0] conv2d: filters must be >= 1, got 0"),
    ("filters: 2", "filterz: 2", "7:11",
     "unknown key 'filterz' in layers[0] conv2d; did you mean 'filters'?"),
    ("type: conv2d", "type: conv2", "6:11", "layers[0]: unknown layer type 'conv2'; did you mean 'conv2d'?"),
    ("num_parameters: 2", "num_parameters: two", "11:11",
     "layers[1] paracnn-extras:prelu: num_parameters must be an integer, got 'two'"),
    ("      layers:\n", "      projection: sometimes\n      layers:\n", "5:7",
     "projection must be one of auto, always, none, got 'sometimes'"),
])
def test_inner_errors_point_at_the_inner_line(tmp_path, old, new, where, fragment, extras):
    path = write(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{where}: "), message
    assert fragment in message


def test_nested_blocks_compose_the_path(tmp_path, extras):
    nested = ("        - type: paracnn-extras:prelu\n          num_parameters: 2\n",
              "        - type: residual\n          layers:\n            - type: dense\n"
              "              units: -1\n")
    path = write(tmp_path, *nested)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:13:15: layers[0] paracnn-extras:residual: "
                                      f"layers[1] residual: layers[0] dense: units must be >= 1")


def test_shape_errors_inside_the_block_name_the_inner_layer(tmp_path, extras):
    path = write(tmp_path, "num_parameters: 2", "num_parameters: 3")
    with pytest.raises(ConfigError) as info:
        load_config(path).build_model()
    message = str(info.value)
    # The block's line today; the inner line if Sequential.build ever composes inner keys.
    assert message.split(": ")[0] in (f"{path}:4:7", f"{path}:10:11"), message
    assert ("inner layers[1] paracnn-extras:prelu has num_parameters: 3 but its input "
            "(2, 8, 8) has 2 channels") in message


def test_check_command_reports_the_inner_line(tmp_path, capsys, extras):
    path = write(tmp_path, "kernel_size: 3", "kernel_size: [3, 3, 3]")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:8:11: ") and "\n" not in err
    assert "kernel_size must be an integer or a list of two" in err


def test_shipped_residual_config(capsys, extras):
    assert main(["summary", str(REPO / "configs/lenet-residual.yaml"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    row = summary["layers"][3]
    assert (row["type"], row["output_shape"], row["params"]) == ("residual", [6, 12, 12], 660)
    assert summary["total_params"] == 45_086


# -- plugins that misbehave outside forward and backward --------------------------------------

@pytest.fixture
def misbehaving(monkeypatch):
    """The installed layers plus tests/faults/misbehaving.py's, from distribution paracnn-test-misbehaving."""
    from paracnn.registry import Registry, discover

    from .faults import misbehaving as module
    entries = [(metadata.EntryPoint(name, f"tests.faults.misbehaving:{cls}", "paracnn.layers"),
                "paracnn-test-misbehaving", "0.3") for name, cls in module.LAYERS.items()]
    entries.append((metadata.EntryPoint("exits_on_import", "tests.faults.exits_on_import:Layer",
                                        "paracnn.layers"), "paracnn-test-misbehaving", "0.3"))
    registry = Registry(entry_points=discover() + entries, disable_plugins=False)
    monkeypatch.setattr("paracnn.config.loaded.get_registry", lambda: registry)
    monkeypatch.setattr("paracnn.registry.get_registry", lambda: registry)
    return registry


@pytest.mark.parametrize("layer, what", [
    ("exits_on_import", r"layers\[3\]: layer type 'exits_on_import' from distribution 'paracnn-test-misbehaving' "
                        r"0.3 \(tests.faults.exits_on_import:Layer\) failed to import: SystemExit: 0"),
    ("raises_in_init", r"layers\[3\] raises_in_init: its constructor raised RuntimeError: no licence file found"),
    ("exits_in_init", r"layers\[3\] exits_in_init: its constructor raised SystemExit: 3"),
    ("raises_in_build", r"layers\[3\] raises_in_build: build\(\) raised KeyError: 'weights'"),
    ("exits_in_build", r"layers\[3\] exits_in_build: build\(\) raised SystemExit: bye"),
    ("returns_none", r"layers\[3\] returns_none: build\(\) returned None, not a shape \(a tuple of whole numbers\)"),
    ("returns_text", r"layers\[3\] returns_text: build\(\) returned '32', not a shape"),
])
@pytest.mark.parametrize("command", ["check", "summary", "train"])
def test_a_plugin_failing_outside_forward_is_one_line_naming_its_line_and_distribution(
        misbehaving, tmp_path, capsys, layer, what, command):
    from .faults import config_with
    path = tmp_path / "x.yaml"
    path.write_text(config_with(f"type: {layer}"))
    argv = [command, str(path)] + (["--run-dir", str(tmp_path / "run"), "--no-progress"] if command == "train" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.match(rf"^{re.escape(str(path))}:9:7: {what}", err), err
    if layer != "exits_on_import":
        assert "layer type '" + layer + "' comes from distribution 'paracnn-test-misbehaving' 0.3" in err
    assert not (tmp_path / "run").exists()


def test_layers_marks_a_plugin_that_exits_on_import_broken_and_lists_the_rest(misbehaving, capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "BROKEN: layer type 'exits_on_import' from distribution 'paracnn-test-misbehaving'" in out
    assert "conv2d" in out and "raises_in_init" in out
