"""``python -m paracnn``: the same as the ``paracnn`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
