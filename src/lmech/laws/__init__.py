"""The catalog of laws. Importing this package registers every law."""

from . import chinchilla_extrapolation as _chinchilla_extrapolation  # noqa: F401 - registers the law
from . import critical_batch_size as _critical_batch_size  # noqa: F401 - registers the law
from . import deep_linear_modes as _deep_linear_modes  # noqa: F401 - registers the law
from . import edge_of_stability as _edge_of_stability  # noqa: F401 - registers the law
from . import eigenlearning as _eigenlearning  # noqa: F401 - registers the law
from . import factored_belief_geometry as _factored_belief_geometry  # noqa: F401 - registers the law
from . import fourier_feature_order as _fourier_feature_order  # noqa: F401 - registers the law
from . import grokking_modular_addition as _grokking_modular_addition  # noqa: F401 - registers the law
from . import group_composition_depth as _group_composition_depth  # noqa: F401 - registers the law
from . import heavy_tailed_spectra as _heavy_tailed_spectra  # noqa: F401 - registers the law
from . import kernel_scaling_exponent as _kernel_scaling_exponent  # noqa: F401 - registers the law
from . import mup_coord_check as _mup_coord_check  # noqa: F401 - registers the law
from . import mup_lr_transfer as _mup_lr_transfer  # noqa: F401 - registers the law
from . import neural_collapse as _neural_collapse  # noqa: F401 - registers the law
from . import neuron_universality as _neuron_universality  # noqa: F401 - registers the law
from . import ntk_infinite_width as _ntk_infinite_width  # noqa: F401 - registers the law
from . import representation_convergence as _representation_convergence  # noqa: F401 - registers the law
from . import sgd_scaling_rules as _sgd_scaling_rules  # noqa: F401 - registers the law
from .base import PILLARS as PILLARS
from .base import Check as Check
from .base import Law as Law
from .base import LawResult as LawResult
from .base import Reference as Reference
from .registry import get_law as get_law
from .registry import list_laws as list_laws
from .registry import register as register

__all__ = ["PILLARS", "Check", "Law", "LawResult", "Reference", "get_law", "list_laws", "register"]
