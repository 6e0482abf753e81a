"""lmech: learning mechanics, the physics of deep learning, as executable predictions.

The subpackages are ``lmech.measure`` (observables), ``lmech.theory`` (predictions),
``lmech.train`` (the loop and its monitors), ``lmech.data``, ``lmech.models``, ``lmech.laws`` (the
catalog) and ``lmech.lab`` (run folders, reports, queries). The most used names are re-exported here.
"""

from .errors import ConfigError as ConfigError
from .errors import LmechError as LmechError
from .errors import LmechWarning as LmechWarning
from .errors import StoreError as StoreError
from .errors import TrainModeError as TrainModeError
from .errors import UnknownNameError as UnknownNameError
from .measure import hessian_eigenvalues as hessian_eigenvalues
from .measure import hessian_trace as hessian_trace
from .measure import hvp as hvp
from .measure import sharpness as sharpness

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "LmechError", "LmechWarning", "StoreError", "TrainModeError", "UnknownNameError",
    "__version__", "hessian_eigenvalues", "hessian_trace", "hvp", "sharpness",
]
