"""The entry-point registry: discovery, clashes, qualified names, broken plugins."""

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from paracnn.errors import RegistryError
from paracnn.layer import Layer
from paracnn.registry import (GROUP, Registry, discover, discover_by_distribution, get_registry,
                              normalize_dist, reset_registry)

REPO = Path(__file__).resolve().parents[1]
BUILTINS = {"conv2d", "maxpool2d", "avgpool2d", "relu", "sigmoid", "tanh", "flatten", "dense", "dropout"}


class Residual(Layer):
    """Adds nothing; a stand-in for a plugin layer.

    More text that the description must not include.
    """

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class Other(Residual):
    """Another stand-in, from a second distribution."""


def ep(name, obj):
    return EntryPoint(name, f"{__name__}:{obj}", GROUP)


def test_injected_entry_points_resolve_lazily():
    broken = (EntryPoint("zap", "paracnn_no_such_module_xyz:Zap", GROUP), "broken-plugin", "0.3")
    reg = Registry([(ep("residual", "Residual"), "paracnn-extras", "1.0"), broken],
                   disable_plugins=False)
    # A broken plugin costs nothing until it is used.
    assert reg.names() == ["residual", "zap"]
    assert reg.resolve("residual") is Residual
    assert reg.resolve("paracnn-extras:residual") is Residual


def test_clash_names_both_distributions_and_qualified_names_pick_one():
    reg = Registry([(ep("residual", "Residual"), "paracnn-extras", "1.0"),
                    (ep("residual", "Other"), "Acme_Layers", "2.0")], disable_plugins=False)
    with pytest.raises(RegistryError) as e:
        reg.resolve("residual")
    msg = str(e.value)
    assert ("layer type 'residual' is registered by several distributions: 'Acme_Layers' and "
            "'paracnn-extras'; choose one with 'Acme_Layers:residual' or 'paracnn-extras:residual'") in msg
    assert reg.clashes() == {"residual": ["Acme_Layers", "paracnn-extras"]}
    # PEP 503: case-insensitive, with -, _ and . equivalent.
    assert reg.resolve("acme-layers:residual") is Other
    assert reg.resolve("ACME.layers:residual") is Other
    assert reg.resolve("Paracnn_Extras:residual") is Residual
    with pytest.raises(RegistryError, match="distribution 'nobody' does not register layer type 'residual'"):
        reg.resolve("nobody:residual")


def test_same_distribution_twice_is_not_a_clash():
    reg = Registry([(ep("residual", "Residual"), "paracnn-extras", "1.0"),
                    (ep("residual", "Residual"), "Paracnn_Extras", "1.0")], disable_plugins=False)
    assert reg.clashes() == {}
    assert len(reg.entries()) == 1
    assert reg.resolve("residual") is Residual


def test_broken_plugin_error_names_distribution_value_and_cause():
    reg = Registry([(EntryPoint("zap", "paracnn_no_such_module_xyz:Zap", GROUP), "broken-plugin", "0.3")],
                   disable_plugins=False)
    with pytest.raises(RegistryError) as e:
        reg.resolve("zap")
    msg = str(e.value)
    assert "'broken-plugin'" in msg
    assert "paracnn_no_such_module_xyz:Zap" in msg
    assert "No module named 'paracnn_no_such_module_xyz'" in msg


def test_an_object_that_is_not_a_layer_is_refused():
    reg = Registry([(EntryPoint("oops", "paracnn.errors:ConfigError", GROUP), "bad-plugin", "1")],
                   disable_plugins=False)
    with pytest.raises(RegistryError, match="'bad-plugin'.*is not a layer class"):
        reg.resolve("oops")


def test_disable_plugins_keeps_distribution_paracnn_only():
    entries = [(ep("residual", "Residual"), "paracnn-extras", "1.0"),
               (ep("relu", "Residual"), "paracnn", "0.1.0")]
    reg = Registry(entries, disable_plugins=True)
    assert reg.names() == ["relu"]
    with pytest.raises(RegistryError, match="plugins are disabled by PARACNN_DISABLE_PLUGINS"):
        reg.resolve("residual")


def test_disable_plugins_is_read_from_the_environment(monkeypatch):
    entries = [(ep("residual", "Residual"), "paracnn-extras", "1.0")]
    monkeypatch.setenv("PARACNN_DISABLE_PLUGINS", "1")
    assert Registry(entries).names() == []
    monkeypatch.setenv("PARACNN_DISABLE_PLUGINS", "0")
    assert Registry(entries).names() == ["residual"]


def test_unknown_name_suggests_and_hints_at_plugins():
    reg = Registry([(ep("residual", "Residual"), "paracnn-extras", "1.0")], disable_plugins=False)
    with pytest.raises(RegistryError) as e:
        reg.resolve("residul")
    msg = str(e.value)
    assert "unknown layer type 'residul'; did you mean 'residual'?" in msg
    assert "pip install" in msg
    assert "Available: residual" in msg


def test_unknown_name_lists_available_names_only_when_few():
    many = [(ep(f"layer{i}", "Residual"), "big-plugin", "1") for i in range(30)]
    with pytest.raises(RegistryError) as e:
        Registry(many, disable_plugins=False).resolve("Layer_1")
    assert "did you mean" in str(e.value)
    assert "Available" not in str(e.value)


def test_describe_lists_clashes_and_broken_plugins_without_raising():
    reg = Registry([(ep("residual", "Residual"), "paracnn-extras", "1.0"),
                    (ep("residual", "Other"), "acme-layers", "2.0"),
                    (EntryPoint("zap", "paracnn_no_such_module_xyz:Zap", GROUP), "broken-plugin", "0.3")],
                   disable_plugins=False)
    rows = {(r["name"], r["distribution"]): r for r in reg.describe()}
    assert rows["residual", "paracnn-extras"]["description"] == "Adds nothing; a stand-in for a plugin layer."
    assert rows["residual", "paracnn-extras"]["clash"] == ["acme-layers"]
    assert rows["residual", "acme-layers"]["clash"] == ["paracnn-extras"]
    zap = rows["zap", "broken-plugin"]
    assert zap["error"] and "No module named" in zap["error"] and zap["description"] == ""
    assert zap["value"] == "paracnn_no_such_module_xyz:Zap" and zap["version"] == "0.3"


def test_installed_builtins_are_discovered(monkeypatch):
    monkeypatch.delenv("PARACNN_DISABLE_PLUGINS", raising=False)
    reset_registry()
    reg = get_registry()
    assert reg is get_registry()
    assert BUILTINS <= set(reg.names())
    assert {e.distribution for e in reg.entries() if e.name in BUILTINS} == {"paracnn"}


def test_normalize_dist():
    assert normalize_dist("Paracnn_Extras") == normalize_dist("paracnn.extras") == "paracnn-extras"
    assert normalize_dist("a--b__c") == "a-b-c"


# -- real distributions on sys.path, in a subprocess so nothing leaks ---------------

def make_dist(root, name, version, entry_points, modules=None):
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for mod, source in (modules or {}).items():
        (root / f"{mod}.py").write_text(textwrap.dedent(source))


PLUGIN = """
    from paracnn.layer import Layer, check_float


    class Scale(Layer):
        '''Multiply by a constant factor.'''

        def __init__(self, factor=1.0):
            super().__init__()
            self.factor = check_float("factor", factor, low=0.0, low_open=True)

        def forward(self, x):
            return [v * self.factor for v in x]

        def backward(self, dy):
            return [v * self.factor for v in dy]

        def get_config(self):
            return {"factor": self.factor}
"""

CONFIG = """\
model:
  input_shape: [1, 4, 4]
  layers:
    - type: flatten
    - type: {layer}
      factor: 2.0
    - type: dense
      units: 3
data:
  dataset: synthetic
  synthetic: {{image_shape: [1, 4, 4], num_classes: 3}}
"""


@pytest.fixture
def plugin_site(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "fake-dist", "1.0", {"scale": "fake_layers:Scale"}, {"fake_layers": PLUGIN})
    make_dist(site, "Other_Dist", "2.5", {"dense": "fake_layers:Scale", "scale2": "fake_layers:Scale"})
    make_dist(site, "broken-dist", "0.1", {"zap": "fake_broken:Zap"},
              {"fake_broken": "raise RuntimeError('plugin exploded on import')\n"})
    return site


def run_cli(site, *args, env=None, cwd=None):
    environ = {k: v for k, v in os.environ.items() if k != "PARACNN_DISABLE_PLUGINS"}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "paracnn", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd or site, timeout=60)


def test_real_plugins_are_listed_with_clashes_and_errors(plugin_site):
    r = run_cli(plugin_site, "layers", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["layers"]
    by = {(row["name"], row["distribution"]): row for row in rows}
    scale = by["scale", "fake-dist"]
    assert (scale["version"], scale["value"], scale["description"]) == (
        "1.0", "fake_layers:Scale", "Multiply by a constant factor.")
    assert by["dense", "paracnn"]["clash"] == ["Other_Dist"]
    zap = by["zap", "broken-dist"]
    assert "RuntimeError: plugin exploded on import" in zap["error"]
    assert "'broken-dist'" in zap["error"]

    text = run_cli(plugin_site, "layers")
    assert text.returncode == 0
    assert "CLASH: also registered by Other_Dist" in text.stdout
    assert "BROKEN:" in text.stdout


def test_real_plugin_used_by_a_config_and_clash_reported_only_when_used(plugin_site):
    (plugin_site / "ok.yaml").write_text(CONFIG.format(layer="scale").replace(
        "type: dense", "type: paracnn:dense"))
    r = run_cli(plugin_site, "summary", "ok.yaml", "--json")
    assert r.returncode == 0, r.stderr
    assert [row["type"] for row in json.loads(r.stdout)["layers"]] == ["flatten", "scale", "paracnn:dense"]

    (plugin_site / "clash.yaml").write_text(CONFIG.format(layer="scale"))
    r = run_cli(plugin_site, "summary", "clash.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith("clash.yaml:7:7: layers[2]: layer type 'dense' is registered by several "
                               "distributions: 'Other_Dist' and 'paracnn'")
    assert "Traceback" not in r.stderr


def test_broken_plugin_is_fatal_only_when_used(plugin_site):
    (plugin_site / "zap.yaml").write_text(CONFIG.format(layer="zap").replace("type: dense", "type: paracnn:dense"))
    r = run_cli(plugin_site, "summary", "zap.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith("zap.yaml:5:7: layers[1]: layer type 'zap' from distribution 'broken-dist'")
    assert "fake_broken:Zap" in r.stderr and "plugin exploded on import" in r.stderr


def test_disable_plugins_env_with_real_dists(plugin_site):
    r = run_cli(plugin_site, "layers", "--json", env={"PARACNN_DISABLE_PLUGINS": "1"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["plugins_disabled"] is True
    assert {row["name"] for row in out["layers"]} == BUILTINS
    assert all(not row["clash"] for row in out["layers"])


def test_the_python_3_9_discovery_finds_what_entry_points_group_finds():
    # NOTE: the 3.9 path (PyPy) runs on every interpreter here, so CPython CI checks it too.
    # A distribution found twice on sys.path (an editable install run from its own
    # folder) comes twice from the 3.9 path; the Registry keeps one, hence the sets.
    def key(e):
        return (e.name, e.value, e.dist_key, e.version)

    assert set(map(key, discover_by_distribution())) == set(map(key, discover()))
    assert {"conv2d", "dense"} <= {e.name for e in discover_by_distribution() if e.dist_key == "paracnn"}
