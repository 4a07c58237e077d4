"""Fixtures shared by the whole suite.

Real MNIST / Fashion-MNIST are read from ``PARACNN_DATA_DIR`` (CI sets it to
``../shared/data``); tests that need them skip when they are absent.
"""

import os
from pathlib import Path

import pytest


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
