"""Safe YAML reading that remembers where every key and list item was written.

:func:`parse_yaml` returns plain dicts and lists plus ``{path: (line, col)}``,
so a later error about ``("model", "layers", 3)`` can cite ``FILE:LINE:COL``.

Only plain tags are allowed, and the document is refused when it is larger
than :data:`MAX_BYTES`, nested deeper than :data:`MAX_DEPTH`, expands through
aliases or ``<<`` merge keys past :data:`MAX_NODES` values (no "billion
laughs"), or writes an integer of more than :data:`MAX_INT_DIGITS` digits.
The bounds live in :mod:`paracnn.limits`; :func:`check_plain_data` holds a
config that did not come from YAML (a checkpoint's) to the same depth and size.
"""

import re

import yaml

from ..errors import ConfigError
from ..limits import MAX_CONFIG_BYTES as MAX_BYTES
from ..limits import MAX_CONFIG_DEPTH as MAX_DEPTH
from ..limits import MAX_CONFIG_NODES as MAX_NODES
from ..limits import MAX_INT_DIGITS

_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float, as YAML 1.2 does (1.1 says string)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


class _Builder:
    """Plain dicts and lists from a composed YAML node graph, recording positions."""

    def __init__(self, name):
        self.name, self.marks, self.count, self.active = name, {}, 0, set()
        self.scalars = _Loader("")

    def error(self, node, message):
        return ConfigError(message, where=_where(self.name, node.start_mark))

    def charge(self, node):
        """Count one value built (or one key merged) against :data:`MAX_NODES`."""
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(node, f"the config expands to more than {MAX_NODES} values through "
                                   f"aliases (&anchor/*alias) or merge keys (<<); refusing it")

    def build(self, node, path):
        self.charge(node)
        if len(path) > MAX_DEPTH:
            raise self.error(node, f"the config is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            raise self.error(node, "an alias refers to the mapping or list that contains it")
        if node.tag not in (_MAP, _SEQ):
            raise self.error(node, f"tag '{node.tag}' is not allowed; configs use plain YAML only")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.marks[path + (i,)] = _pos(item)
                    out.append(self.build(item, path + (i,)))
                return out
            out = {}
            for knode, vnode in self.pairs(node):
                key = self.build(knode, path + ("<key>",))
                if not isinstance(key, str):
                    raise self.error(knode, f"keys must be names, got {key!r}; quote it if you meant "
                                            f"the text '{knode.value}'")
                if key in out:
                    first = self.marks[path + (key,)][0]
                    raise self.error(knode, f"duplicate key '{key}' (first given on line {first})")
                self.marks[path + (key,)] = _pos(knode)
                out[key] = self.build(vnode, path + (key,))
            return out
        finally:
            self.active.discard(id(node))

    def scalar(self, node):
        if node.tag == _INT and len(node.value) > MAX_INT_DIGITS:
            # NOTE: converting is quadratic in the digits (CPython 3.11+ refuses past 4300 with a
            # ValueError); no setting needs more than a few.
            raise self.error(node, f"an integer of {len(node.value):,} digits; configs take at most "
                                   f"{MAX_INT_DIGITS}")
        try:
            return self.scalars.construct_object(node)
        except yaml.MarkedYAMLError as e:
            raise self.error(node, f"{e.problem} (configs use plain YAML values only)") from None
        except ValueError as e:
            raise self.error(node, f"cannot read {node.value[:40]!r}: {e}") from None

    def pairs(self, node):
        """The (key, value) node pairs of a mapping, with ``<<`` merge keys applied.

        Every pair a merge brings in is charged, so nested merges that would list the same
        mapping exponentially often are refused as an alias bomb is.
        """
        own, merged = [], []
        for knode, vnode in node.value:
            if knode.tag != _MERGE:
                own.append((knode, vnode))
                continue
            sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise self.error(src, "'<<' merges only mappings")
                for pair in self.pairs(src):
                    self.charge(pair[0])
                    merged.append(pair)
        names = {k.value for k, _ in own}
        for knode, vnode in merged:
            if knode.value not in names:
                names.add(knode.value)
                own.append((knode, vnode))
        return own


def _pos(node):
    return node.start_mark.line + 1, node.start_mark.column + 1


def _where(name, mark):
    """``FILE:LINE:COL`` of a YAML mark (which counts from 0)."""
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


def parse_yaml(text, name):
    """``(data, marks)``: plain data, and ``{path: (line, col)}`` of every key and item."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{name}: the config is larger than {MAX_BYTES} bytes; refusing it")
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        context = f" ({e.context}, line {e.context_mark.line + 1})" if e.context and e.context_mark else ""
        msg = " ".join(f"invalid YAML: {e.problem}{context}".split())
        raise ConfigError(msg, where=_where(name, mark)) from None
    except yaml.YAMLError as e:  # reader errors: non-printable characters and the like
        line, col = _line_col(text, getattr(e, "position", 0))
        raise ConfigError(" ".join(f"invalid YAML: {e}".split()), where=f"{name}:{line}:{col}") from None
    except RecursionError:
        raise ConfigError(f"{name}: the config is nested too deeply") from None
    if root is None:
        return None, {(): (1, 1)}
    builder = _Builder(name)
    builder.marks[()] = _pos(root)
    return builder.build(root, ()), builder.marks


def check_plain_data(data, name):
    """Hold parsed data that did not come through :func:`parse_yaml` (a checkpoint's config) to its
    bounds: nested at most :data:`MAX_DEPTH` deep and at most :data:`MAX_NODES` values."""
    stack, count = [(data, 0)], 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ConfigError(f"{name}: the config is nested more than {MAX_DEPTH} levels deep")
        if count > MAX_NODES:
            raise ConfigError(f"{name}: the config holds more than {MAX_NODES} values; refusing it")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _line_col(text, index):
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1
