"""paracnn-extras: example plugin layers for paracnn.

Nothing here needs importing by hand: paracnn finds the layers through the
``paracnn.layers`` entry points in ``pyproject.toml`` and imports a module the
first time a config names its layer.

==================  ==========================================================
``leaky_relu``      ``max(x, 0) + alpha·min(x, 0)``
``prelu``           leaky ReLU with a learnable slope per channel (PyTorch PReLU)
``pointwise_conv``  1×1 convolution: mixes channels at every position
``residual``        ``y = layers(x) + x``, with a learnable 1×1 projection if needed
==================  ==========================================================
"""

__version__ = "0.1.0"
