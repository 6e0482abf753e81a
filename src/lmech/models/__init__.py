"""Models."""

from .mlp import mlp as mlp
from .ntk import Erf as Erf
from .ntk import ScaledLinear as ScaledLinear
from .ntk import ntk_mlp as ntk_mlp

__all__ = ["Erf", "ScaledLinear", "mlp", "ntk_mlp"]
