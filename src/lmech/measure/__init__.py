"""Observables: numbers measured from a model, a loss and data at one moment."""

from .coord_check import coord_check as coord_check
from .coord_check import spectral_norms as spectral_norms
from .coord_check import width_slopes as width_slopes
from .hessian import HessianOperator as HessianOperator
from .hessian import check_eval_mode as check_eval_mode
from .hessian import hvp as hvp
from .lanczos import EigenResult as EigenResult
from .lanczos import lanczos as lanczos
from .lanczos import power_iteration as power_iteration
from .neural_collapse import NeuralCollapse as NeuralCollapse
from .neural_collapse import neural_collapse as neural_collapse
from .noise_scale import NoiseScale as NoiseScale
from .noise_scale import gradient_noise_scale as gradient_noise_scale
from .noise_scale import per_example_gradients as per_example_gradients
from .noise_scale import two_batch_estimate as two_batch_estimate
from .noise_scale import two_batch_noise_scale as two_batch_noise_scale
from .ntk import empirical_ntk as empirical_ntk
from .ntk import kernel_target_alignment as kernel_target_alignment
from .ntk import relative_kernel_change as relative_kernel_change
from .sharpness import hessian_eigenpairs as hessian_eigenpairs
from .sharpness import hessian_eigenvalues as hessian_eigenvalues
from .sharpness import sharpness as sharpness
from .similarity import cca_correlations as cca_correlations
from .similarity import cknna as cknna
from .similarity import linear_cka as linear_cka
from .similarity import mean_squared_cca as mean_squared_cca
from .similarity import mutual_knn as mutual_knn
from .similarity import procrustes_distance as procrustes_distance
from .similarity import pwcca as pwcca
from .similarity import rbf_cka as rbf_cka
from .similarity import svcca as svcca
from .trace import hessian_trace as hessian_trace

__all__ = [
    "EigenResult", "HessianOperator", "NeuralCollapse", "NoiseScale", "cca_correlations", "check_eval_mode",
    "cknna", "coord_check", "empirical_ntk", "gradient_noise_scale", "hessian_eigenpairs",
    "hessian_eigenvalues", "hessian_trace", "hvp", "kernel_target_alignment", "lanczos", "linear_cka",
    "mean_squared_cca", "mutual_knn", "neural_collapse", "per_example_gradients", "power_iteration",
    "procrustes_distance", "pwcca", "rbf_cka", "relative_kernel_change", "sharpness", "spectral_norms",
    "svcca", "two_batch_estimate", "two_batch_noise_scale", "width_slopes",
]
