"""Every registered layer, built-in or plugin, passes the same harness; ours name their registry key."""

import importlib
from pathlib import Path

import pytest

from paracnn.layer import Layer
from paracnn.registry import discover, get_registry, normalize_dist
from paracnn.testing import check_layer

REGISTRY = get_registry()
CASES = []
#: ``{layer name: why it failed to import}``, for the cases of layers that did.
IMPORT_ERRORS = {}
for name in REGISTRY.names():
    try:
        cls = REGISTRY.resolve(name)
    except Exception as e:  # noqa: BLE001 - a broken plugin becomes a failing case, not a crash
        # NOTE: a plain failing case. An xfail(strict=True) case passed whenever it
        # failed as expected, so a plugin whose import broke left the suite green.
        IMPORT_ERRORS[name] = str(e)
        CASES.append(pytest.param(name, None, None, id=f"{name}-import"))
        continue
    for i, (config, shape) in enumerate(getattr(cls, "examples", ()) or [(None, None)]):
        CASES.append(pytest.param(name, config, shape, id=f"{name}-{i}"))


def test_builtin_layers_are_registered():
    assert {"conv2d", "maxpool2d", "avgpool2d", "relu", "sigmoid", "tanh", "flatten", "dense",
            "dropout"} <= set(REGISTRY.names())


@pytest.mark.parametrize("name,config,shape", CASES)
def test_check_layer(name, config, shape):
    if name in IMPORT_ERRORS:
        pytest.fail(IMPORT_ERRORS[name], pytrace=False)
    assert config is not None, f"{name} declares no `examples` for the harness to run"
    report = check_layer(name, config, shape)
    assert report.checked["input"] > 0
    assert report.max_rel_error() < 1e-5


# -- what every layer module of this repository says and does -------------------------------

#: the distributions whose layers live in this repository (paracnn and plugins/paracnn-extras)
OWN = {"paracnn", "paracnn-extras"}
OWN_ENTRIES = [e for e in discover() if normalize_dist(e.distribution) in OWN]
OWN_FOLDERS = [Path(__file__).resolve().parents[2] / "paracnn" / "layers",
               Path(__file__).resolve().parents[2] / "plugins" / "paracnn-extras" / "paracnn_extras"]


def test_this_repositorys_layers_are_all_found_by_their_entry_points():
    assert {"conv2d", "dense", "dropout", "leaky_relu", "prelu", "pointwise_conv",
            "residual"} <= {e.name for e in OWN_ENTRIES}


@pytest.mark.parametrize("entry", OWN_ENTRIES, ids=[e.name for e in OWN_ENTRIES])
def test_each_layer_modules_docstring_names_its_registry_key(entry):
    module = importlib.import_module(entry.value.split(":")[0])
    assert f"Registered as ``{entry.name}``" in (module.__doc__ or ""), (
        f"{module.__name__}'s docstring must say 'Registered as ``{entry.name}``'")


def test_every_public_module_in_the_layer_folders_is_a_registered_layer():
    # One layer per file: a new module without an entry point (and a key in its
    # docstring) would not be reachable from a config. Private modules hold helpers.
    registered = {entry.value.split(":")[0].rsplit(".", 1)[1] for entry in OWN_ENTRIES}
    modules = {p.stem for folder in OWN_FOLDERS for p in folder.glob("*.py")
               if not p.stem.startswith("_")}
    assert modules and modules - registered == set()


@pytest.mark.parametrize("entry", OWN_ENTRIES, ids=[e.name for e in OWN_ENTRIES])
def test_no_layer_overrides_pickling_only_transient_and_prepare(entry):
    # One mechanism for state that does not travel to workers: names in
    # `transient`, rebuilt by prepare(). Layer defines __getstate__/__setstate__ once.
    cls = entry.load()
    overriding = [k.__qualname__ for k in cls.__mro__ if k not in (Layer, object)
                  for method in ("__getstate__", "__setstate__", "__reduce__", "__reduce_ex__")
                  if method in vars(k)]
    assert overriding == []
