"""The single source of poolkit's version (read by the build and by ``poolkit.__version__``)."""

__version__ = "0.1.0"
