"""The package version, kept in one place for setup.py, the User-Agent and ``--version``."""

__version__ = "0.1.0"
