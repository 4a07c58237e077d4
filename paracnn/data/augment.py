"""Deterministic perturbations of training samples: pixel jitter, random shifts, Gaussian noise.

An :class:`Augment` travels with the training :class:`~paracnn.data.ImageSet`
into every worker and perturbs one sample at a time, as the training step
asks for it (:meth:`ImageSet.train_sample <paracnn.data.ImageSet.train_sample>`).
Every draw comes from a ``random.Random`` seeded by :func:`augment_seed` of
``(seed, epoch, sample index)``, never by the process, so ``--workers 0``, ``1``
or ``N`` see the very same perturbed pixels and reach bit-identical weights.
Evaluation (validation and test) never goes through it.

In the order they are applied (``data.augment``):

- ``shift: k``: the image moves by ``dx, dy``, each uniform in ``-k .. k``
  pixels; what moves in is background (raw byte 0).
- ``jitter: p``: each raw byte is flipped with probability ``p``, seed 001's
  "randomly turning pixels on and off": a pixel that is on (``>= 128``) turns
  off (0), one that is off turns fully on (255).
- ``noise: sigma``: Gaussian noise N(0, sigma²) added to every value after
  normalisation (``data.normalize``), so ``sigma`` is in normalised units.

Example::

    aug = Augment(jitter=0.1)
    x = aug.apply(raw_bytes, table, (1, 28, 28), augment_seed(0, 3, 17))
"""

import hashlib
import math
import random
from functools import partial
from itertools import repeat
from operator import add, mul

from ..errors import ConfigError
from ..layer import check_float, check_int

#: ``data.augment`` with every perturbation off.
AUGMENT_DEFAULTS = {"jitter": 0.0, "shift": 0, "noise": 0.0}

#: The value rules of ``data.augment``, shared by the config schema and :class:`Augment`.
AUGMENT_RULES = {
    "jitter": partial(check_float, low=0.0, high=1.0),
    "shift": partial(check_int, minimum=0),
    "noise": partial(check_float, low=0.0),
}

#: A raw byte at or above this counts as "on" for jitter.
ON_THRESHOLD = 128


def augment_seed(seed, epoch, index):
    """The seed of the perturbations of training sample ``index`` in ``epoch`` (63 bits).

    Derived like :func:`paracnn.parallel.tasks.sample_seed` but under its own
    tag, so the perturbations do not correlate with the dropout masks.
    """
    digest = hashlib.blake2b(f"paracnn-augment:{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Augment:
    """The perturbations one training set applies; see the module docstring.

    Args:
        jitter: probability in [0, 1] that a raw pixel byte is flipped on/off.
        shift: the largest translation in pixels, in x and in y (int >= 0).
        noise: standard deviation of the additive Gaussian noise (>= 0).

    Errors name the key as ``data.augment.<key>``.
    """

    def __init__(self, jitter=0.0, shift=0, noise=0.0):
        self.jitter = AUGMENT_RULES["jitter"]("data.augment.jitter", jitter)
        self.shift = AUGMENT_RULES["shift"]("data.augment.shift", shift)
        self.noise = AUGMENT_RULES["noise"]("data.augment.noise", noise)

    @classmethod
    def from_config(cls, spec):
        """The Augment of a ``data.augment`` mapping, or None when every perturbation is off."""
        spec = spec or {}
        unknown = sorted(set(spec) - set(AUGMENT_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown key '{unknown[0]}' in data.augment (allowed: "
                              f"{', '.join(AUGMENT_DEFAULTS)})", key="augment")
        aug = cls(**{**AUGMENT_DEFAULTS, **spec})
        return aug if aug.active else None

    @property
    def active(self):
        return bool(self.jitter or self.shift or self.noise)

    def __repr__(self):
        return f"Augment(jitter={self.jitter}, shift={self.shift}, noise={self.noise})"

    def __eq__(self, other):
        return isinstance(other, Augment) and vars(self) == vars(other)

    def apply(self, raw, table, shape, seed):
        """The perturbed sample as a list of floats.

        Args:
            raw: the sample's uint8 pixels (bytes-like), channel-major.
            table: the 256 floats the bytes map to (:func:`~paracnn.data.make_table`).
            shape: ``(C, H, W)``.
            seed: :func:`augment_seed` of the sample.
        """
        rng = random.Random(seed)
        pixels = self.pixels(raw, shape, rng)
        x = list(map(table.__getitem__, pixels))
        if self.noise:
            x = list(map(add, x, gaussian(len(x), self.noise, rng)))
        return x

    def pixels(self, raw, shape, rng):
        """The raw bytes after the shift and the jitter (the ones that act on pixels)."""
        if self.shift:
            k = self.shift
            raw = shifted(raw, shape, rng.randint(-k, k), rng.randint(-k, k))
        if self.jitter:
            raw = jittered(raw, self.jitter, rng)
        return raw


def shifted(raw, shape, dx, dy):
    """``raw`` (C, H, W) moved right by ``dx`` and down by ``dy`` pixels, background (0) filled in.

    Example: with ``dx = 1`` the pixel at column 0 lands in column 1, and column 0 becomes 0.
    """
    c, h, w = shape
    out = bytearray(len(raw))
    if abs(dx) >= w or abs(dy) >= h:
        return out
    # NOTE: one slice copy per row keeps it C-level: 28 copies for an MNIST image.
    src_x, dst_x, width = max(0, -dx), max(0, dx), w - abs(dx)
    for ch in range(c):
        base = ch * h * w
        for y in range(max(0, dy), min(h, h + dy)):
            dst = base + y * w + dst_x
            src = base + (y - dy) * w + src_x
            out[dst:dst + width] = raw[src:src + width]
    return out


def jittered(raw, p, rng):
    """A copy of ``raw`` with each byte flipped on/off with probability ``p`` (see the module docstring)."""
    out = bytearray(raw)
    draw = rng.random
    for j in [j for j in range(len(out)) if draw() < p]:
        out[j] = 0 if out[j] >= ON_THRESHOLD else 255
    return out


def gaussian(n, sigma, rng):
    """``n`` independent N(0, sigma²) values by the Box-Muller transform.

    NOTE: C-level maps over ``n / 2`` uniform pairs took 0.56 and 0.68 of the
    time of calling ``rng.gauss`` ``n`` times, in two runs of scripts/bench_augment.py.
    """
    half = (n + 1) // 2
    draw = rng.random
    u1 = [1.0 - draw() for _ in range(half)]  # in (0, 1], so the log is finite
    angle = [2.0 * math.pi * draw() for _ in range(half)]
    radius = list(map(math.sqrt, map(mul, map(math.log, u1), repeat(-2.0 * sigma * sigma))))
    z = list(map(mul, radius, map(math.cos, angle)))
    z += map(mul, radius, map(math.sin, angle))
    return z[:n]
