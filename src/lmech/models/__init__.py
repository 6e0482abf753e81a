"""Models."""

from .cnn import small_cnn as small_cnn
from .composition import CompositionRNN as CompositionRNN
from .composition import Square as Square
from .composition import composition_mlp as composition_mlp
from .composition import composition_tree as composition_tree
from .composition import hidden_layers as hidden_layers
from .composition import pair_block as pair_block
from .composition import real_irreps as real_irreps
from .composition import tree_depth as tree_depth
from .grokking import GrokkingTransformer as GrokkingTransformer
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
    "AppliedParametrization", "CausalSelfAttention", "CompositionRNN", "Erf", "GrokkingTransformer", "MEAN_FIELD",
    "MUP", "NTK", "PARAMETRIZATIONS", "Parametrization", "SP", "ScaledEmbedding", "ScaledLayerNorm", "ScaledLinear",
    "Square", "Transformer", "composition_mlp", "composition_tree", "get_parametrization", "hidden_layers", "mlp",
    "ntk_mlp", "pair_block", "param_groups", "parametrization_of", "parametrize", "real_irreps", "small_cnn",
    "tree_depth",
]
