"""ImageSet: labelled uint8 images held once as raw bytes, converted to floats per sample.

A 60,000-image MNIST set as Python floats would take gigabytes; as bytes it
takes 47 MB, and one 256-entry lookup table turns a sample into floats at C
speed. Subsets (limits, validation splits) are index arrays over the same
buffers, so nothing is copied.
"""

from array import array

from .augment import augment_seed

#: The normalisations :func:`make_table` knows; all are affine in the pixel value.
NORMALIZATIONS = ("unit", "centered", "standardize")


def make_table(normalize="unit", mean=0.1307, std=0.3081):
    """The 256 input values that pixel values 0..255 map to.

    Args:
        normalize: ``"unit"`` gives ``p/255`` in [0, 1]; ``"centered"`` gives
            ``p/255 - 0.5`` in [-0.5, 0.5]; ``"standardize"`` gives
            ``(p/255 - mean) / std``.
        mean, std: used by ``"standardize"`` only (defaults: MNIST's).

    Example::

        make_table("centered")[255]  # 0.5
    """
    if normalize == "unit":
        return [p / 255 for p in range(256)]
    if normalize == "centered":
        return [p / 255 - 0.5 for p in range(256)]
    if normalize == "standardize":
        if not std > 0:
            raise ValueError(f"standardize needs std > 0, not {std!r}")
        return [(p / 255 - mean) / std for p in range(256)]
    raise ValueError(f"unknown normalize {normalize!r}; expected one of {', '.join(NORMALIZATIONS)}")


class ImageSet:
    """A labelled set of uint8 images over shared, read-only buffers.

    Args:
        images: bytes-like, uint8, ``N*C*H*W`` (``bytes``, or a ``memoryview``
            onto ``multiprocessing.shared_memory``); sample ``j`` is
            ``images[j*C*H*W : (j+1)*C*H*W]``.
        labels: bytes-like, uint8, ``N``.
        shape: ``(C, H, W)`` of one sample.
        num_classes: labels lie in ``0 .. num_classes - 1``.
        name: for messages, e.g. ``"mnist/train"``.
        indices: ``array('I')`` of the buffer positions that form this set, in
            order, or None for all ``N`` in order.
        table: the 256 floats pixels map to (see :func:`make_table`); default ``"unit"``.

    Attributes:
        augment: the :class:`~paracnn.data.augment.Augment` that
            :meth:`train_sample` applies, or None (set it with :meth:`with_augment`).

    Shape:
        ``sample(i)`` gives a flat list of ``C*H*W`` floats, channel-major
        (index ``c*H*W + y*W + x``), and an int label.

    Pickling copies the buffers, which is fine for ``bytes`` but costly for a
    full dataset and impossible for a ``memoryview``. To hand a set to worker
    processes, put its ``images`` and ``labels`` into shared memory, pickle
    ``ds.with_buffers(None, None)`` (a few kB plus the indices) and call
    ``with_buffers(shm_images, shm_labels)`` in the worker.

    Example::

        ds = ImageSet(images, labels, (1, 28, 28), 10, "mnist/train")
        x, y = ds.sample(0)    # 784 floats in [0, 1], and the label
    """

    def __init__(self, images, labels, shape, num_classes, name="", indices=None, table=None):
        self.shape = tuple(shape)
        self.size = self.shape[0] * self.shape[1] * self.shape[2]
        self.num_classes = num_classes
        self.name = name
        self.indices = indices if indices is None or isinstance(indices, array) else array("I", indices)
        self.table = list(table) if table is not None else make_table("unit")
        if len(self.table) != 256:
            raise ValueError(f"{name}: table must hold 256 floats, not {len(self.table)}")
        self.images = self.labels = None
        self.augment = None
        self.count = len(labels)
        self._attach(images, labels)

    def _attach(self, images, labels):
        if images is not None and len(images) != self.count * self.size:
            raise ValueError(f"{self.name}: image buffer holds {len(images)} bytes, expected "
                             f"{self.count} x {self.size}; pass exactly the buffer (slice shared memory)")
        if labels is not None and len(labels) != self.count:
            raise ValueError(f"{self.name}: label buffer holds {len(labels)} bytes, expected {self.count}")
        if self.indices is not None and len(self.indices) and max(self.indices) >= self.count:
            raise ValueError(f"{self.name}: index {max(self.indices)} is past the {self.count} images")
        self.images, self.labels = images, labels

    def __len__(self):
        return self.count if self.indices is None else len(self.indices)

    def __repr__(self):
        return f"ImageSet({self.name!r}, {len(self)} images of {self.shape}, {self.num_classes} classes)"

    def position(self, i):
        """The buffer position of sample ``i`` (negative ``i`` counts from the end)."""
        if self.indices is not None:
            return self.indices[i]
        j = i + self.count if i < 0 else i
        if not 0 <= j < self.count:
            raise IndexError(f"{self.name}: sample {i} is out of range for {self.count} images")
        return j

    def sample(self, i):
        """Sample ``i`` as ``(list of C*H*W floats, label)``."""
        j = self.position(i)
        off = j * self.size
        return list(map(self.table.__getitem__, self.images[off:off + self.size])), self.labels[j]

    def train_sample(self, i, seed, epoch):
        """Sample ``i`` as the training step sees it in ``epoch`` of a run seeded with ``seed``.

        The same as :meth:`sample` unless the set carries an :attr:`augment`;
        then the perturbations of ``(seed, epoch, i)``, the same in any process.
        """
        if self.augment is None:
            return self.sample(i)
        j = self.position(i)
        off = j * self.size
        x = self.augment.apply(self.images[off:off + self.size], self.table, self.shape,
                               augment_seed(seed, epoch, i))
        return x, self.labels[j]

    def with_augment(self, augment):
        """The same set (same buffers) whose :meth:`train_sample` applies ``augment`` (None: none)."""
        new = self._copy(self.images, self.labels, self.indices, self.name)
        new.augment = augment
        return new

    def pixels(self, i):
        """The raw uint8 pixels of sample ``i`` as ``bytes`` (for augmentation)."""
        off = self.position(i) * self.size
        return bytes(self.images[off:off + self.size])

    def label(self, i):
        """The label of sample ``i``."""
        return self.labels[self.position(i)]

    def labels_list(self):
        """All labels, in order, as a list of ints."""
        if self.indices is None:
            return list(self.labels)
        return [self.labels[j] for j in self.indices]

    def subset(self, positions, name=None):
        """A set of samples ``positions`` (of this set) over the same buffers, nothing copied."""
        indices = array("I", map(self.position, positions))
        return self._copy(self.images, self.labels, indices, name or self.name)

    def with_buffers(self, images, labels):
        """The same set over other buffers of the same length (or None to detach them).

        Use it to move a set into shared memory: ``ds.with_buffers(shm_view,
        label_view)`` where the views are exactly ``len(ds.images)`` and
        ``len(ds.labels)`` bytes (shared memory blocks may be rounded up in
        size, so slice them).
        """
        return self._copy(images, labels, self.indices, self.name)

    def _copy(self, images, labels, indices, name):
        new = object.__new__(ImageSet)
        new.__dict__.update(self.__dict__, indices=indices, name=name, images=None, labels=None)
        new._attach(images, labels)
        return new

    def __getstate__(self):
        if isinstance(self.images, memoryview) or isinstance(self.labels, memoryview):
            raise TypeError(f"{self.name}: an ImageSet over memoryviews (shared memory) cannot be "
                            f"pickled; pickle ds.with_buffers(None, None) and re-attach in the worker")
        return self.__dict__
