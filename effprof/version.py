"""effprof's version, in the base stage so that a record can carry it without importing the package's API (pyproject.toml holds the same)."""

__version__ = "0.1.0"
