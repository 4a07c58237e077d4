"""Broken layers and the small config they are dropped into, shared by the fault tests."""

#: A tiny model on synthetic data whose ``layers[3]`` (line 9, column 7) is ``{LAYER}``: each
#: test puts the layer under test there, so every error it causes names that line.
LAYER_AT_LINE_9 = """\
model:
  input_shape: [1, 6, 6]
  layers:
    - type: conv2d
      filters: 2
      kernel_size: 3
    - type: relu
    - type: flatten
    - {LAYER}
    - type: dense
      units: 3
data:
  dataset: synthetic
  synthetic: {image_shape: [1, 6, 6], num_classes: 3, train_size: 16, test_size: 8}
train:
  epochs: 1
  batch_size: 8
"""


def config_with(layer, text=LAYER_AT_LINE_9):
    """``text`` with ``layer`` (e.g. ``"type: scale"``) as ``layers[3]``."""
    return text.replace("{LAYER}", layer)
