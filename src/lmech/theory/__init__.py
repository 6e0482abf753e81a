"""Predictions: pure, vectorised functions of numbers and arrays; no training inside."""

from .stability import gd_quadratic_trajectory as gd_quadratic_trajectory
from .stability import stability_threshold as stability_threshold

__all__ = ["gd_quadratic_trajectory", "stability_threshold"]
