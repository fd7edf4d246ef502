"""The version of logdiag, in a leaf module that any stage may read."""

__version__ = "0.1.0"
