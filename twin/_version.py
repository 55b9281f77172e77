"""The package version, in a leaf module that any other module may import without a circle."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
