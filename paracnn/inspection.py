"""Looking inside a model one sample at a time, without the trainer.

:class:`Inspection` gives :class:`~paracnn.model.Sequential` its ``logits``,
``probabilities``, ``activations`` (every layer's output, as
:class:`Activation`) and ``input_gradient`` (a saliency map). It needs only
the model's ``layers``, ``types``, ``shapes``, ``forward`` and ``backward``;
:func:`paracnn.trained.load_model` builds a model from a checkpoint in one call.
"""

from dataclasses import dataclass

from .loss import softmax


@dataclass
class Activation:
    """The output of one layer for one sample (see :meth:`Sequential.activations`).

    Attributes:
        index: the layer's position in the model (as in ``layers[i]`` of the config).
        type: the layer's registry name, e.g. ``"conv2d"``.
        shape: the output shape, without the batch dimension, e.g. ``(6, 24, 24)``.
        values: the output as a flat list, channel-major.
    """

    index: int
    type: str
    shape: tuple
    values: list


class Inspection:
    """The looking-inside methods of :class:`~paracnn.model.Sequential` (one sample, inference mode)."""

    def logits(self, x):
        """The logits of one sample ``x`` (a flat list), in inference mode."""
        return self.forward(list(x), training=False)

    def probabilities(self, x):
        """The softmax probabilities of one sample, in inference mode."""
        return softmax(self.logits(x))

    def activations(self, x):
        """Every layer's output for one sample, in inference mode: a list of :class:`Activation`.

        The last one holds the logits.
        """
        out, h = [], list(x)
        for i, layer in enumerate(self.layers):
            layer.training, layer.seed = False, None
            h = layer.forward(h)
            out.append(Activation(i, self.types[i], tuple(self.shapes[i]), list(h)))
        return out

    def input_gradient(self, x, class_index=None):
        """d logit[class_index] / dx for one sample, in inference mode (a saliency map).

        ``class_index`` None takes the predicted class. The parameter
        gradients are left exactly as they were: what they held before is put
        back, deferred work included.

        Returns ``(gradient, logits)``: the gradient is a flat list shaped like ``x``.
        """
        saved = self._save_grads()
        first = self.layers[0]
        needed = first.needs_input_grad
        first.needs_input_grad = True  # NOTE: build() turns it off; training never needs dx.
        try:
            logits = self.logits(x)
            if class_index is None:
                class_index = logits.index(max(logits))
            if not 0 <= class_index < len(logits):
                raise ValueError(f"class_index {class_index} is out of range for "
                                 f"{len(logits)} classes")
            dy = [0.0] * len(logits)
            dy[class_index] = 1.0
            grad = self.backward(dy)
        finally:
            first.needs_input_grad = needed
            self._restore_grads(saved)
        return grad, logits

    def _save_grads(self):
        for layer in self.layers:
            layer.sync_grads()
        return [{name: list(g) for name, g in layer.grads.items()} for layer in self.layers]

    def _restore_grads(self, saved):
        for layer, grads in zip(self.layers, saved):
            layer.zero_grad()
            for name, g in grads.items():
                layer.grads[name] = g
