"""Small checks shared by the schema and ``--set``, and the key paths their errors carry.

A key path is a tuple such as ``("model", "layers", 3, "filters")``; a
:class:`~paracnn.errors.ConfigError` raised with it as ``key`` is later placed
at ``FILE:LINE:COL`` by :meth:`~paracnn.config.Config.locate`.

Value rules are called as ``check(dotted_name, value)`` and return the value
(possibly normalised) or raise a ConfigError that names ``dotted_name``.
"""

import copy
import difflib
from functools import partial
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..layer import check_int


# -- value rules -----------------------------------------------------------------

def nullable(check, name, value):
    """``check`` that also accepts null."""
    return None if value is None else check(name, value)


def check_choice(name, value, options):
    """``value`` if it is one of ``options``; the error suggests the closest."""
    if value in options:
        return value
    hint = did_you_mean(value, options) if isinstance(value, str) else ""
    raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}{hint}")


def check_text(name, value):
    """``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_url(name, value):
    """``value`` if it is an ``http``, ``https`` or ``file`` URL."""
    check_text(name, value)
    if urlsplit(value).scheme not in ("http", "https", "file"):
        raise ConfigError(f"{name} must be an http(s):// or file:// URL, got {value!r}")
    return value


positive_int = partial(check_int, minimum=1)
optional_positive_int = partial(nullable, positive_int)


def apply_rules(mapping, rules, section, path=None, present=None):
    """Check every key of ``mapping`` that has a rule; errors point at the key.

    A key missing from ``present`` (a default) is blamed on the mapping itself.
    """
    path = (section,) if path is None else path
    for key, check in rules.items():
        if key in mapping:
            at = path + (key,) if present is None or key in present else path
            mapping[key] = check_at(at, check, mapping[key], name=f"{section}.{key}")
    return mapping


def check_at(path, check, value, *args, name=None):
    """Run ``check(name, value, *args)``, re-keying its error to ``path``."""
    try:
        return check(name or dotted(path), value, *args)
    except ConfigError as e:
        raise ConfigError(e.message, key=path) from None


def check_shape(path, value):
    """A shape at ``path``: a list of 1 or 3 positive integers (each error points at its item)."""
    name = dotted(path)
    if not isinstance(value, list) or len(value) not in (1, 3):
        raise ConfigError(f"{name} must be a list of 1 or 3 positive integers, such as [1, 28, 28], "
                          f"got {value!r}", key=path)
    return [check_at(path + (i,), check_int, v, 1) for i, v in enumerate(value)]


# -- keys ------------------------------------------------------------------------

def with_defaults(given, defaults, section):
    """A copy of ``defaults`` updated by ``given``, whose keys must all be in ``defaults``."""
    check_keys(given, tuple(defaults), (section,), section)
    return {**copy.deepcopy(defaults), **copy.deepcopy(given)}


def check_keys(mapping, allowed, path, what, shown=None):
    """Refuse the first key of ``mapping`` not in ``allowed``, at ``path + (key,)``."""
    for key in mapping:
        if key not in allowed:
            raise ConfigError(unknown_key_message(key, allowed, what, shown), key=path + (key,))


def unknown_key_message(key, allowed, what, shown=None):
    """``unknown key 'k' in WHAT; did you mean ...? (allowed: ...)``; ``shown`` narrows the list."""
    shown = allowed if shown is None else shown
    return (f"unknown key '{key}' in {what}{did_you_mean(key, allowed)} "
            f"(allowed: {', '.join(shown) or 'none'})")


def did_you_mean(word, options):
    """``"; did you mean 'x'?"`` for the option closest to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# -- key paths -------------------------------------------------------------------

def dotted(path):
    """``("model", "layers", 3, "filters")`` → ``model.layers[3].filters``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def kind_of(value):
    """How an error names what it got: "a mapping", "a list", "nothing", or the value's repr."""
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), repr(value))
