"""How much memory training a model takes, and how much the machine has.

When ``train.max_params`` is not set, :meth:`~paracnn.config.Config.build_model`
builds the model with :func:`default_max_params` as its limit: a parameter
that would not fit is refused before it is allocated, and the error says how
many GB training would take and how many are available.
"""

#: bytes one parameter value costs in a Python float list: an 8-byte slot and a 24-byte float.
FLOAT_BYTES = 32
#: parameter-sized float lists alive while training: about eight in the parent (the model's
#: weights and gradients; the gradient, momentum and weight lists of an in-process update; and
#: the float64 arrays of the engine, 8 bytes a value: two weight and two momentum vectors and,
#: for 8 micro-batches, ten gradient vectors) and two in each worker (its model's weights and
#: gradients).
PARENT_VECTORS, WORKER_VECTORS = 8, 2
#: what each optimiser buffer past the first (Adam's second moment) adds in the parent: its list in
#: an in-process update and its two float64 versions in the engine.
BUFFER_VECTORS = 1.5


def training_bytes(num_params, workers=0, buffers=1):
    """Roughly the memory training ``num_params`` parameters takes, in bytes.

    ``buffers``: the optimiser's per-parameter buffers (0 or 1 for SGD, 2 for Adam).
    """
    parent = PARENT_VECTORS + BUFFER_VECTORS * max(0, buffers - 1)
    return int(num_params * FLOAT_BYTES * (parent + WORKER_VECTORS * workers))


def available_memory():
    """Bytes of memory available now: psutil's figure, or the cgroup's limit if lower."""
    import psutil  # NOTE: only the parent sizes models; workers never import it for this.

    available = psutil.virtual_memory().available
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read())
        if limit != "max":
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return available


def default_max_params(workers=0, buffers=1):
    """The most parameters that :func:`training_bytes` fits into :func:`available_memory`."""
    return max(1, available_memory() // training_bytes(1, workers, buffers))
