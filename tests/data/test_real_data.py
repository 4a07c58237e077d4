"""The real MNIST and Fashion-MNIST files (skipped unless PARACNN_DATA_DIR holds them)."""

import pytest

from paracnn.data import find_dataset_files, load_datasets
from paracnn.errors import DataError

# Parsing the full 60,000-image set takes about a second, so do it once per session.
_FULL = {}


@pytest.fixture
def mnist_full(shared_data_dir, clean_env):
    if shared_data_dir not in _FULL:
        _FULL[shared_data_dir] = load_datasets({"dataset": "mnist", "download": False},
                                               data_dir=str(shared_data_dir))
    return _FULL[shared_data_dir]


def test_full_mnist_verifies_and_counts(mnist_full, shared_data_dir):
    # load_datasets checked all four official SHA-256s on the way.
    assert (len(mnist_full.train), len(mnist_full.test), mnist_full.val) == (60000, 10000, None)
    assert mnist_full.shape == (1, 28, 28) and mnist_full.num_classes == 10
    assert mnist_full.source == str(shared_data_dir / "mnist")
    assert len(mnist_full.train.images) == 60000 * 784  # one uint8 buffer, not float lists


def test_mnist_first_labels_and_pixels(mnist_full):
    assert mnist_full.train.labels_list()[:10] == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist_full.test.labels_list()[:10] == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    x, y = mnist_full.train.sample(0)
    assert y == 5 and len(x) == 784 and min(x) == 0.0 and max(x) == 1.0
    # The top rows of the first digit are background.
    assert x[:28 * 4] == [0.0] * (28 * 4)


def test_mnist_limits_and_validation_on_real_data(mnist_full, shared_data_dir, clean_env):
    sets = load_datasets({"dataset": "mnist", "download": False, "train_limit": 1000,
                          "test_limit": 100, "validation": 0.1}, seed=0, data_dir=str(shared_data_dir))
    assert (len(sets.train), len(sets.val), len(sets.test)) == (900, 100, 100)
    first = mnist_full.train.labels_list()[:1000]
    assert sorted(sets.train.labels_list() + sets.val.labels_list()) == sorted(first)
    assert sets.test.labels_list() == mnist_full.test.labels_list()[:100]
    assert sets.val.sample(0) == mnist_full.train.sample(sets.val.indices[0])


def test_fashion_mnist_from_data_dir_env(shared_data_dir, clean_env, monkeypatch):
    if find_dataset_files("fashion-mnist", shared_data_dir) is None:
        pytest.skip("Fashion-MNIST is not in the shared data folder")
    monkeypatch.setenv("PARACNN_DATA_DIR", str(shared_data_dir))
    sets = load_datasets({"dataset": "fashion-mnist", "download": False, "train_limit": 10,
                          "test_limit": 10, "normalize": "standardize"})
    assert sets.source == str(shared_data_dir / "fashion-mnist")
    assert sets.train.labels_list() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert sets.test.labels_list() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert sets.classes[9] == "Ankle boot"
    assert min(sets.train.sample(0)[0]) == pytest.approx(-0.1307 / 0.3081)


def test_real_files_under_the_wrong_name_fail_the_checksum(shared_data_dir, clean_env, tmp_path):
    """MNIST files presented as Fashion-MNIST are structurally fine but fail its hashes."""
    with pytest.raises(DataError, match="another dataset") as err:
        load_datasets({"dataset": "fashion-mnist", "download": False}, data_dir=str(shared_data_dir / "mnist"))
    assert str(shared_data_dir / "mnist") in str(err.value)
