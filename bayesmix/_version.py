"""The package version (one place; the package, the CLI and fit files read it)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
