"""Models."""

from .cnn import small_cnn as small_cnn
from .mlp import mlp as mlp
from .ntk import Erf as Erf
from .ntk import ScaledLinear as ScaledLinear
from .ntk import ntk_mlp as ntk_mlp
from .parametrization import MEAN_FIELD as MEAN_FIELD
from .parametrization import MUP as MUP
from .parametrization import NTK as NTK
from .parametrization import PARAMETRIZATIONS as PARAMETRIZATIONS
from .parametrization import SP as SP
from .parametrization import AppliedParametrization as AppliedParametrization
from .parametrization import Parametrization as Parametrization
from .parametrization import ScaledEmbedding as ScaledEmbedding
from .parametrization import ScaledLayerNorm as ScaledLayerNorm
from .parametrization import get_parametrization as get_parametrization
from .parametrization import param_groups as param_groups
from .parametrization import parametrization_of as parametrization_of
from .parametrization import parametrize as parametrize
from .transformer import CausalSelfAttention as CausalSelfAttention
from .transformer import Transformer as Transformer

__all__ = [
    "MEAN_FIELD", "MUP", "NTK", "PARAMETRIZATIONS", "SP", "AppliedParametrization", "CausalSelfAttention", "Erf",
    "Parametrization", "ScaledEmbedding", "ScaledLayerNorm", "ScaledLinear", "Transformer", "get_parametrization",
    "mlp", "ntk_mlp", "param_groups", "parametrization_of", "parametrize", "small_cnn",
]
