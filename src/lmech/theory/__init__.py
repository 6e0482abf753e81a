"""Predictions: pure, vectorised functions of numbers and arrays; no training inside."""

from .deep_linear import mode_learning_times as mode_learning_times
from .deep_linear import mode_trajectories as mode_trajectories
from .deep_linear import staircase_loss as staircase_loss
from .eigenlearning import BCPPrediction as BCPPrediction
from .eigenlearning import EigenlearningPrediction as EigenlearningPrediction
from .eigenlearning import bcp_learning_curve as bcp_learning_curve
from .eigenlearning import eigenlearning as eigenlearning
from .stability import gd_quadratic_trajectory as gd_quadratic_trajectory
from .stability import stability_threshold as stability_threshold

__all__ = [
    "mode_learning_times",
    "mode_trajectories",
    "staircase_loss",
    "BCPPrediction",
    "EigenlearningPrediction",
    "bcp_learning_curve",
    "eigenlearning",
    "gd_quadratic_trajectory",
    "stability_threshold",
]
