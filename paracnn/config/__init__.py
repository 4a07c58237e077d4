"""Configs: YAML with ``FILE:LINE:COL`` errors, a strict schema, and ``--set`` overrides.

A config has three sections (``docs/config.md`` documents every key)::

    model: {input_shape: [1, 28, 28], layers: [{type: conv2d, filters: 6, kernel_size: 5}, ...]}
    data:  {dataset: mnist, ...}
    train: {epochs: 1, lr: 0.05, ...}

Loading keeps the position of every mapping key and list item, so any
:class:`~paracnn.errors.ConfigError` (whose ``key`` is a path such as
``("model", "layers", 3, "filters")``) is reported as one line starting
``FILE:LINE:COL:``. Values set with ``--set`` are reported against the
override instead (``--set train.lr=abc: ...``).

The YAML is read safely: plain tags only, and aliases may not expand the
document past :data:`MAX_NODES` values (no "billion laughs").

Example::

    config = load_config("configs/lenet.yaml", overrides=["train.lr=0.01"])
    model = config.build_model()        # shapes inferred, parameters created

The package, in the order a config passes through it:

- :mod:`.yamlpos`: safe YAML reading with positions, and the size, depth and alias limits;
- :mod:`.overrides`: ``--set`` parsing and application;
- :mod:`.schema`: the sections, their defaults and value rules (:mod:`.model_schema` for
  ``model:``, :mod:`.checks` for the small checks they share);
- :mod:`.loaded`: :class:`Config`, :func:`load_config` and :func:`config_from_dict`.
"""

from .loaded import Config, config_from_dict, load_config
from .model_schema import MODEL_KEYS
from .overrides import Override, apply_override, parse_override
from .schema import (DATA_DEFAULTS, DATA_RULES, DATASET_IMAGES, SCHEDULE_RULES, SCHEDULES, SECTIONS,
                     START_METHODS, SYNTHETIC_RULES, TRAIN_DEFAULTS, TRAIN_RULES, data_defaults)
from .yamlpos import MAX_BYTES, MAX_DEPTH, MAX_NODES, parse_yaml

__all__ = [
    "Config", "load_config", "config_from_dict",
    "Override", "parse_override", "apply_override",
    "parse_yaml", "MAX_NODES", "MAX_DEPTH", "MAX_BYTES",
    "SECTIONS", "MODEL_KEYS", "TRAIN_DEFAULTS", "DATA_DEFAULTS", "data_defaults",
    "DATASET_IMAGES", "START_METHODS", "SCHEDULES",
    "TRAIN_RULES", "SCHEDULE_RULES", "DATA_RULES", "SYNTHETIC_RULES",
]
