"""Observables: numbers measured from a model, a loss and data at one moment."""

from .belief_geometry import chance_of_orthogonality as chance_of_orthogonality
from .belief_geometry import explained_dimension as explained_dimension
from .belief_geometry import factor_encodings as factor_encodings
from .belief_geometry import simplex_coordinates as simplex_coordinates
from .belief_geometry import variance_dimension as variance_dimension
from .coord_check import coord_check as coord_check
from .coord_check import spectral_norms as spectral_norms
from .coord_check import width_slopes as width_slopes
from .fourier import excluded_loss as excluded_loss
from .fourier import fourier_basis as fourier_basis
from .fourier import fourier_power as fourier_power
from .fourier import frequency_projector as frequency_projector
from .fourier import group_fourier_power as group_fourier_power
from .fourier import group_fourier_transform as group_fourier_transform
from .fourier import key_frequencies as key_frequencies
from .fourier import restricted_logits as restricted_logits
from .fourier import restricted_loss as restricted_loss
from .hessian import HessianOperator as HessianOperator
from .hessian import check_eval_mode as check_eval_mode
from .hessian import hvp as hvp
from .lanczos import EigenResult as EigenResult
from .lanczos import lanczos as lanczos
from .lanczos import power_iteration as power_iteration
from .neural_collapse import NeuralCollapse as NeuralCollapse
from .neural_collapse import neural_collapse as neural_collapse
from .neurons import activation_correlation as activation_correlation
from .neurons import best_match as best_match
from .neurons import best_match_correlations as best_match_correlations
from .neurons import class_selectivity as class_selectivity
from .neurons import constant_neurons as constant_neurons
from .neurons import universal_mask as universal_mask
from .noise_scale import NoiseScale as NoiseScale
from .noise_scale import gradient_noise_scale as gradient_noise_scale
from .noise_scale import per_example_gradients as per_example_gradients
from .noise_scale import two_batch_estimate as two_batch_estimate
from .noise_scale import two_batch_noise_scale as two_batch_noise_scale
from .ntk import empirical_ntk as empirical_ntk
from .ntk import kernel_target_alignment as kernel_target_alignment
from .ntk import relative_kernel_change as relative_kernel_change
from .probes import LinearProbe as LinearProbe
from .probes import linear_probe as linear_probe
from .probes import principal_angles as principal_angles
from .probes import probe_subspace as probe_subspace
from .probes import r2_score as r2_score
from .probes import subspace_overlap as subspace_overlap
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
from .spectra import LayerSpectrum as LayerSpectrum
from .spectra import PowerLawTail as PowerLawTail
from .spectra import aspect_ratio as aspect_ratio
from .spectra import effective_rank as effective_rank
from .spectra import esd as esd
from .spectra import fit_power_law as fit_power_law
from .spectra import layer_spectrum as layer_spectrum
from .spectra import permute_entries as permute_entries
from .spectra import power_law_alpha as power_law_alpha
from .spectra import singular_values as singular_values
from .spectra import stable_rank as stable_rank
from .trace import hessian_trace as hessian_trace

__all__ = [
    "EigenResult", "HessianOperator", "LayerSpectrum", "LinearProbe", "NeuralCollapse", "NoiseScale",
    "PowerLawTail", "activation_correlation", "aspect_ratio", "best_match", "best_match_correlations",
    "cca_correlations", "chance_of_orthogonality", "check_eval_mode", "cknna", "class_selectivity",
    "constant_neurons", "coord_check", "effective_rank", "empirical_ntk", "esd", "excluded_loss",
    "explained_dimension", "factor_encodings", "fit_power_law", "fourier_basis", "fourier_power",
    "frequency_projector", "gradient_noise_scale", "group_fourier_power", "group_fourier_transform",
    "hessian_eigenpairs", "hessian_eigenvalues", "hessian_trace", "hvp", "kernel_target_alignment",
    "key_frequencies", "lanczos", "layer_spectrum", "linear_cka", "linear_probe", "mean_squared_cca",
    "mutual_knn", "neural_collapse", "per_example_gradients", "permute_entries", "power_iteration",
    "power_law_alpha", "principal_angles", "probe_subspace", "procrustes_distance", "pwcca", "r2_score",
    "rbf_cka", "relative_kernel_change", "restricted_logits", "restricted_loss", "sharpness",
    "simplex_coordinates", "singular_values", "spectral_norms", "stable_rank", "subspace_overlap", "svcca",
    "two_batch_estimate", "two_batch_noise_scale", "universal_mask", "variance_dimension", "width_slopes",
]
