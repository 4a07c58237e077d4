"""ImageSet: per-sample conversion, subsets, shared-memory buffers, pickling for workers."""

import multiprocessing
import pickle
import sys
from array import array
from multiprocessing import shared_memory

import pytest

from paracnn.data import ImageSet, make_table


def _set(n=6, shape=(2, 2, 3), table=None):
    size = shape[0] * shape[1] * shape[2]
    images = bytes((7 * j + 3) % 256 for j in range(n * size))
    labels = bytes(j % 4 for j in range(n))
    return ImageSet(images, labels, shape, 4, "toy/train", table=table)


@pytest.mark.parametrize("normalize, at0, at255", [("unit", 0.0, 1.0), ("centered", -0.5, 0.5)])
def test_tables_map_the_ends(normalize, at0, at255):
    table = make_table(normalize)
    assert len(table) == 256 and table[0] == at0 and table[255] == at255
    assert table[51] == pytest.approx(51 / 255 - (0.5 if normalize == "centered" else 0))


def test_standardize_table():
    table = make_table("standardize", mean=0.5, std=0.25)
    assert table[0] == pytest.approx(-2.0) and table[255] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="std > 0"):
        make_table("standardize", std=0)
    with pytest.raises(ValueError, match="unit, centered, standardize"):
        make_table("minmax")


def test_sample_converts_one_image_through_the_table():
    ds = _set(table=make_table("centered"))
    assert len(ds) == 6 and ds.size == 12
    x, y = ds.sample(2)
    raw = ds.images[24:36]
    assert x == [p / 255 - 0.5 for p in raw] and y == 2
    assert ds.label(-1) == 1 and ds.sample(-1) == ds.sample(5)
    assert ds.pixels(2) == raw
    with pytest.raises(IndexError, match="out of range"):
        ds.sample(6)


def test_subset_shares_buffers_and_composes():
    ds = _set()
    sub = ds.subset([5, 1, 3], name="toy/val")
    assert sub.images is ds.images and isinstance(sub.indices, array)
    assert len(sub) == 3 and sub.labels_list() == [ds.label(5), ds.label(1), ds.label(3)]
    subsub = sub.subset([2, 0])
    assert list(subsub.indices) == [3, 5]
    assert subsub.sample(0) == ds.sample(3)
    assert ds.labels_list() == [0, 1, 2, 3, 0, 1]


def test_buffer_length_is_checked():
    with pytest.raises(ValueError, match="image buffer holds 11 bytes"):
        ImageSet(bytes(11), bytes(1), (1, 3, 4), 10)
    ds = _set()
    with pytest.raises(ValueError, match="label buffer"):
        ds.with_buffers(ds.images, ds.labels + b"\x00")


def test_pickle_of_plain_set_round_trips():
    ds = _set().subset([4, 0])
    back = pickle.loads(pickle.dumps(ds))
    assert back.sample(0) == ds.sample(0) and back.labels_list() == ds.labels_list()
    assert back.name == ds.name and back.shape == ds.shape


def test_works_over_shared_memory():
    ds = _set(table=make_table("centered")).subset([4, 1, 2])
    shm = shared_memory.SharedMemory(create=True, size=len(ds.images) + len(ds.labels))
    try:
        n = len(ds.images)
        shm.buf[:n] = ds.images
        shm.buf[n:n + len(ds.labels)] = ds.labels
        shared = ds.with_buffers(shm.buf[:n], shm.buf[n:n + len(ds.labels)])
        assert [shared.sample(i) for i in range(3)] == [ds.sample(i) for i in range(3)]
        with pytest.raises(TypeError, match="with_buffers"):
            pickle.dumps(shared)
        light = pickle.dumps(ds.with_buffers(None, None))
        assert len(light) < 8000  # the table and the indices, not the pixels
        rebuilt = pickle.loads(light).with_buffers(shm.buf[:n], shm.buf[n:n + len(ds.labels)])
        assert rebuilt.sample(2) == ds.sample(2)
        del shared, rebuilt  # release the views so the block can close
    finally:
        shm.close()
        shm.unlink()


def _worker_sample(light, shm_name, n_images, n_labels, queue):
    block = shared_memory.SharedMemory(name=shm_name)
    ds = light.with_buffers(block.buf[:n_images], block.buf[n_images:n_images + n_labels])
    queue.put((ds.sample(1), "numpy" in sys.modules, "mnist" in sys.modules))
    del ds
    block.close()


def test_spawned_worker_rebuilds_the_set_without_numpy():
    ds = _set(n=3)
    n_images, n_labels = len(ds.images), len(ds.labels)
    shm = shared_memory.SharedMemory(create=True, size=n_images + n_labels)
    try:
        shm.buf[:n_images] = ds.images
        shm.buf[n_images:n_images + n_labels] = ds.labels
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_worker_sample,
                           args=(ds.with_buffers(None, None), shm.name, n_images, n_labels, queue))
        proc.start()
        sample, numpy_loaded, mnist_loaded = queue.get(timeout=60)
        proc.join(timeout=60)
        assert proc.exitcode == 0
        assert sample == ds.sample(1)
        assert not numpy_loaded and not mnist_loaded
    finally:
        shm.close()
        shm.unlink()
