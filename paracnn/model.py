"""A Sequential model: a list of layers, shape inference, one flat parameter vector.

The trainer moves parameters between processes as **one flat float64 vector**
(``array('d')``), in a fixed order: layers in order, each layer's parameters in
insertion order (``weight`` then ``bias``). ``get_weights``/``set_weights``
and ``get_grads`` convert between that vector and the per-layer lists.

Parameters also have names, as PyTorch's ``nn.Sequential`` of the same layers
names them (``0.weight``, ``3.bias``): :meth:`Sequential.param_layout`,
``state_dict``/``load_state_dict`` and ``named_grads``. To look inside a
trained network one sample at a time, without the trainer: ``logits``,
``probabilities``, ``activations`` (every layer's output) and
``input_gradient`` (a saliency map), from :class:`~paracnn.inspection.Inspection`;
:func:`paracnn.trained.load_model` builds a model from a checkpoint in one call.
"""

import math
import random
from array import array

from .errors import CheckpointError, ConfigError, ModelTooLarge, ParacnnError, PluginFailed, ShapeError
from .budget import OverBudget, OverMemory, ParamBudget
from .inspection import Inspection
from .layer import format_shape
from .loss import softmax_cross_entropy

#: A prime above any layer count: see :func:`layer_seed`.
LAYER_SEED_STRIDE = 1000003


def layer_seed(sample_seed, index):
    """The seed of layer ``index`` while it processes the sample seeded ``sample_seed``.

    A layer that draws random numbers in training (dropout's mask) seeds a
    ``random.Random`` with it. ``sample_seed * LAYER_SEED_STRIDE + index`` gives
    every (sample, layer) pair its own seed, since no model has a million layers,
    and it is plain arithmetic, so every process and backend gets the same masks.
    It fixes every trained weight of a model with dropout: changing it changes them.
    """
    return sample_seed * LAYER_SEED_STRIDE + index


def _built_shape(out, i, type_name):
    """What ``build()`` returned, as a shape tuple; PluginFailed if it is not a tuple or list of ints."""
    if not (isinstance(out, (tuple, list)) and out
            and all(isinstance(d, int) and not isinstance(d, bool) for d in out)):
        raise PluginFailed(f"layers[{i}] {type_name}: build() returned {repr(out)[:60]}, not a shape "
                           f"(a tuple of whole numbers)", key=("layers", i), type_name=type_name)
    return tuple(out)


class Sequential(Inspection):
    """Layers applied one after another to a single sample.

    Args:
        layers: :class:`~paracnn.layer.Layer` instances, not yet built.
        input_shape: the shape of one sample, e.g. ``(1, 28, 28)``.
        types: the registry name of each layer (kept for ``get_config``).

    Example::

        model = Sequential([Flatten(), Dense(units=10)], (1, 28, 28), ["flatten", "dense"])
        model.build(seed=0)
        loss, pred = model.train_sample(x, label=3, seed=0)
    """

    def __init__(self, layers, input_shape, types=None):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        self.types = list(types) if types is not None else [type(l).__name__.lower() for l in self.layers]
        self.shapes = []

    @classmethod
    def from_config(cls, model_cfg, resolve):
        """Build (not yet initialise) from the ``model:`` mapping.

        ``resolve(type_name)`` returns a layer class. Errors carry a key path
        such as ``("layers", 3, "filters")`` that the YAML loader turns into a
        ``FILE:LINE:COL`` position.
        """
        layers, types = [], []
        for i, spec in enumerate(model_cfg["layers"]):
            spec = dict(spec)
            type_name = spec.pop("type")
            layer_cls = resolve(type_name)
            try:
                layers.append(layer_cls.from_config(spec))
            except ConfigError as e:
                path = ("layers", i) + e.key_path
                raise ConfigError(f"layers[{i}] {type_name}: {e.message}", key=path) from None
            types.append(type_name)
        return cls(layers, model_cfg["input_shape"], types)

    def build(self, seed=0, max_params=None, memory=None):
        """Infer every shape and create the parameters; return the output shape.

        Each layer draws from its own ``random.Random`` seeded by (seed, index),
        so adding a layer at the end never changes the weights before it.

        With ``max_params``, a parameter that would take the model past it is
        refused *before* it is allocated: :class:`~paracnn.errors.ModelTooLarge`
        names the layer. With ``memory`` (a :class:`~paracnn.memory.MemoryPlan`),
        so is a layer whose input would take one sample's activations, with the
        parameters and the dataset, past the memory there is.
        """
        with ParamBudget(max_params, memory) as budget:
            return self._build(seed, budget)

    def _build(self, seed, budget):
        shape = self.input_shape
        self.shapes = []
        try:
            budget.take_values(shape)
        except OverMemory as e:
            raise ModelTooLarge(f"the input {format_shape(shape)} is too large: training would need {e}",
                                key=("input_shape",)) from None
        for i, layer in enumerate(self.layers):
            rng = random.Random(f"paracnn-init:{seed}:{i}")
            try:
                shape = _built_shape(layer.build(shape, rng), i, self.types[i])
                budget.take_values(shape)
            except PluginFailed:
                raise
            except ConfigError as e:
                # A composite layer (a residual block) reports the inner path, e.g. ("layers", 1).
                raise type(e)(f"layers[{i}] {self.types[i]} {e.message}",
                              key=("layers", i) + e.key_path) from None
            except OverBudget as e:
                raise ModelTooLarge(
                    f"layers[{i}] {self.types[i]}: the model needs at least {budget.total:,} "
                    f"parameters (this layer's {e.name} {format_shape(e.shape)} alone has "
                    f"{e.count:,}), more than the limit of {budget.limit:,}",
                    key=("layers", i), total=budget.total) from None
            except OverMemory as e:
                raise ModelTooLarge(f"layers[{i}] {self.types[i]}: its output {format_shape(shape)} "
                                    f"is too large: training would need {e}", key=("layers", i)) from None
            except ParacnnError:
                raise
            except (Exception, SystemExit) as e:  # a plugin's build() may fail in any way
                raise PluginFailed(f"layers[{i}] {self.types[i]}: build() raised {type(e).__name__}: {e}",
                                   key=("layers", i), type_name=self.types[i]) from e
            if any(s <= 0 for s in shape):
                raise ShapeError(f"layers[{i}] {self.types[i]} would produce an empty output "
                                 f"{format_shape(shape)}; its input is too small",
                                 key=("layers", i))
            self.shapes.append(shape)
        if self.layers:
            # The first layer's dx is never used; conv layers skip computing it.
            self.layers[0].needs_input_grad = False
        return shape

    @property
    def output_shape(self):
        return self.shapes[-1] if self.shapes else self.input_shape

    # -- one sample ------------------------------------------------------------
    def forward(self, x, training=False, seed=None):
        for i, layer in enumerate(self.layers):
            layer.training = training
            layer.seed = None if seed is None else layer_seed(seed, i)
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def train_sample(self, x, label, seed=0):
        """Forward, loss and backward for one sample; gradients are *added*.

        Returns ``(loss, predicted_class)``.
        """
        logits = self.forward(x, training=True, seed=seed)
        loss, dlogits = softmax_cross_entropy(logits, label)
        self.backward(dlogits)
        return loss, logits.index(max(logits))

    def predict(self, x):
        """Logits for one sample in inference mode."""
        return self.forward(x, training=False)

    # -- parameters by name ------------------------------------------------------
    def param_layout(self):
        """``[(name, shape), ...]`` in vector order; names as PyTorch's ``nn.Sequential`` gives them.

        ``"0.weight"`` is layer 0's weight; a composite layer's inner
        parameters keep its own prefix (``"3.layers.0.weight"``).
        """
        return [(f"{i}.{name}", tuple(layer.param_shapes[name]))
                for i, layer in enumerate(self.layers) for name in layer.params]

    def state_dict(self):
        """``{name: flat list}`` of every parameter (copies), names as in :meth:`param_layout`."""
        return {f"{i}.{name}": list(p) for i, name, p in self.named_params()}

    def named_grads(self):
        """``{name: flat list}`` of every accumulated gradient, deferred work included."""
        out = {}
        for i, layer in enumerate(self.layers):
            layer.sync_grads()
            for name, g in layer.grads.items():
                out[f"{i}.{name}"] = list(g)
        return out

    def load_state_dict(self, state):
        """Set every parameter from ``{name: flat list}``; names and sizes must match exactly."""
        layout = self.param_layout()
        missing = [name for name, _ in layout if name not in state]
        extra = [name for name in state if name not in dict(layout)]
        if missing or extra:
            raise CheckpointError(f"the weights do not fit the model: missing {missing or 'none'}, "
                                  f"unexpected {extra or 'none'}")
        flat = []
        for name, shape in layout:
            values = state[name]
            if len(values) != math.prod(shape):
                raise CheckpointError(f"{name} holds {len(values)} values but the model's {name} "
                                      f"{format_shape(shape)} needs {math.prod(shape)}")
            flat.extend(values)
        self.set_weights(flat)

    # -- the flat parameter vector ---------------------------------------------
    def named_params(self):
        """``(layer_index, name, list)`` for every parameter, in vector order."""
        return [(i, name, p) for i, layer in enumerate(self.layers) for name, p in layer.params.items()]

    def num_params(self):
        return sum(layer.num_params() for layer in self.layers)

    def get_weights(self):
        out = array("d")
        for _, _, p in self.named_params():
            out.extend(p)
        return out

    def set_weights(self, flat):
        """Load the flat vector ``flat`` (any sequence or buffer of doubles)."""
        if len(flat) != self.num_params():
            raise ValueError(f"expected {self.num_params()} weights, got {len(flat)}")
        pos = 0
        for layer in self.layers:
            for name, p in layer.params.items():
                n = len(p)
                layer.params[name] = list(flat[pos:pos + n])
                pos += n

    def get_grads(self):
        out = array("d")
        for layer in self.layers:
            layer.sync_grads()
            for g in layer.grads.values():
                out.extend(g)
        return out

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    # -- description -----------------------------------------------------------
    def summary(self):
        """One dict per layer: index, type, output_shape, params, macs."""
        return [{"index": i, "type": self.types[i], "output_shape": list(self.shapes[i]),
                 "params": layer.num_params(), "macs": layer.macs()}
                for i, layer in enumerate(self.layers)]

    def get_config(self):
        return {"input_shape": list(self.input_shape),
                "layers": [{"type": t, **layer.get_config()} for t, layer in zip(self.types, self.layers)]}
