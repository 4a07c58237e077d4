"""``paracnn new-layer NAME``: a plugin package with one working layer, ready to install and test.

The package is what ``docs/plugins.md`` describes, filled in::

    paracnn-<name>/
      pyproject.toml             the entry point: <name> = "paracnn_<name>.<name>:<Class>"
      README.md
      paracnn_<name>/__init__.py
      paracnn_<name>/<name>.py   the layer: the example body, a scaled tanh, to replace with yours
      tests/test_<name>.py       check_layer on its examples, registry lookup, a model step

The texts of those files are in :mod:`paracnn.scaffold_templates`; this module
checks the name, writes them and is the command.

Whatever ``NAME`` is, the layer is the same example (a tanh with a learnable
scale per channel, which shows parameters, gradients and the kernels), and it
says so: ``paracnn layers`` shows "A scaled tanh ..." until its author
replaces it.

Example::

    path = new_layer("scaled_tanh", "plugins")    # -> plugins/paracnn-scaled-tanh
    # then: pip install -e plugins/paracnn-scaled-tanh && pytest plugins/paracnn-scaled-tanh
"""

import argparse
import keyword
import os
import re
import shutil
import tempfile
from pathlib import Path
from string import Template

from . import __version__
from .errors import ParacnnError
from .files import umask, write_atomic
from .scaffold_templates import FILES

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
MAX_NAME = 40


def package_names(name):
    """What layer type ``name`` becomes: distribution (and folder), module and class names."""
    return {"name": name, "dist": "paracnn-" + name.replace("_", "-"), "module": "paracnn_" + name,
            "cls": "".join(part.capitalize() for part in name.split("_")),
            "paracnn_version": __version__}


def check_name(name, registry=None):
    """Raise ParacnnError unless ``name`` can be a new layer type (and a Python module)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > MAX_NAME:
        raise ParacnnError(
            f"invalid layer name {name!r}: use lowercase letters, digits and single underscores, "
            f"starting with a letter and at most {MAX_NAME} characters (e.g. scaled_tanh); it "
            f"becomes the config's type:, the module paracnn_<name> and the package paracnn-<name>")
    if keyword.iskeyword(name):
        raise ParacnnError(f"invalid layer name '{name}': it is a Python keyword, so the module "
                           f"paracnn_{name}.{name} could not be imported; choose another name")
    if registry is None:
        from .registry import get_registry
        registry = get_registry()
    taken = [e for e in registry.entries() if e.name == name]
    if taken:
        owners = ", ".join(f"{e.distribution} {e.version}".strip() for e in taken)
        raise ParacnnError(f"layer type '{name}' is already registered by {owners}; a second one "
                           f"would make every config that says type: {name} ambiguous, so choose "
                           f"another name ('paracnn layers' lists the names in use)")
    return name


def new_layer(name, directory=None):
    """Create the plugin package for layer type ``name`` in ``directory`` (default: the current one).

    Returns the package folder, ``<directory>/paracnn-<name>``. Raises
    :class:`~paracnn.errors.ParacnnError` for an invalid or taken name, or when
    that folder exists already (nothing is overwritten).
    """
    check_name(name)
    names = package_names(name)
    parent = Path(directory) if directory is not None else Path.cwd()
    target = parent / names["dist"]
    if target.exists() or target.is_symlink():
        raise ParacnnError(f"{target} already exists; remove it or choose another --dir "
                           f"(new-layer never overwrites)")
    if parent.exists() and not parent.is_dir():
        raise ParacnnError(f"--dir {parent} is a file, not a directory")
    try:
        _write_package(parent, target, names)
    except OSError as e:
        raise ParacnnError(f"cannot create {target}: {e.strerror or e}") from None
    return target


def _write_package(parent, target, names):
    parent.mkdir(parents=True, exist_ok=True)
    # Written in a fresh, exclusively created scratch folder and renamed into place, so a
    # failure leaves nothing behind and nothing planted there is written through.
    scratch = Path(tempfile.mkdtemp(prefix=f".{names['dist']}.partial-", dir=parent))
    os.chmod(scratch, 0o777 & ~umask())  # NOTE: mkdtemp makes it 0700; the package is to share
    try:
        for relative, template in FILES.items():
            write_atomic(scratch / Template(relative).substitute(names), Template(template).substitute(names))
        os.rename(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


# -- the command ------------------------------------------------------------------

EPILOG = """examples:
  paracnn new-layer scaled_tanh                 creates ./paracnn-scaled-tanh
  paracnn new-layer my_layer --dir plugins      creates plugins/paracnn-my-layer

Whatever NAME is, the package holds the same example layer, a scaled tanh
(y = a_c*tanh(x), one learnable scale per channel): replace it with yours.

then:
  pip install -e paracnn-scaled-tanh            registers layer type scaled_tanh
  pytest paracnn-scaled-tanh                    runs check_layer on it

docs/plugins.md explains every part of the package."""


def add_parser(subparsers, parents=()):
    """Register ``new-layer`` on the CLI's subparsers; its handler is :func:`run`."""
    help_text = "create a plugin package with a working example layer"
    p = subparsers.add_parser("new-layer", parents=list(parents), help=help_text,
                              description=help_text, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME",
                   help="the layer type, e.g. scaled_tanh (lowercase, digits, underscores)")
    p.add_argument("--dir", metavar="DIR", default=None,
                   help="where to create paracnn-NAME/ (default: the current directory)")
    p.set_defaults(handler=run)
    return p


def run(args):
    """Handler of ``paracnn new-layer``; returns the exit status (errors raise ParacnnError)."""
    path = new_layer(args.name, args.dir)
    names = package_names(args.name)
    print(f"created {path}: layer type '{args.name}' ({names['cls']} in "
          f"{names['module']}/{args.name}.py), distribution {names['dist']}; its body is the "
          f"example, a scaled tanh: replace it with your layer")
    print("next:")
    print(f"  pip install -e {path}")
    print(f"  pytest {path}")
    print(f"  paracnn layers                 # lists {args.name} from {names['dist']}")
    return 0
