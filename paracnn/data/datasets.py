"""Building the train / validation / test sets from the ``data:`` config mapping.

Example::

    sets = load_datasets({"dataset": "mnist", "train_limit": 1000, "validation": 0.1}, seed=0)
    x, y = sets.train.sample(0)
    for i in epoch_order(len(sets.train), seed=0, epoch=3): ...
"""

import copy
import math
import random
from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError
from ..layer import check_float
from .augment import AUGMENT_DEFAULTS, Augment
from .checksums import CLASSES, SHA256, SIZES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from .download import ensure_dataset
from .idx import load_idx_pair
from .imageset import NORMALIZATIONS, ImageSet, make_table
from .label_noise import LabelNoise, corrupt_labels
from .synthetic import make_synthetic

#: Dataset names ``data.dataset`` accepts.
DATASETS = ("mnist", "fashion-mnist", "synthetic")

#: The ``data:`` mapping with every key at its default (the config schema).
DEFAULTS = {
    "dataset": "mnist",       # mnist | fashion-mnist | synthetic
    "dir": None,              # folder with the IDX files (overrides PARACNN_DATA_DIR)
    "download": True,         # fetch missing files into the cache
    "mirror": None,           # base URL; None = PARACNN_MIRROR or the dataset's default
    "train_limit": None,      # use the first N training images
    "test_limit": None,       # use the first N test images
    "validation": 0.0,        # fraction of the (limited) training images held out
    "normalize": "unit",      # unit | centered | standardize
    "mean": 0.1307,           # for standardize
    "std": 0.3081,
    "synthetic": {"train_size": 512, "test_size": 128, "image_shape": [1, 12, 12], "num_classes": 10},
    "augment": dict(AUGMENT_DEFAULTS),  # perturbations of training samples (data/augment.py)
    "label_noise": 0.0,       # fraction of training labels replaced by another class
}


@dataclass
class Datasets:
    """The sets one run uses.

    Attributes:
        train: the training set (without the validation images).
        val: the held-out validation set, or None when ``validation`` is 0.
        test: the test set.
        source: the folder the files came from, or ``"synthetic"``.
        classes: a name per class, for reports.
        label_noise: the training labels ``data.label_noise`` replaced, or None.
    """

    train: ImageSet
    val: Optional[ImageSet]
    test: ImageSet
    source: str = ""
    classes: Optional[list] = None
    label_noise: Optional[LabelNoise] = None

    @property
    def shape(self):
        """``(C, H, W)`` of one sample."""
        return self.train.shape

    @property
    def num_classes(self):
        return self.train.num_classes


def with_defaults(data_cfg):
    """``data_cfg`` over :data:`DEFAULTS` (one level deep for ``synthetic`` and ``augment``);
    the input is not changed."""
    cfg = copy.deepcopy(DEFAULTS)
    data_cfg = dict(data_cfg or {})
    cfg["synthetic"].update(data_cfg.pop("synthetic", None) or {})
    cfg["augment"].update(data_cfg.pop("augment", None) or {})
    cfg.update(data_cfg)
    return cfg


def epoch_order(n, seed, epoch):
    """The order to visit ``n`` training samples in epoch ``epoch``.

    A permutation of ``range(n)`` that depends only on ``(seed, epoch, n)``, so
    a resumed run, or a run with a different number of workers, sees the same
    order.
    """
    order = list(range(n))
    random.Random(f"paracnn-epoch:{seed}:{epoch}").shuffle(order)
    return order


def split_validation(train, fraction, seed):
    """Split ``train`` into ``(train, val)``, holding out ``fraction`` of it.

    The held-out samples are chosen by a permutation seeded from ``seed``; both
    parts keep the original order. ``fraction == 0`` gives ``(train, None)``.
    """
    if fraction == 0:
        return train, None
    n = len(train)
    n_val = max(1, round(fraction * n))
    if n_val >= n:
        raise ConfigError(f"validation {fraction} of {n} training images leaves none to train on; "
                          f"lower validation or raise train_limit", key="validation")
    perm = list(range(n))
    random.Random(f"paracnn-validation:{seed}").shuffle(perm)
    base = train.name.rsplit("/", 1)[0]
    return (train.subset(sorted(perm[n_val:]), f"{base}/train"),
            train.subset(sorted(perm[:n_val]), f"{base}/val"))


def load_datasets(data_cfg, seed=0, data_dir=None, checksums=None):
    """Load (or generate) the sets the ``data:`` config describes.

    Label noise (``label_noise``) is applied to the training part after the
    validation split, and the training set carries the ``augment``
    perturbations; validation and test sets are never perturbed.

    Args:
        data_cfg: the ``data:`` mapping; missing keys take :data:`DEFAULTS`.
        seed: the run seed; it picks the validation split, the synthetic data
            and the corrupted labels.
        data_dir: a folder given on the command line; it overrides ``data.dir``.
        checksums: ``{file name without .gz: SHA-256}`` to verify instead of the
            official table (``{}`` verifies nothing); for tests with fake files.

    Returns:
        :class:`Datasets`.

    Raises:
        ConfigError: a value in ``data_cfg`` is out of range.
        DataError: the files are missing, corrupt or fail their checksums.
    """
    cfg = with_defaults(data_cfg)
    _check(cfg)
    table = make_table(cfg["normalize"], cfg["mean"], cfg["std"])
    name = cfg["dataset"]
    if name == "synthetic":
        train, test, source, classes = _synthetic(cfg["synthetic"], seed, table)
    else:
        train, test, source = _from_files(name, cfg, data_dir or cfg["dir"], checksums, table)
        classes = CLASSES.get(name)
    train, val = split_validation(_first(train, cfg["train_limit"]), cfg["validation"], seed)
    augment = Augment.from_config(cfg["augment"])
    train, noise = corrupt_labels(train, cfg["label_noise"], seed)
    return Datasets(train.with_augment(augment), val, _first(test, cfg["test_limit"]), source,
                    classes, noise)


def dataset_size(data_cfg):
    """``(samples, pixels per image)`` a validated ``data:`` mapping loads, from the config alone.

    Both splits count; IDX files are read whole before any limit applies.
    """
    if data_cfg["dataset"] == "synthetic":
        syn = data_cfg["synthetic"]
        return syn["train_size"] + syn["test_size"], math.prod(syn["image_shape"])
    images = SIZES[TRAIN_IMAGES[:-3]] + SIZES[TEST_IMAGES[:-3]]
    samples = SIZES[TRAIN_LABELS[:-3]] + SIZES[TEST_LABELS[:-3]] - 2 * 8  # less the label headers
    return samples, (images - 2 * 16) // samples


def _from_files(name, cfg, data_dir, checksums, table):
    folder = ensure_dataset(name, data_dir, cfg["mirror"], cfg["download"], checksums)
    hashes = SHA256.get(name, {}) if checksums is None else checksums
    k = len(CLASSES[name])
    sets = []
    for split, images_file, labels_file in (("train", TRAIN_IMAGES, TRAIN_LABELS),
                                            ("test", TEST_IMAGES, TEST_LABELS)):
        images, labels, shape = load_idx_pair(folder / images_file, folder / labels_file, k, hashes)
        sets.append(ImageSet(images, labels, shape, k, f"{name}/{split}", table=table))
    return sets[0], sets[1], str(folder)


def _synthetic(syn, seed, table):
    shape = tuple(syn["image_shape"])
    k = syn["num_classes"]
    sets = [ImageSet(*make_synthetic(syn[f"{split}_size"], shape, k, seed, split), shape, k,
                     f"synthetic/{split}", table=table) for split in ("train", "test")]
    return sets[0], sets[1], "synthetic", [str(c) for c in range(k)]


def _first(ds, limit):
    """The first ``limit`` samples, copied out so the full buffers can be freed."""
    if limit is None or limit >= len(ds):
        return ds
    if ds.indices is not None:
        return ds.subset(range(limit))
    size = ds.size
    return ImageSet(bytes(ds.images[:limit * size]), bytes(ds.labels[:limit]), ds.shape,
                    ds.num_classes, ds.name, table=ds.table)


def _check(cfg):
    """Range checks on values the YAML schema cannot express, with the key at fault."""
    if cfg["dataset"] not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg['dataset']!r}; expected one of {', '.join(DATASETS)}",
                          key="dataset")
    if cfg["normalize"] not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalize {cfg['normalize']!r}; expected one of "
                          f"{', '.join(NORMALIZATIONS)}", key="normalize")
    if cfg["normalize"] == "standardize":
        check_float("mean", cfg["mean"])
        check_float("std", cfg["std"], low=0.0, low_open=True)
    for key in ("train_limit", "test_limit"):
        value = cfg[key]
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ConfigError(f"{key} must be a whole number >= 1 or null, not {value!r}", key=key)
    check_float("validation", cfg["validation"], low=0.0, high=1.0, high_open=True)
