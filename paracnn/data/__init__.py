"""Datasets: IDX reading, finding and downloading files, checksums, synthetic data.

Images are held once as uint8 bytes and turned into floats one sample at a
time (see :class:`ImageSet`); NumPy is used only while parsing IDX files in
the process that loads them, never by training workers.

Example::

    from paracnn.data import load_datasets, epoch_order
    sets = load_datasets({"dataset": "mnist", "train_limit": 1000}, seed=0)
    x, y = sets.train.sample(0)
"""

from .checksums import FILES, MIRRORS, SHA256
from .datasets import DATASETS, DEFAULTS, Datasets, epoch_order, load_datasets, split_validation, with_defaults
from .download import cache_dir, ensure_dataset, find_dataset_files
from .idx import load_idx_pair, read_idx, write_fake_dataset, write_idx
from .imageset import NORMALIZATIONS, ImageSet, make_table
from .synthetic import make_synthetic

__all__ = [
    "DATASETS", "DEFAULTS", "FILES", "MIRRORS", "NORMALIZATIONS", "SHA256",
    "Datasets", "ImageSet", "cache_dir", "ensure_dataset", "epoch_order", "find_dataset_files",
    "load_datasets", "load_idx_pair", "make_synthetic", "make_table", "read_idx",
    "split_validation", "with_defaults", "write_fake_dataset", "write_idx",
]
