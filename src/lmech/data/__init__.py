"""Datasets that ship offline."""

from .digits import Split as Split
from .digits import load_digits as load_digits

__all__ = ["Split", "load_digits"]
