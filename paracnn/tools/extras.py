"""Optional extras, imported only when a command needs them."""

import importlib
import importlib.util

from ..errors import ParacnnError

#: the extra of pyproject.toml that installs each optional module.
EXTRAS = {"matplotlib": "plot", "PIL": "image", "safetensors": "export"}
#: what each module is called on PyPI, for the message.
DISTRIBUTIONS = {"matplotlib": "matplotlib", "PIL": "Pillow", "safetensors": "safetensors"}


def require(module, what):
    """Import ``module`` or raise one ParacnnError naming the install command.

    Args:
        module: ``"matplotlib"``, ``"PIL"`` or ``"safetensors"`` (or a submodule of one).
        what: the command that needs it, for the message (e.g. ``"paracnn plot"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing(module, what) from None


def check_installed(module, what):
    """Raise :func:`require`'s error now if ``module`` is missing, without importing it.

    For a parent process that must not grow by an import it needs only later.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise missing(module, what)


def missing(module, what):
    """The ParacnnError for ``what`` when ``module`` is not installed: which extra installs it."""
    top = module.split(".")[0]
    return ParacnnError(f"{what} needs {DISTRIBUTIONS[top]}, which is not installed; install it "
                        f'with: pip install "paracnn[{EXTRAS[top]}]"')
