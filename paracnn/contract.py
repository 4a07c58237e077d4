"""The layer contract: three cheap checks that every layer of a built model must pass.

A layer that breaks the protocol does not crash: the model truncates a short
``dx`` in the next ``zip``, and gradients that are assigned instead of added
look right for one sample. Training then goes on with wrong gradients. So
``paracnn check`` runs these checks on every layer, built-in or plugin, and
training runs them once, in the parent, on its first training sample, before
the first step:

1. ``forward`` returns as many values as the shape the model inferred for the layer;
2. ``backward`` returns ``dx`` with as many values as the layer's input (the
   first layer may return None: the model tells it that its ``dx`` is unused);
3. ``backward`` adds into ``grads``: a second call with the same ``dy`` doubles them.

They cost a copy of the model and two forward and backward passes of one
sample per layer (about five training samples' worth: 0.3 s for LeNet-5, see
``scripts/bench_contract.py``) and no finite differences, so they cannot tell a
wrong gradient from a right one of the right length:
:func:`paracnn.testing.check_layer` does that, and the error message gives the
call that finds the bug. :func:`paracnn.testing.check_layer` reports its own
failures with the same words (the ``*_problem`` functions below).

Example::

    from paracnn.contract import check_model_contract
    check_model_contract(model, x, config=config)  # LayerContractError naming FILE:LINE:COL
"""

import math
import pickle
import random
from dataclasses import dataclass
from itertools import repeat
from operator import mul

from .errors import LayerContractError, TaskError
from .layer import format_shape
from .model import layer_seed


@dataclass
class ContractReport:
    """What :func:`check_model_contract` checked: layers, and parameter tensors whose accumulation it saw."""

    layers: int
    tensors: int

    def __str__(self):
        return (f"{self.layers} layers: output and dx lengths, gradient accumulation "
                f"of {self.tensors} parameter tensors")


def check_model_contract(model, x, *, seed=0, config=None):
    """Check every layer of the built ``model`` on the sample ``x``; return a :class:`ContractReport`.

    The checks run on a copy of the model (a pickle round trip, as workers get
    it), so its weights, gradients and per-sample state stay as they were; the
    random draws come from a private ``random.Random(seed)``.

    Args:
        model: a built :class:`~paracnn.model.Sequential`.
        x: one input sample, a flat list of ``prod(model.input_shape)`` floats.
        seed: seeds the upstream gradients and each layer's ``seed`` (dropout masks).
        config: the :class:`~paracnn.config.Config` the model was built from;
            failures then start with the layer's ``FILE:LINE:COL``.

    Raises:
        LayerContractError: names the layer (``layers[i] type``), what it
            broke, and the ``check_layer`` call that finds the bug.
        TaskError: a layer raised; named as a training step names it.
    """
    n = math.prod(model.input_shape)
    if len(x) != n:
        raise ValueError(f"x holds {len(x)} values but the model's input "
                         f"{format_shape(model.input_shape)} needs {n}")
    copy = _private_copy(model)
    rng = random.Random(seed)
    tensors = 0
    x = list(x)
    for i, layer in enumerate(copy.layers):
        layer.training, layer.seed = True, layer_seed(seed, i)
        try:
            problem, y, checked = _check_layer(layer, x, copy.shapes[i], rng)
        except Exception as e:  # noqa: BLE001 - reported as the training step reports it
            from .parallel.worker import describe_failure
            raise TaskError(describe_failure(e, copy)) from e
        if problem:
            raise _failure(model, i, problem, config) from None
        tensors += checked
        x = y
    return ContractReport(len(copy.layers), tensors)


def _check_layer(layer, x, shape, rng):
    """``(problem or None, the layer's output, parameter tensors checked)`` for one layer."""
    y = layer.forward(list(x))
    problem = output_length_problem(shape, y)
    if problem:
        return problem, y, 0
    dy = [rng.uniform(-1.0, 1.0) for _ in range(len(y))]
    layer.zero_grad()
    dx = layer.backward(list(dy))
    layer.sync_grads()
    if layer.needs_input_grad:
        problem = dx_problem(len(x), dx)
        if problem:
            return problem, y, 0
    first = {name: list(g) for name, g in layer.grads.items()}
    return accumulation_problem(layer, x, dy, first), y, len(first)


# -- what check_layer and check_model_contract both check -------------------------------------

def rel_error(a, b, floor=1e-8):
    """|a - b| relative to the larger magnitude; absolute below ``floor``."""
    return abs(a - b) / max(abs(a), abs(b), floor)


def output_length_problem(shape, y):
    """Why ``y``, a forward output, does not fit ``shape`` (what ``build`` returned), or None."""
    n = math.prod(shape)
    got = None if y is None else len(y)
    if got == n:
        return None
    return f"build() says {format_shape(shape)} ({n} values) but forward() returned {got}"


def dx_problem(n_inputs, dx):
    """Why ``dx`` is not the gradient of ``n_inputs`` input values, or None."""
    if dx is not None and len(dx) == n_inputs:
        return None
    return f"backward() must return dx with {n_inputs} values (got {None if dx is None else len(dx)})"


def accumulation_problem(layer, x, dy, first):
    """Run forward and backward on ``x``, ``dy`` again: why ``grads`` did not double, or None.

    ``first`` holds the gradients after one backward (from zero). Leaves the
    layer's gradients at zero.
    """
    layer.forward(list(x))
    layer.backward(list(dy))
    layer.sync_grads()
    try:
        for name, g in layer.grads.items():
            if list(map(mul, first[name], repeat(2.0))) == list(g):
                continue  # NOTE: x + x == 2x exactly, so the element-wise scan below is rarely needed
            for i, (once, twice) in enumerate(zip(first[name], g)):
                if rel_error(2.0 * once, twice, 1e-12) > 1e-9:
                    return (f"backward() must add into grads['{name}'], not overwrite it "
                            f"(element {i}: {once!r} after one call, {twice!r} after two)")
        return None
    finally:
        layer.zero_grad()


# -- helpers -------------------------------------------------------------------------------------

def _private_copy(model):
    """The model as a worker would receive it; the model itself when it cannot be pickled.

    (Unpicklable layers train only in-process, where checking the model itself
    changes nothing but per-sample state and zeroed gradients.)
    """
    try:
        return pickle.loads(pickle.dumps(model))
    except Exception:  # noqa: BLE001 - any pickling failure: check in place
        return model


def _failure(model, i, problem, config):
    name = model.types[i]
    layer = model.layers[i]
    try:
        layer_config = layer.get_config()
    except Exception:  # noqa: BLE001 - the hint must not hide the failure
        layer_config = {}
    in_shape = model.input_shape if i == 0 else model.shapes[i - 1]
    error = LayerContractError(
        f"layers[{i}] {name} breaks the layer contract: {problem}; training would use wrong "
        f"gradients. Find the bug with paracnn.testing.check_layer({name!r}, {layer_config!r}, "
        f"input_shape={tuple(in_shape)!r})", key=("model", "layers", i))
    return config.locate(error) if config is not None else error


__all__ = ["check_model_contract", "ContractReport", "output_length_problem", "dx_problem",
           "accumulation_problem", "rel_error"]
