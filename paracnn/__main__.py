"""``python -m paracnn``: the same as the ``paracnn`` command."""

from .cli import entry

if __name__ == "__main__":
    entry()
