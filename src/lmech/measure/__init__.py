"""Observables: numbers measured from a model, a loss and data at one moment."""

from .hessian import HessianOperator as HessianOperator
from .hessian import check_eval_mode as check_eval_mode
from .hessian import hvp as hvp
from .lanczos import EigenResult as EigenResult
from .lanczos import lanczos as lanczos
from .lanczos import power_iteration as power_iteration
from .ntk import empirical_ntk as empirical_ntk
from .ntk import kernel_target_alignment as kernel_target_alignment
from .ntk import relative_kernel_change as relative_kernel_change
from .sharpness import hessian_eigenpairs as hessian_eigenpairs
from .sharpness import hessian_eigenvalues as hessian_eigenvalues
from .sharpness import sharpness as sharpness
from .trace import hessian_trace as hessian_trace

__all__ = [
    "EigenResult", "HessianOperator", "check_eval_mode", "empirical_ntk", "hessian_eigenpairs",
    "hessian_eigenvalues", "hessian_trace", "hvp", "kernel_target_alignment", "lanczos", "power_iteration",
    "relative_kernel_change", "sharpness",
]
