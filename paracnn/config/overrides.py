"""``--set KEY=VALUE`` overrides: dotted keys, YAML values, errors that cite the ``--set``.

An override records the shortest path it created, so a later error inside
that path is reported against ``--set train.lr=abc`` rather than the file.
"""

import copy
import re
from dataclasses import dataclass

from ..errors import ConfigError
from .checks import dotted, unknown_key_message
from .schema import SECTIONS
from .yamlpos import parse_yaml


@dataclass
class Override:
    """``train.lr=0.01``: ``path`` ``("train", "lr")`` gets ``value``; errors cite ``label``."""

    label: str
    path: tuple
    value: object
    created: tuple = None  # the shortest path this override put in place


def parse_override(text, label=None):
    """Parse ``a.b[0].c=VALUE`` (VALUE is read as YAML) into an :class:`Override`."""
    label = label or f"--set {text}"
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("expected KEY=VALUE, for example train.lr=0.01", where=label)
    path = []
    for part in key.strip().split("."):
        m = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part)
        if not m or not (m.group(1) or m.group(2)):
            raise ConfigError(f"bad key '{key}'; write dotted names such as train.lr or "
                              f"model.layers.0.filters", where=label)
        if m.group(1):
            path.append(int(m.group(1)) if m.group(1).isdigit() else m.group(1))
        path.extend(int(i) for i in re.findall(r"\d+", m.group(2)))
    try:
        parsed, _ = parse_yaml(value, "value")
    except ConfigError as e:
        raise ConfigError(f"the value is not valid YAML: {e.message}", where=label) from None
    return Override(label, tuple(path), parsed)


def apply_override(raw, ov):
    """Set ``ov.value`` at ``ov.path`` in ``raw``, creating missing mappings."""
    node = raw
    for depth, step in enumerate(ov.path):
        here = dotted(ov.path[:depth]) or "the config"
        last = depth == len(ov.path) - 1
        if isinstance(node, list):
            if not isinstance(step, int):
                raise ConfigError(f"{here} is a list; index it with a number such as "
                                  f"{dotted(ov.path[:depth] + (0,))}", where=ov.label)
            if not 0 <= step < len(node):
                raise ConfigError(f"{here} has {len(node)} items, so index {step} is out of range",
                                  where=ov.label)
        elif isinstance(node, dict):
            if isinstance(step, int):
                raise ConfigError(f"{here} is a mapping, not a list", where=ov.label)
            if depth == 0 and step not in SECTIONS:
                raise ConfigError(unknown_key_message(step, SECTIONS, "the config"), where=ov.label)
            if step not in node:
                ov.created = ov.created or ov.path[:depth + 1]
                node[step] = {}
        else:
            raise ConfigError(f"{here} is {node!r}, which has no key '{step}'", where=ov.label)
        if last:
            node[step] = copy.deepcopy(ov.value)
            ov.created = ov.created or ov.path
        node = node[step]
    return raw
