"""Optional extras, imported only when a command needs them."""

import importlib

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
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS[top]
        raise ParacnnError(f"{what} needs {DISTRIBUTIONS[top]}, which is not installed; install it "
                           f'with: pip install "paracnn[{extra}]"') from None
