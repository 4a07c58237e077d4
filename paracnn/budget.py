"""The parameter budget: how many parameters a model being built may still create.

``Sequential.build`` opens a :class:`ParamBudget` around the build, and
:meth:`paracnn.layer.Layer.add_param` charges every parameter to it with
:func:`charge` before allocating, so a model too large for memory is refused
before the first oversized list is made (``train.max_params``). The model
charges each layer's input shape too (:meth:`ParamBudget.take_values`): with a
:class:`~paracnn.memory.MemoryPlan`, parameters, activations and the dataset
are held together to the memory there is.
"""

import contextvars
import math

# The budget in force while a model builds. A context variable rather than an
# argument of ``build``, so the ``build(input_shape, rng)`` protocol stays as
# plugins know it, and the inner layers of a composite layer (residual) are
# charged too. Only this module reads or sets it.
_current = contextvars.ContextVar("paracnn_param_budget", default=None)


class ParamBudget:
    """The running parameter count of a model being built, and the most it may reach.

    A context manager: every :func:`charge` inside the ``with`` block counts.

    Args:
        limit: the most parameters the model may have; None counts without a limit.
        plan: a :class:`~paracnn.memory.MemoryPlan` that the parameters and the activations of
            one sample must fit together, or None.

    Example::

        with ParamBudget(1_000_000) as budget:
            model.build()      # a parameter past the limit raises OverBudget
        budget.total           # the parameters created
    """

    def __init__(self, limit, plan=None):
        self.limit, self.total = limit, 0
        self.plan, self.values = plan, 0
        self._token = None

    def __enter__(self):
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc):
        _current.reset(self._token)
        self._token = None

    def take(self, name, shape):
        n = math.prod(shape)
        self.total += n
        if self.limit is not None and self.total > self.limit:
            raise OverBudget(name, tuple(shape), n)
        self._check_memory()

    def take_values(self, shape):
        """Count an activation of ``shape`` (one sample's, kept while training) against the plan."""
        self.values += math.prod(shape)
        self._check_memory()

    def _check_memory(self):
        if self.plan is not None and not self.plan.fits(self.total, self.values):
            raise OverMemory(self.plan.describe(self.total, self.values))


class OverBudget(Exception):
    """Raised by ``add_param`` past the budget; the model turns it into ModelTooLarge."""

    def __init__(self, name, shape, count):
        super().__init__(name, shape, count)
        self.name, self.shape, self.count = name, shape, count


class OverMemory(Exception):
    """Raised past the memory plan; the model turns it into ModelTooLarge. ``str()`` is the figure."""


def charge(name, shape):
    """Count parameter ``name`` of ``shape`` against the budget in force, if there is one."""
    budget = _current.get()
    if budget is not None:
        budget.take(name, shape)
