"""Every registered layer, built-in or plugin, passes the same harness."""

import pytest

from paracnn.registry import get_registry
from paracnn.testing import check_layer

REGISTRY = get_registry()
CASES = []
for name in REGISTRY.names():
    try:
        cls = REGISTRY.resolve(name)
    except Exception as e:  # noqa: BLE001 - a broken plugin becomes a failing case, not a crash
        CASES.append(pytest.param(name, None, None, id=f"{name}-import", marks=pytest.mark.xfail(
            reason=f"{name} failed to import: {e}", strict=True)))
        continue
    for i, (config, shape) in enumerate(getattr(cls, "examples", ()) or [(None, None)]):
        CASES.append(pytest.param(name, config, shape, id=f"{name}-{i}"))


def test_builtin_layers_are_registered():
    assert {"conv2d", "maxpool2d", "avgpool2d", "relu", "sigmoid", "tanh", "flatten", "dense",
            "dropout"} <= set(REGISTRY.names())


@pytest.mark.parametrize("name,config,shape", CASES)
def test_check_layer(name, config, shape):
    assert config is not None, f"{name} declares no `examples` for the harness to run"
    report = check_layer(name, config, shape)
    assert report.checked["input"] > 0
    assert report.max_rel_error() < 1e-5
