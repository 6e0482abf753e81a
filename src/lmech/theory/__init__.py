"""Predictions: pure, vectorised functions of numbers and arrays; no training inside."""

from .agf import agf_acquisition_order as agf_acquisition_order
from .agf import agf_max_utility as agf_max_utility
from .agf import agf_plateau_levels as agf_plateau_levels
from .batch_size import TradeoffFit as TradeoffFit
from .batch_size import fit_steps_examples_tradeoff as fit_steps_examples_tradeoff
from .deep_linear import effective_init_strength as effective_init_strength
from .deep_linear import mode_learning_times as mode_learning_times
from .deep_linear import mode_trajectories as mode_trajectories
from .deep_linear import staircase_loss as staircase_loss
from .eigenlearning import BCPPrediction as BCPPrediction
from .eigenlearning import EigenlearningPrediction as EigenlearningPrediction
from .eigenlearning import FinitePopulationPrediction as FinitePopulationPrediction
from .eigenlearning import bcp_learning_curve as bcp_learning_curve
from .eigenlearning import eigenlearning as eigenlearning
from .eigenlearning import finite_population_eigenlearning as finite_population_eigenlearning
from .kernel_scaling import RandomFeaturePrediction as RandomFeaturePrediction
from .kernel_scaling import loglog_slope as loglog_slope
from .kernel_scaling import random_feature_learning_curve as random_feature_learning_curve
from .kernel_scaling import scaling_exponent as scaling_exponent
from .ntk_kernels import InfiniteWidthKernels as InfiniteWidthKernels
from .ntk_kernels import dual_activation as dual_activation
from .ntk_kernels import infinite_width_kernels as infinite_width_kernels
from .ntk_kernels import nngp_kernel as nngp_kernel
from .ntk_kernels import ntk_kernel as ntk_kernel
from .random_matrix import ks_distance_to_marchenko_pastur as ks_distance_to_marchenko_pastur
from .random_matrix import marchenko_pastur_cdf as marchenko_pastur_cdf
from .random_matrix import marchenko_pastur_density as marchenko_pastur_density
from .random_matrix import marchenko_pastur_edges as marchenko_pastur_edges
from .scaling import Approach2Fit as Approach2Fit
from .scaling import ChinchillaFit as ChinchillaFit
from .scaling import PowerLawFit as PowerLawFit
from .scaling import chinchilla_init_grid as chinchilla_init_grid
from .scaling import chinchilla_loss as chinchilla_loss
from .scaling import compute_equivalent_factor as compute_equivalent_factor
from .scaling import compute_optimal as compute_optimal
from .scaling import fit_approach2 as fit_approach2
from .scaling import fit_chinchilla as fit_chinchilla
from .scaling import fit_power_law as fit_power_law
from .scaling import frontier_loss as frontier_loss
from .stability import gd_quadratic_trajectory as gd_quadratic_trajectory
from .stability import stability_threshold as stability_threshold

__all__ = [
    "Approach2Fit", "BCPPrediction", "ChinchillaFit", "EigenlearningPrediction", "FinitePopulationPrediction",
    "InfiniteWidthKernels", "PowerLawFit", "RandomFeaturePrediction", "TradeoffFit", "agf_acquisition_order",
    "agf_max_utility", "agf_plateau_levels", "bcp_learning_curve", "chinchilla_init_grid", "chinchilla_loss",
    "compute_equivalent_factor", "compute_optimal", "dual_activation", "effective_init_strength", "eigenlearning",
    "finite_population_eigenlearning", "fit_approach2", "fit_chinchilla", "fit_power_law",
    "fit_steps_examples_tradeoff", "frontier_loss", "gd_quadratic_trajectory", "infinite_width_kernels",
    "ks_distance_to_marchenko_pastur", "loglog_slope", "marchenko_pastur_cdf", "marchenko_pastur_density",
    "marchenko_pastur_edges", "mode_learning_times", "mode_trajectories", "nngp_kernel", "ntk_kernel",
    "random_feature_learning_curve", "scaling_exponent", "stability_threshold", "staircase_loss",
]
