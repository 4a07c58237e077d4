"""The SHA-256 check covers the label files, not just the images.

Every case here damages a labels file only: its images are untouched, it is
still a valid IDX file with the right count and labels in range, so nothing
but the checksum can notice. (The other checksum tests damage the images, and
since images are checked first they would pass with the label check gone.)
"""

import pytest

from paracnn.data import (FILES, ensure_dataset, load_datasets, load_idx_pair, read_idx,
                          write_fake_dataset, write_idx)
from paracnn.data.checksums import TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from paracnn.data.idx import LABEL_DIMS
from paracnn.errors import DataError

LABEL_FILES = [TRAIN_LABELS, TEST_LABELS]


def relabel(path):
    """Rewrite the labels file at ``path`` with every label moved to the next class (of 10)."""
    (n,), labels = read_idx(path, LABEL_DIMS)
    write_idx(path, bytes((v + 1) % 10 for v in labels), (n,))


@pytest.fixture
def served(tmp_path):
    """A fake dataset to serve (train 20, test 6) and the hashes of its undamaged files."""
    folder = tmp_path / "served"
    return folder, write_fake_dataset(folder, train_size=20, test_size=6, seed=5)


def test_load_idx_pair_checks_the_labels_hash(served):
    folder, hashes = served
    images, labels = folder / TRAIN_IMAGES, folder / TRAIN_LABELS
    assert len(load_idx_pair(images, labels, 10, hashes)[1]) == 20
    relabel(labels)
    with pytest.raises(DataError, match="SHA-256 of the decompressed file is") as err:
        load_idx_pair(images, labels, 10, hashes)
    assert str(err.value).startswith(f"{labels}: ")
    assert hashes[TRAIN_LABELS[:-3]] in str(err.value)


@pytest.mark.parametrize("labels", LABEL_FILES)
def test_a_dataset_on_disk_with_other_labels_is_refused(clean_env, served, labels):
    folder, hashes = served
    relabel(folder / labels)
    with pytest.raises(DataError, match="SHA-256") as err:
        load_datasets({"dataset": "mnist", "download": False}, data_dir=str(folder), checksums=hashes)
    assert str(err.value).startswith(f"{folder / labels}: ")


@pytest.mark.parametrize("labels", LABEL_FILES)
def test_a_downloaded_labels_file_with_the_wrong_hash_is_not_kept(clean_env, serve, served, labels):
    folder, hashes = served
    relabel(folder / labels)
    url, requests = serve(folder)
    with pytest.raises(DataError, match="the downloaded file is bad: SHA-256") as err:
        ensure_dataset("mnist", mirror=url, checksums=hashes)
    assert str(err.value).startswith(f"{url}{labels}: ")
    cache = clean_env / "mnist"
    # the files before it landed, the bad one did not, and nothing after it was fetched
    kept = FILES[:FILES.index(labels)]
    assert sorted(p.name for p in cache.iterdir()) == sorted(kept)
    assert requests == [f"/{f}" for f in kept + (labels,)]
