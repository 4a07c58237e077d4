"""Fixtures shared by the whole suite.

Real MNIST / Fashion-MNIST are read from ``PARACNN_DATA_DIR`` (CI sets it to
``../shared/data``); tests that need them skip when they are absent.
"""

import importlib
import os
from pathlib import Path

import pytest

try:
    from hypothesis import settings as hypothesis_settings
except ImportError:  # hypothesis comes with the test extra; test_fuzz.py skips without it
    hypothesis_settings = None

if hypothesis_settings is not None:
    # NOTE: in CI (``CI`` set) every run draws the same examples, so a result never
    # depends on the run: unseeded, a checkpoint mutation was caught in 1 run of 11.
    # Locally examples stay random, and failures are kept in .hypothesis/ to replay.
    hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    if os.environ.get("CI"):
        hypothesis_settings.load_profile("ci")


def pytest_configure(config):
    """``PARACNN_REQUIRE=torch,matplotlib``: those modules must import, or the run stops at once.

    Tests that need an optional library skip without it, so in CI a failed
    install would silently skip the torch cross-checks and the plot test; CI
    sets this variable so that it cannot.
    """
    missing = []
    for name in filter(None, (n.strip() for n in os.environ.get("PARACNN_REQUIRE", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            missing.append(f"{name} ({e})")
    if missing:
        raise pytest.UsageError(f"PARACNN_REQUIRE names modules that do not import: {'; '.join(missing)}; "
                                f"install them (pip install torch==2.13.0 matplotlib) or unset PARACNN_REQUIRE")


#: A small valid config that the config and CLI tests break in one place at a time.
SMALL_CONFIG = """\
model:
  input_shape: [1, 28, 28]
  layers:
    - type: conv2d
      filters: 4
      kernel_size: 5
    - type: relu
    - type: maxpool2d
      kernel_size: 2
    - type: flatten
    - type: dense
      units: 10
train:
  lr: 0.05
  momentum: 0.9
"""


def real_data_dir():
    """The data directory holding the real IDX files, or None."""
    root = os.environ.get("PARACNN_DATA_DIR")
    if root and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        return Path(root)
    return None


@pytest.fixture
def shared_data_dir():
    root = real_data_dir()
    if root is None:
        pytest.skip("real MNIST not available: set PARACNN_DATA_DIR to a folder with mnist/*.gz")
    return root


def missing_layer_types(config_path):
    """Layer types a shipped config uses that no installed distribution registers."""
    import yaml

    from paracnn.registry import get_registry

    registry, missing = get_registry(), []

    def walk(layers):
        for spec in layers or ():
            name = spec.get("type", "")
            try:
                registry.entry(name)
            except Exception:  # noqa: BLE001 - any lookup failure means "not installed here"
                missing.append(name)
            walk(spec.get("layers"))

    walk(yaml.safe_load(open(config_path))["model"]["layers"])
    return missing


def skip_if_plugins_missing(config_path):
    """Skip a test on a shipped config that needs a plugin this environment lacks."""
    missing = missing_layer_types(config_path)
    if missing:
        pytest.skip(f"{config_path.name} needs layer types {missing}: "
                    f"pip install -e ./plugins/paracnn-extras")
