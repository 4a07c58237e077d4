"""load_datasets on generated files: search order, limits, validation split, epoch order, config errors."""

import pytest

from paracnn.data import (DEFAULTS, checksums, ensure_dataset, epoch_order, find_dataset_files,
                          load_datasets, write_fake_dataset)
from paracnn.data.idx import load_idx_pair
from paracnn.errors import ConfigError, DataError


def _load(root, hashes, **cfg):
    return load_datasets({"dataset": "mnist", "download": False, **cfg}, seed=0,
                         data_dir=str(root), checksums=hashes)


def test_defaults_are_the_documented_schema():
    assert DEFAULTS["dataset"] == "mnist" and DEFAULTS["normalize"] == "unit"
    assert DEFAULTS["validation"] == 0.0 and DEFAULTS["download"] is True
    assert DEFAULTS["synthetic"] == {"train_size": 512, "test_size": 128,
                                     "image_shape": [1, 12, 12], "num_classes": 10}


def test_loads_fake_files_from_an_explicit_folder(clean_env, fake_mnist):
    root, hashes = fake_mnist
    sets = _load(root, hashes)
    assert (len(sets.train), len(sets.test), sets.val) == (40, 12, None)
    assert sets.shape == (1, 28, 28) and sets.num_classes == 10
    assert sets.source == str(root / "mnist")
    images, labels, _ = load_idx_pair(root / "mnist" / "train-images-idx3-ubyte.gz",
                                      root / "mnist" / "train-labels-idx1-ubyte.gz", 10)
    x, y = sets.train.sample(7)
    assert y == labels[7] and x == [p / 255 for p in images[7 * 784:8 * 784]]


def test_limits_take_the_first_images(clean_env, fake_mnist):
    root, hashes = fake_mnist
    full = _load(root, hashes)
    small = _load(root, hashes, train_limit=10, test_limit=5)
    assert (len(small.train), len(small.test)) == (10, 5)
    assert small.train.labels_list() == full.train.labels_list()[:10]
    assert small.test.sample(4) == full.test.sample(4)
    assert len(small.train.images) == 10 * 784  # copied out, the full buffer can be freed
    assert len(_load(root, hashes, train_limit=1000).train) == 40


def test_validation_split_is_deterministic_and_disjoint(clean_env, fake_mnist):
    root, hashes = fake_mnist
    a = _load(root, hashes, train_limit=30, validation=0.2)
    b = _load(root, hashes, train_limit=30, validation=0.2)
    assert (len(a.train), len(a.val)) == (24, 6)
    assert list(a.val.indices) == list(b.val.indices)
    train, val = set(a.train.indices), set(a.val.indices)
    assert not train & val and train | val == set(range(30))
    assert list(a.train.indices) == sorted(train)  # original order kept
    assert a.train.name == "mnist/train" and a.val.name == "mnist/val"
    other = load_datasets({"dataset": "mnist", "train_limit": 30, "validation": 0.2, "download": False},
                          seed=1, data_dir=str(root), checksums=hashes)
    assert list(other.val.indices) != list(a.val.indices)


def test_validation_that_leaves_nothing_is_a_config_error(clean_env, fake_mnist):
    root, hashes = fake_mnist
    with pytest.raises(ConfigError, match="leaves none") as err:
        _load(root, hashes, train_limit=2, validation=0.9)
    assert err.value.key == "validation"


def test_epoch_order_depends_only_on_seed_epoch_and_n():
    order = epoch_order(10, seed=0, epoch=0)
    assert sorted(order) == list(range(10))
    assert order == epoch_order(10, 0, 0)
    assert order != epoch_order(10, 0, 1) and order != epoch_order(10, 1, 0)
    # Pinned, so a change of algorithm (or of Python's shuffle) cannot go unnoticed.
    assert order == [0, 8, 4, 7, 5, 3, 2, 9, 1, 6]


@pytest.mark.parametrize("key, value, phrase", [
    ("dataset", "cifar", "unknown dataset"),
    ("normalize", "minmax", "unknown normalize"),
    ("train_limit", 0, "whole number >= 1"),
    ("test_limit", 2.5, "whole number >= 1"),
    ("validation", 1.0, r"validation must be < 1.0, got 1.0"),
    ("validation", -0.1, r"validation must be >= 0.0, got -0.1"),
])
def test_bad_values_are_config_errors_with_their_key(key, value, phrase):
    with pytest.raises(ConfigError, match=phrase) as err:
        load_datasets({key: value, "dataset": "synthetic"} if key != "dataset" else {key: value})
    assert err.value.key == key


def test_standardize_needs_positive_std():
    with pytest.raises(ConfigError, match="std must be") as err:
        load_datasets({"dataset": "synthetic", "normalize": "standardize", "std": 0})
    assert err.value.key == "std"


def test_fake_files_fail_the_official_mnist_checksums(clean_env, fake_mnist):
    root, _ = fake_mnist
    with pytest.raises(DataError, match="SHA-256") as err:
        load_datasets({"dataset": "mnist", "download": False}, data_dir=str(root))
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_flat_data_dir_is_accepted(clean_env, tmp_path):
    hashes = write_fake_dataset(tmp_path / "flat", train_size=3, test_size=2)
    found = find_dataset_files("mnist", tmp_path / "flat")
    assert found["t10k-labels-idx1-ubyte.gz"] == tmp_path / "flat" / "t10k-labels-idx1-ubyte.gz"
    assert len(_load(tmp_path / "flat", hashes).train) == 3


def test_search_order(clean_env, tmp_path, monkeypatch):
    def fake(folder):
        write_fake_dataset(folder, train_size=2, test_size=1)
        return folder

    system = fake(tmp_path / "system" / "fashion-mnist")
    monkeypatch.setitem(checksums.SYSTEM_DIRS, "fashion-mnist", [system])
    assert ensure_dataset("fashion-mnist", download=False) == system
    cached = fake(clean_env / "fashion-mnist")
    assert ensure_dataset("fashion-mnist", download=False) == cached
    monkeypatch.setenv("PARACNN_DATA_DIR", str(tmp_path / "env"))
    env = fake(tmp_path / "env" / "fashion-mnist")
    assert ensure_dataset("fashion-mnist", download=False) == env
    explicit = fake(tmp_path / "explicit" / "fashion-mnist")
    assert ensure_dataset("fashion-mnist", tmp_path / "explicit", download=False) == explicit
    # An explicit folder without the files falls through to the next place.
    assert ensure_dataset("fashion-mnist", tmp_path / "nowhere", download=False) == env


def test_cache_dir_follows_xdg(clean_env, tmp_path, monkeypatch):
    from paracnn.data import cache_dir

    monkeypatch.delenv("PARACNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "paracnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "paracnn"


def test_not_found_without_download_says_where_it_looked(clean_env, tmp_path):
    partial = tmp_path / "partial"
    write_fake_dataset(partial / "mnist", train_size=2, test_size=1)
    (partial / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load_datasets({"dataset": "mnist", "download": False, "dir": str(partial)})
    message = str(err.value)
    assert f"{partial / 'mnist'} (missing t10k-labels-idx1-ubyte.gz)" in message
    assert f"{clean_env / 'mnist'} (no such folder)" in message
    assert "data.download: true" in message and "PARACNN_DATA_DIR" in message
    assert "\n" not in message


def test_corrupt_file_in_a_folder_is_named(clean_env, fake_mnist):
    root, hashes = fake_mnist
    bad = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(b"<html><body>Service Unavailable</body></html>")
    with pytest.raises(DataError, match="HTML page") as err:
        _load(root, hashes)
    assert str(bad) in str(err.value) and "re-download" in str(err.value)
