"""The ``pydownloads`` command: ``pydownloads URL... [options]`` and ``pydownloads demo``.

Run ``pydownloads --help`` for the options.  ``main(argv)`` returns the exit status:
0 every download completed, 1 some failed, 2 usage or input error, 130 interrupted.
"""

from pydownloads.cli._args import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    parse_header,
    parse_size,
)
from pydownloads.cli._input import InputError, InputItem, parse_input, read_input
from pydownloads.cli._main import main

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "InputError",
    "InputItem",
    "build_parser",
    "main",
    "parse_header",
    "parse_input",
    "parse_size",
    "read_input",
]
