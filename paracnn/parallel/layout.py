"""Where the engine's vectors sit in its two buffers, for the parent and every worker alike.

The **state** buffer holds two vectors of ``P`` doubles for the weights and two
for each per-element buffer of the optimiser (``buffer_names``: none for plain
SGD, the momentum for SGD with momentum, ``exp_avg`` and ``exp_avg_sq`` for Adam)::

    [weights, version even][weights, version odd][buffer 0, even][buffer 0, odd]...

(double-buffered: step ``v`` reads buffer ``v % 2`` and writes the other).
The **gradient** buffer holds one vector per gradient slot, then the mean
gradient, then the running prefix sums of the first slots::

    [slot 0][slot 1]...[slot S-1][mean][prefix]

With workers both are shared-memory blocks, attached by name in each worker;
in-process (and on the Ray driver) they are private byte arrays. Either way
:meth:`SharedLayout.compute` gives the same :class:`~paracnn.parallel.tasks.Compute`
over them, and :meth:`SharedLayout.release` lets its views go.
"""

from array import array

from .doubles import Doubles
from .shm import double_view
from .tasks import Compute

#: vectors in the state buffer per vector of state (the weights, each optimiser buffer): two versions.
VERSIONS = 2

#: vectors after the gradient slots: the mean gradient, then the prefix sums.
EXTRA_GRAD_VECTORS = 2

#: bytes per float64.
DOUBLE = 8


class SharedLayout:
    """The sizes and offsets of the state and gradient buffers of a model with ``num_params`` weights.

    Args:
        num_params: ``P``, the length of the flat parameter vector.
        slots: gradient slots, one per micro-batch of the largest step.
        buffers: the optimiser's per-element buffers (``len(optimizer.buffer_names)``).
    """

    def __init__(self, num_params, slots, buffers=0):
        self.num_params, self.slots, self.buffers = num_params, slots, buffers
        self.state_bytes = DOUBLE * VERSIONS * (1 + buffers) * num_params
        self.grads_bytes = DOUBLE * num_params * (slots + EXTRA_GRAD_VECTORS)

    def compute(self, model, state_buf, grads_buf, datasets, optimizer):
        """A :class:`Compute` whose views lie over ``state_buf`` and ``grads_buf`` (any buffers
        of at least :attr:`state_bytes` and :attr:`grads_bytes`)."""
        p, s = self.num_params, self.slots
        state = double_view(memoryview(state_buf)[:self.state_bytes])
        grads = double_view(memoryview(grads_buf)[:self.grads_bytes])
        return Compute(model, state, grads[:p * s], datasets, optimizer,
                       mean=grads[p * s:p * (s + 1)], prefix=grads[p * (s + 1):p * (s + 2)])

    def private_compute(self, model, datasets, optimizer):
        """A :class:`Compute` over fresh zeroed buffers of this process (no workers)."""
        return self.compute(model, bytearray(self.state_bytes), bytearray(self.grads_bytes),
                            datasets, optimizer)

    @staticmethod
    def release(compute):
        """Release every view ``compute`` holds, its datasets' included, and forget the datasets.

        NOTE: views must go before their shared blocks close, or
        ``SharedMemory.__del__`` complains at exit.
        """
        views = [compute.state, compute.grads, compute.mean, compute.prefix]
        for ds in compute.datasets.values():
            views += [ds.images, ds.labels]
        compute.datasets = {}
        for view in views:
            if isinstance(view, (memoryview, Doubles)):
                view.release()


def as_doubles(values, count, what):
    """``values`` as something a ``'d'`` memoryview slice accepts, checked for length."""
    if isinstance(values, (bytes, bytearray)):
        values = memoryview(values).cast("d")
    elif not isinstance(values, (array, memoryview)):
        values = array("d", values)
    if len(values) != count:
        raise ValueError(f"{what} holds {len(values)} values, the model has {count}")
    return values
