"""Looking at a trained network from the outside: ``paracnn plot``, ``predict`` and ``export``.

Nothing here is part of the compute core: these modules use the optional
extras (matplotlib, Pillow, safetensors), always imported lazily through
:func:`~paracnn.tools.extras.require`, so a missing one is one line naming
its ``pip install`` command. In the order a user meets them:

- :mod:`.predict` and :mod:`.preprocess`: a photo or scan of a digit, prepared the way
  MNIST was made, and the top-K classes;
- :mod:`.plot`: the figures of a run (:mod:`.curves` for training curves and the
  confusion matrix, :mod:`.inside` for filters, feature maps, saliency and
  prediction grids) and :mod:`.report`, the one-file HTML page;
- :mod:`.export`: the weights as a safetensors file named like PyTorch's ``nn.Sequential``.

The model-side API they rely on (logits, activations, input gradients,
parameters by name, :func:`paracnn.trained.load_model`) is standard library
only and usable on its own.
"""
