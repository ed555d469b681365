"""``python -m pydownloads``: the same as the ``pydownloads`` command."""

import sys

from pydownloads.cli import main

if __name__ == "__main__":
    sys.exit(main())
