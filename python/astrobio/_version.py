"""The package version, in a module of its own so any layer can import it at module top."""

__version__ = "0.1.0"
