"""Models."""

from .mlp import mlp as mlp

__all__ = ["mlp"]
