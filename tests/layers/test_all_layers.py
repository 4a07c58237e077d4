"""Every registered layer, built-in or plugin, passes the same harness."""

import pytest

from paracnn.registry import get_registry
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
