"""Label noise: a fixed fraction of the training labels replaced by a different class, once.

Seed 001 trained with "randomly scrambling the labels for 10 % of the training
set". ``data.label_noise: f`` does that when the datasets are loaded, after
the validation split and on the training part only: ``round(f * n)`` of the
``n`` training samples, chosen from the run seed, each get a class other than
their own, uniformly. The set gets its own copy of the label bytes, so the
validation and test labels (which may share the original buffer) are never
touched. :class:`LabelNoise` lists what changed; a run writes it to
``RUN/label_noise.json``.

Example::

    train, noise = corrupt_labels(sets.train, 0.1, seed=0)
    noise.changed[0]       # LabelChange(index=3, position=3, old=5, new=8)
"""

import json
import random
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import List

from ..layer import check_float

#: The rule of ``data.label_noise``, shared by the config schema and :func:`corrupt_labels`.
LABEL_NOISE_RULE = partial(check_float, low=0.0, high=1.0)


@dataclass
class LabelChange:
    """One corrupted label.

    Attributes:
        index: the sample's index in the training set (what the training step sees).
        position: its position in the dataset's files (image number in ``train-images``).
        old: the true label.
        new: the label the model is trained on.
    """

    index: int
    position: int
    old: int
    new: int


@dataclass
class LabelNoise:
    """Which training labels :func:`corrupt_labels` replaced, and with what."""

    fraction: float
    seed: int
    train_size: int
    num_classes: int
    changed: List[LabelChange] = field(default_factory=list)

    def to_json(self):
        """The text of ``RUN/label_noise.json``: the settings and one record per changed label."""
        return json.dumps({**{k: v for k, v in asdict(self).items() if k != "changed"},
                           "count": len(self.changed),
                           "changed": [asdict(c) for c in self.changed]}, indent=1)


def corrupt_labels(train, fraction, seed):
    """``(set with round(fraction * len) labels replaced, LabelNoise)``; ``train`` is not changed.

    Args:
        train: the training :class:`~paracnn.data.ImageSet` (after the validation split).
        fraction: in [0, 1]; 0 returns ``(train, None)``.
        seed: the run seed; the same seed picks the same samples and classes.
    """
    fraction = LABEL_NOISE_RULE("data.label_noise", fraction)
    if fraction == 0.0:
        return train, None
    n, k = len(train), train.num_classes
    rng = random.Random(f"paracnn-label-noise:{seed}")
    labels = bytearray(train.labels)
    noise = LabelNoise(fraction, seed, n, k)
    for i in sorted(rng.sample(range(n), round(fraction * n))):
        j = train.position(i)
        old = labels[j]
        # Adding 1..k-1 modulo k gives each of the other k - 1 classes with equal chance.
        labels[j] = (old + rng.randrange(1, k)) % k
        noise.changed.append(LabelChange(i, j, old, labels[j]))
    return train.with_buffers(train.images, bytes(labels)), noise
