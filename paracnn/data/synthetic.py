"""A synthetic image dataset: deterministic from a seed, no files, learnable.

Each class has a fixed random prototype image; a sample is its class's
prototype plus Gaussian noise, clipped to 0..255. The noise is strong, so no
two samples are alike and learning takes a while rather than one step: on the
default 1x12x12 images, a linear softmax model trained by plain SGD is right
about 60% of the time after 50 single-sample steps and over 90% after 300
(chance is 10%). Good for fast tests and demos.
"""

import math
import random

from ..errors import ConfigError

#: Standard deviation of the per-pixel noise, in pixel units (0..255); it
#: sets how hard the task is (see the module docstring).
NOISE = 192.0


def prototypes(image_shape, num_classes, seed=0):
    """One random uint8 image per class, as ``bytes`` of ``C*H*W``; depends only on the arguments."""
    rng = random.Random(f"paracnn-synthetic:{seed}:prototypes")
    pixels = math.prod(image_shape)
    return [rng.randbytes(pixels) for _ in range(num_classes)]


def make_synthetic(size, image_shape=(1, 12, 12), num_classes=10, seed=0, split="train"):
    """Generate ``size`` labelled samples.

    Every split of one seed shares the prototypes; ``split`` picks the noise,
    so ``"train"`` and ``"test"`` samples differ.

    Args:
        size: number of samples.
        image_shape: ``(C, H, W)``.
        num_classes: between 2 and 256; labels are balanced (counts differ by
            at most one) and shuffled.
        seed: the same ``(seed, split)`` always gives the same bytes.
        split: a name that selects the noise stream, e.g. ``"train"``.

    Returns:
        ``(images, labels)``: uint8 ``bytes`` of ``size*C*H*W`` and ``size``.

    Example::

        images, labels = make_synthetic(512, (1, 12, 12), 10, seed=0)
    """
    _check(size, image_shape, num_classes, split)
    protos = prototypes(image_shape, num_classes, seed)
    rng = random.Random(f"paracnn-synthetic:{seed}:{split}")
    labels = [i % num_classes for i in range(size)]
    rng.shuffle(labels)
    gauss = rng.gauss
    images = bytearray()
    for label in labels:
        images += bytes([min(255, max(0, round(p + gauss(0.0, NOISE)))) for p in protos[label]])
    return bytes(images), bytes(labels)


def _check(size, image_shape, num_classes, split):
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError(f"synthetic {split}_size must be a whole number >= 1, not {size!r}",
                          key=("synthetic", f"{split}_size"))
    if (len(image_shape) != 3 or any(not isinstance(d, int) or isinstance(d, bool) or d < 1
                                     for d in image_shape)):
        raise ConfigError(f"synthetic image_shape must be three whole numbers [C, H, W] >= 1, "
                          f"not {list(image_shape)!r}", key=("synthetic", "image_shape"))
    if not isinstance(num_classes, int) or not 2 <= num_classes <= 256:
        raise ConfigError(f"synthetic num_classes must be between 2 and 256, not {num_classes!r}",
                          key=("synthetic", "num_classes"))
