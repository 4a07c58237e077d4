"""IDX writing and reading, and the DataError every kind of bad file must give."""

import gzip
import hashlib
import random
import re

import pytest

from paracnn.data import checksums
from paracnn.data.idx import (IMAGE_DIMS, LABEL_DIMS, idx_bytes, load_idx_pair, read_idx,
                              write_fake_dataset, write_idx)
from paracnn.errors import DataError

from ..faults.bombs import gzip_bomb, idx_header


def test_write_idx_uncompressed_layout(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    digest = write_idx(path, bytes([3, 1, 4]), (3,), gz=False)
    raw = path.read_bytes()
    # magic 00 00 08 01 (uint8, 1 dim), size 3 big-endian, then the items
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])
    assert digest == hashlib.sha256(raw).hexdigest()


def test_write_idx_gz_round_trip_agrees_with_mnist_package(tmp_path):
    mnist = pytest.importorskip("mnist")
    data = bytes(range(2 * 3 * 4))
    path = tmp_path / "x.gz"
    write_idx(path, data, (2, 3, 4))
    dims, items = read_idx(path, IMAGE_DIMS)
    assert dims == (2, 3, 4) and items == data
    with gzip.open(path) as f:
        array = mnist.parse_idx(f)
    assert array.shape == (2, 3, 4) and array.tobytes() == data


def test_write_idx_is_reproducible(tmp_path):
    a, b = tmp_path / "a.gz", tmp_path / "b.gz"
    write_idx(a, b"\x01\x02", (2,))
    write_idx(b, b"\x01\x02", (2,))
    assert a.read_bytes() == b.read_bytes()


def test_write_idx_rejects_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="dims"):
        write_idx(tmp_path / "x.gz", b"\x00" * 5, (2, 3))


def test_load_pair_gives_chw_shape(tmp_path):
    write_idx(tmp_path / "i.gz", bytes(range(2 * 4 * 5)), (2, 4, 5))
    write_idx(tmp_path / "l.gz", bytes([7, 2]), (2,))
    images, labels, shape = load_idx_pair(tmp_path / "i.gz", tmp_path / "l.gz", 10)
    assert shape == (1, 4, 5) and labels == bytes([7, 2]) and images == bytes(range(40))

    write_idx(tmp_path / "i4.gz", bytes(2 * 3 * 4 * 5), (2, 3, 4, 5))
    assert load_idx_pair(tmp_path / "i4.gz", tmp_path / "l.gz", 10)[2] == (3, 4, 5)


def test_fake_dataset_hashes_match_its_files(tmp_path):
    hashes = write_fake_dataset(tmp_path, train_size=5, test_size=3, image_shape=(4, 4), num_classes=3)
    for name, digest in hashes.items():
        with gzip.open(tmp_path / f"{name}.gz") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
    images, labels, shape = load_idx_pair(tmp_path / "train-images-idx3-ubyte.gz",
                                          tmp_path / "train-labels-idx1-ubyte.gz", 3, hashes)
    assert (len(images), len(labels), shape) == (5 * 16, 5, (1, 4, 4))
    assert set(labels) <= {0, 1, 2}


def _gz(path, raw):
    path.write_bytes(gzip.compress(raw, mtime=0))


def _truncated(path):
    data = gzip.compress(idx_bytes(bytes(1000), (10, 10, 10)), mtime=0)
    path.write_bytes(data[: len(data) // 2])


def _html(path):
    path.write_bytes(b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n")


def _garbage(path):
    path.write_bytes(b"PK\x03\x04 this is a zip file, not gzip")


def _bad_crc(path):
    data = bytearray(gzip.compress(idx_bytes(bytes(range(200)) * 5, (10, 10, 10)), mtime=0))
    data[-6] ^= 0xFF  # inside the CRC-32 trailer
    path.write_bytes(bytes(data))


CORRUPT = {
    "missing": (lambda p: None, "not found"),
    "truncated gzip": (_truncated, "truncated"),
    "html saved as gz": (_html, "HTML page"),
    "not gzip": (_garbage, "not a gzip file"),
    "bad crc": (_bad_crc, "CRC"),
    "empty": (lambda p: _gz(p, b""), "too short"),
    "labels magic in images file": (lambda p: _gz(p, idx_bytes(bytes(3), (3,))), "wrong IDX magic"),
    "float items": (lambda p: _gz(p, b"\x00\x00\x0d\x03" + bytes(12)), "wrong IDX magic"),
    "cut header": (lambda p: _gz(p, b"\x00\x00\x08\x03\x00\x00"), "header is cut short"),
    "wrong count": (lambda p: _gz(p, idx_bytes(bytes(40), (10, 2, 2))[:-4]), "header promises 40"),
    "extra items": (lambda p: _gz(p, idx_bytes(bytes(40), (10, 2, 2)) + b"\x00"), "holds more"),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_bad_file_gives_data_error_naming_it(tmp_path, case):
    make, phrase = CORRUPT[case]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    make(path)
    with pytest.raises(DataError) as err:
        read_idx(path, IMAGE_DIMS)
    message = str(err.value)
    assert str(path) in message and phrase in message
    assert "\n" not in message
    assert "PARACNN_DATA_DIR" in message  # says what to do


def test_checksum_mismatch_is_detected(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    digest = write_idx(path, bytes([1, 2, 3]), (3,))
    assert read_idx(path, LABEL_DIMS, sha256=digest)[1] == bytes([1, 2, 3])
    with pytest.raises(DataError, match="SHA-256") as err:
        read_idx(path, LABEL_DIMS, sha256="0" * 64)
    assert str(path) in str(err.value) and digest in str(err.value)


def test_image_label_count_mismatch_names_both_files(tmp_path):
    images, labels = tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(images, bytes(5 * 4), (5, 2, 2))
    write_idx(labels, bytes(4), (4,))
    with pytest.raises(DataError) as err:
        load_idx_pair(images, labels, 10)
    assert str(images) in str(err.value) and str(labels) in str(err.value)
    assert "5 images" in str(err.value) and "4 labels" in str(err.value)


def test_label_out_of_range(tmp_path):
    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    write_idx(images, bytes(3 * 4), (3, 2, 2))
    write_idx(labels, bytes([0, 9, 10]), (3,))
    with pytest.raises(DataError, match=r"label 10 at position 2 is outside 0\.\.9") as err:
        load_idx_pair(images, labels, 10)
    assert str(labels) in str(err.value)


def test_labels_file_in_images_place_is_rejected(tmp_path):
    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    write_idx(images, bytes(3 * 4), (3, 2, 2))
    write_idx(labels, bytes(3), (3,))
    with pytest.raises(DataError, match="wrong IDX magic") as err:
        load_idx_pair(labels, images, 10)
    assert str(labels) in str(err.value)


def test_random_damage_only_ever_raises_data_error(tmp_path):
    """Flip, cut or splice bytes of a good file: the reader returns or raises DataError, nothing else."""
    good = gzip.compress(idx_bytes(bytes(range(256)) * 3, (3, 16, 16)), mtime=0)
    raw = idx_bytes(bytes(range(256)) * 3, (3, 16, 16))
    rng = random.Random(0)
    path = tmp_path / "damaged.gz"
    outcomes = set()
    for trial in range(300):
        data = bytearray(good if trial % 2 else gzip.compress(_damage(raw, rng), mtime=0))
        if trial % 2:
            data = _damage(bytes(data), rng)
        path.write_bytes(bytes(data))
        try:
            read_idx(path, IMAGE_DIMS)
            outcomes.add("ok")
        except DataError as e:
            assert str(path) in str(e)
            outcomes.add("error")
    assert "error" in outcomes


def _damage(data, rng):
    data = bytearray(data)
    how = rng.randrange(3)
    if how == 0:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == 1:
        del data[rng.randrange(len(data)):]
    else:
        data[rng.randrange(len(data)):rng.randrange(len(data))] = rng.randbytes(rng.randrange(1, 20))
    return bytes(data)


def test_the_pypy_path_reads_the_same_items_as_the_mnist_package(tmp_path, monkeypatch):
    rng = random.Random(5)
    data = rng.randbytes(3 * 2 * 5 * 4)
    write_idx(tmp_path / "i.gz", data, (3, 2, 5, 4))
    through_mnist = read_idx(tmp_path / "i.gz", IMAGE_DIMS)
    monkeypatch.setattr("platform.python_implementation", lambda: "PyPy")
    assert read_idx(tmp_path / "i.gz", IMAGE_DIMS) == through_mnist == ((3, 2, 5, 4), data)


class CountingGzip(gzip.GzipFile):
    """Counts the decompressed bytes handed out, to show a bomb is never inflated whole."""

    handed_out = 0

    def read(self, size=-1):
        data = super().read(size)
        CountingGzip.handed_out += len(data)
        return data


@pytest.fixture
def counting(monkeypatch):
    CountingGzip.handed_out = 0
    monkeypatch.setattr(gzip, "open", lambda path, mode="rb": CountingGzip(path, mode))
    return CountingGzip


def test_a_gzip_bomb_behind_a_known_header_is_stopped_at_the_promised_size(tmp_path, counting):
    official = checksums.SHA256["mnist"]["train-labels-idx1-ubyte"]
    path = gzip_bomb(tmp_path / "train-labels-idx1-ubyte.gz", idx_header((60_000,)), 64 << 20)
    with pytest.raises(DataError, match=r"the header promises 60000 bytes of items \(60000,\) but the "
                                        r"file holds more; it is truncated or corrupt"):
        read_idx(path, LABEL_DIMS, official)
    assert counting.handed_out <= checksums.SIZES["train-labels-idx1-ubyte"] + 1  # never the 64 MB


@pytest.mark.parametrize("sha256, limit", [(None, "paracnn's limit for an IDX file (200,000,000 bytes)"),
                                            (checksums.SHA256["mnist"]["t10k-images-idx3-ubyte"],
                                             "its known size (7,840,016 bytes)")])
def test_a_header_promising_more_than_the_limit_or_the_known_size_is_refused_before_its_items(
        tmp_path, counting, sha256, limit):
    path = gzip_bomb(tmp_path / "t10k-images-idx3-ubyte.gz", idx_header((10_000_000, 28, 28)), 8 << 20)
    with pytest.raises(DataError, match=rf"promises 7,840,000,000 bytes of items \(10000000, 28, 28\), "
                                        rf"more than {re.escape(limit)}; it is corrupt or not a dataset file"):
        read_idx(path, IMAGE_DIMS, sha256)
    assert counting.handed_out == 16  # the header, nothing more
