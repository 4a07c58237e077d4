"""How much memory training a model takes, and how much the machine has.

When ``train.max_params`` is not set, :meth:`~paracnn.config.Config.build_model`
builds the model with :func:`default_max_params` as its limit: a parameter
that would not fit is refused before it is allocated, and the error says how
many GB training would take and how many are available.

The parameters are not all: one sample's activations live in every process
that trains, and the dataset in the parent. A :class:`MemoryPlan` adds the
three up from the shapes alone while the model builds (it rides along with
the parameter budget, :class:`paracnn.budget.ParamBudget`), so a ``1x20000x20000``
input or ten billion synthetic samples are refused, with the figure, before
anything of that size is allocated.
"""

from dataclasses import dataclass

from .limits import MEMORY_SHARE

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


#: float lists per activation value alive in each process while it trains a sample: the output
#: a layer keeps for backward, its gradient, and the index plans conv and pool layers build
#: over their positions (``kernels.window_table``).
ACTIVATION_VECTORS = 4
#: bytes per sample of a dataset beyond its pixels (its label, and the list that shuffles it).
SAMPLE_OVERHEAD = 16


def training_bytes(num_params, workers=0, buffers=1):
    """Roughly the memory training ``num_params`` parameters takes, in bytes.

    ``buffers``: the optimiser's per-parameter buffers (0 or 1 for SGD, 2 for Adam).
    """
    parent = PARENT_VECTORS + BUFFER_VECTORS * max(0, buffers - 1)
    return int(num_params * FLOAT_BYTES * (parent + WORKER_VECTORS * workers))


def available_memory():
    """Bytes of memory available now: psutil's figure, or the cgroup's limit or the address-space
    limit (``ulimit -v``, ``prlimit --as``) left to this process, whichever is lowest."""
    import psutil  # NOTE: only the parent sizes models; workers never import it for this.

    available = psutil.virtual_memory().available
    try:
        import resource  # NOTE: POSIX only
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            available = min(available, max(0, soft - psutil.Process().memory_info().vms))
    except (ImportError, OSError, ValueError):
        pass
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


def activation_bytes(values, workers=0):
    """Roughly the memory ``values`` activations of one sample take in all the processes that train."""
    return int(values * FLOAT_BYTES * ACTIVATION_VECTORS * (1 + workers))


def dataset_bytes(samples, pixels):
    """Roughly the memory ``samples`` uint8 images of ``pixels`` each take while loaded (two copies)."""
    return int(samples * (2 * pixels + SAMPLE_OVERHEAD))


@dataclass
class MemoryPlan:
    """What a config would need in memory, added up from shapes before anything is allocated.

    Attributes:
        available: the bytes it may use (:data:`~paracnn.limits.MEMORY_SHARE` of what is free).
        workers: worker processes, each holding one sample's activations.
        buffers: the optimiser's per-parameter buffers.
        dataset: bytes of the dataset (:func:`dataset_bytes`).
        count_params: False when ``train.max_params`` holds the parameters instead.
    """

    available: int
    workers: int = 0
    buffers: int = 1
    dataset: int = 0
    count_params: bool = True

    @classmethod
    def for_machine(cls, **kwargs):
        return cls(int(available_memory() * MEMORY_SHARE), **kwargs)

    def need(self, params, values):
        """Bytes for ``params`` parameters, ``values`` activations per sample and the dataset."""
        return (training_bytes(params, self.workers, self.buffers) * self.count_params
                + activation_bytes(values, self.workers) + self.dataset)

    def fits(self, params, values):
        return self.need(params, values) <= self.available

    def describe(self, params, values):
        """``about 51.2 GB (... for ...) but 3.1 GB may be used``: the figure of a refusal."""
        processes = 1 + self.workers
        where = "in 1 process" if processes == 1 else f"in each of {processes} processes"
        parts = [(training_bytes(params, self.workers, self.buffers) * self.count_params,
                  f"{params:,} parameters"),
                 (activation_bytes(values, self.workers), f"one sample's {values:,} activations {where}"),
                 (self.dataset, "the dataset")]
        detail = ", ".join(f"{gb(n)} GB for {what}" for n, what in parts if n)
        return (f"about {gb(self.need(params, values))} GB ({detail}) but {gb(self.available)} GB of "
                f"memory may be used ({MEMORY_SHARE:.0%} of what is available)")


def gb(nbytes):
    """``nbytes`` in GB with one decimal, e.g. ``1,638,400.0``."""
    return f"{nbytes / 1e9:,.1f}"
