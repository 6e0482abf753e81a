"""Spectra of weight matrices: the empirical spectral density, a power-law fit of its tail, stable and effective rank.

Martin & Mahoney (2021, arXiv:1810.01075; 2019, arXiv:1901.08276) study the empirical spectral density (ESD)
of each layer's correlation matrix ``X = WᵀW / N``: at initialisation it follows the Marchenko–Pastur law
(:mod:`lmech.theory.random_matrix`), and as training proceeds its tail grows heavier, which they quantify by
fitting a power law ``ρ(λ) ∝ λ^{-α}`` to the tail — small ``α`` (2 to 4) for well-trained layers, large ``α`` for
random ones. The fit is Clauset, Shalizi & Newman's (2009, arXiv:0706.1062): the continuous maximum-likelihood
``α`` for each candidate lower cut-off ``x_min``, and the ``x_min`` whose fit is closest to the data in
Kolmogorov–Smirnov distance.

Normalisation (as in Martin & Mahoney and WeightWatcher): a weight matrix is oriented as ``W`` of shape
``(N, M)`` with ``N ≥ M`` (a PyTorch ``Linear`` weight of shape ``(out, in)`` is transposed if ``out < in``), and
its ESD is the ``M`` eigenvalues of ``X = WᵀW / N``, that is ``λ_i = s_i² / N`` for the singular values ``s_i``.
:func:`layer_spectrum` gathers every observable of one matrix from a single SVD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..config import require
from ..theory.random_matrix import ks_distance_to_marchenko_pastur, marchenko_pastur_edges


def _matrix(weight: Tensor | np.ndarray) -> np.ndarray:
    w = weight.detach().cpu().double().numpy() if isinstance(weight, Tensor) else np.asarray(weight, dtype=np.float64)
    require(w.ndim == 2 and min(w.shape) >= 1, f"weight must be a 2-D matrix, got shape {tuple(w.shape)}")
    require(bool(np.all(np.isfinite(w))), "weight has non-finite entries (did training diverge?)")
    return w if w.shape[0] >= w.shape[1] else w.T


def aspect_ratio(weight: Tensor | np.ndarray) -> float:
    """``Q = N/M ≥ 1`` for ``W`` oriented as ``(N, M)``, ``N ≥ M``.

    Raises:
        ConfigError: ``weight`` is not a finite 2-D matrix.

    >>> aspect_ratio(np.zeros((64, 512)))
    8.0
    """
    w = _matrix(weight)
    return w.shape[0] / w.shape[1]


def singular_values(weight: Tensor | np.ndarray) -> np.ndarray:
    """The singular values of ``W`` in float64, descending, shape ``(M,)`` with ``M = min(W.shape)``.

    Raises:
        ConfigError: ``weight`` is not a finite 2-D matrix.
    """
    return torch.linalg.svdvals(torch.from_numpy(_matrix(weight))).numpy()


def esd(weight: Tensor | np.ndarray) -> np.ndarray:
    """The empirical spectral density of a weight matrix: the eigenvalues of ``X = WᵀW / N``.

    .. math::  \\lambda_i = s_i(W)^2 / N, \\qquad W \\in \\mathbb{R}^{N \\times M},\\ N \\ge M

    Args:
        weight: a matrix of shape ``(a, b)``; it is oriented so that ``N = max(a, b)``, ``M = min(a, b)``.

    Returns:
        The ``M`` eigenvalues, ascending, float64, in units of weight² (same units as the entries' variance,
        so that an i.i.d. matrix of variance ``σ²`` gives the Marchenko–Pastur law with that ``σ²``).

    Raises:
        ConfigError: ``weight`` is not a finite 2-D matrix.

    >>> esd(np.eye(3) * 2.0).tolist()  # s = 2, N = 3: λ = 4/3
    [1.3333333333333333, 1.3333333333333333, 1.3333333333333333]
    """
    w = _matrix(weight)
    return np.sort(torch.linalg.svdvals(torch.from_numpy(w)).numpy() ** 2 / w.shape[0])


def stable_rank(weight: Tensor | np.ndarray) -> float:
    """The stable rank ``‖W‖_F² / ‖W‖₂² = Σ s_i² / s_max²``, in ``[1, rank W]`` (Rudelson & Vershynin 2007).

    Raises:
        ConfigError: ``weight`` is not a finite 2-D matrix, or is zero.

    >>> stable_rank(np.diag([2.0, 1.0, 1.0]))
    1.5
    """
    return _stable_rank(singular_values(weight))


def _stable_rank(s: np.ndarray) -> float:
    require(s.max() > 0, "weight is the zero matrix; its stable rank is undefined")
    return float((s**2).sum() / s.max() ** 2)


def effective_rank(weight: Tensor | np.ndarray) -> float:
    """The effective rank of Roy & Vetterli (2007, EUSIPCO): the exponential of the Shannon entropy of the
    singular values normalised to sum to one (singular values, not their squares).

    .. math::  \\operatorname{erank} W = \\exp\\Big(-\\sum_i p_i \\ln p_i\\Big), \\qquad p_i = s_i / \\sum_j s_j

    Returns:
        A number in ``[1, rank W]``; equal to ``k`` when ``W`` has ``k`` equal non-zero singular values.

    Raises:
        ConfigError: ``weight`` is not a finite 2-D matrix, or is zero.

    >>> round(effective_rank(np.diag([3.0, 3.0, 3.0, 0.0])), 12)
    3.0
    """
    return _effective_rank(singular_values(weight))


def _effective_rank(s: np.ndarray) -> float:
    require(s.max() > 0, "weight is the zero matrix; its effective rank is undefined")
    p = s[s > 0] / s.sum()
    return float(math.exp(-(p * np.log(p)).sum()))


def permute_entries(weight: Tensor, generator: torch.Generator) -> Tensor:
    """``W`` with its entries shuffled by a uniformly random permutation: the same entry distribution with every
    correlation between entries destroyed. Martin & Mahoney's null model: its ESD is Marchenko–Pastur whenever
    the entries have finite variance, so a heavy tail that survives the shuffle comes from the entries
    themselves, and one that disappears comes from correlations that training built.

    Args:
        weight: any tensor (shape kept).
        generator: the source of the permutation (no global RNG).
    """
    flat = weight.detach().reshape(-1)
    return flat[torch.randperm(flat.numel(), generator=generator)].reshape(weight.shape)


def power_law_alpha(x: np.ndarray, xmin: float) -> float:
    """The continuous power-law maximum-likelihood exponent for the samples ``x ≥ x_min``
    (Clauset, Shalizi & Newman 2009, arXiv:0706.1062, eq. (3.1)), for the density ``p(x) ∝ x^{-α}``:

    .. math::  \\hat\\alpha = 1 + n \\Big[\\sum_{x_i \\ge x_{\\min}} \\ln \\frac{x_i}{x_{\\min}}\\Big]^{-1}

    Raises:
        ConfigError: ``x_min <= 0``, or fewer than two samples ``≥ x_min`` not all equal to it.

    >>> round(power_law_alpha(np.array([1.0, np.e]), 1.0), 12)  # 1 + 2 / (0 + 1)
    3.0
    """
    require(math.isfinite(xmin) and xmin > 0, f"xmin must be finite and > 0, got {xmin!r}")
    tail = np.asarray(x, dtype=np.float64).ravel()
    tail = tail[tail >= xmin]
    logs = np.log(tail / xmin).sum()
    require(tail.size >= 2 and logs > 0, f"need at least two samples >= xmin = {xmin:g}, not all equal to it; "
                                         f"got {tail.size}")
    return float(1.0 + tail.size / logs)


@dataclass(frozen=True)
class PowerLawTail:
    """A power-law fit ``p(x) ∝ x^{-α}`` of the tail ``x ≥ x_min``.

    Attributes:
        alpha: the maximum-likelihood exponent of the density (the ESD's ``α`` of Martin & Mahoney).
        xmin: the lower cut-off (chosen by the KS scan, or given).
        ks_distance: the KS distance ``D`` between the tail's empirical distribution and the fitted one.
        n_tail: samples ``≥ x_min``.
        n: all samples.
        sigma: the asymptotic standard error of ``α``, ``(α − 1)/√n_tail`` (Clauset et al., eq. (3.2)).
    """

    alpha: float
    xmin: float
    ks_distance: float
    n_tail: int
    n: int
    sigma: float


def _ks_of_tail(tail: np.ndarray, xmin: float, alpha: float) -> float:
    m = tail.size
    model = 1.0 - (tail / xmin) ** (1.0 - alpha)
    return float(max((np.arange(1, m + 1) / m - model).max(), (model - np.arange(m) / m).max()))


def fit_power_law(x: np.ndarray | Tensor, *, xmin: float | None = None, min_tail: int = 10) -> PowerLawTail:
    """Fit a power law to the tail of positive samples, choosing ``x_min`` by the KS distance.

    For every candidate ``x_min`` among the samples (leaving at least ``min_tail`` samples in the tail), the
    exponent is :func:`power_law_alpha` and the fit's distance to the tail is

    .. math::  D = \\max_{x \\ge x_{\\min}} |S(x) - P(x)|, \\qquad P(x) = 1 - (x / x_{\\min})^{1 - \\alpha},

    with ``S`` the tail's empirical distribution function (both sides of each step). The candidate with the
    smallest ``D`` wins (Clauset, Shalizi & Newman 2009, arXiv:0706.1062, §3.3), as in the ``powerlaw`` package
    (Alstott et al. 2014) for continuous data, which WeightWatcher uses for a layer's ``alpha``. On Pareto samples
    with ``α ≤ 3`` this agrees with ``powerlaw`` 2.0.0 to within 0.001 (checked by hand; it is not a dependency), but
    that version bounds ``α`` to ``[0, 3]`` by default, so on a PyTorch-initialised ``512 × 512`` layer it reports
    2.83 where this fit finds 7.7: the large ``α`` of random matrices needs the unbounded closed form.

    Args:
        x: samples, shape ``(n,)`` (e.g. :func:`esd`); non-positive values are dropped (they cannot be in a tail).
        xmin: a fixed cut-off instead of the scan.
        min_tail: the fewest samples a candidate tail may hold (Clauset et al. warn that fits to a handful of
            points are meaningless; the scan would otherwise favour the last few samples).

    Returns:
        A :class:`PowerLawTail`.

    Raises:
        ConfigError: non-finite samples, ``min_tail < 2``, or fewer than ``min_tail`` positive samples.
    """
    values = x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    values = values.ravel()
    require(bool(np.all(np.isfinite(values))), "samples must be finite")
    require(isinstance(min_tail, int) and min_tail >= 2, f"min_tail must be an integer >= 2, got {min_tail!r}")
    values = np.sort(values[values > 0])
    n = values.size
    require(n >= min_tail, f"need at least min_tail = {min_tail} positive samples, got {n}")
    if xmin is not None:
        alpha = power_law_alpha(values, xmin)
        tail = values[values >= xmin]
        return PowerLawTail(alpha, float(xmin), _ks_of_tail(tail, xmin, alpha), tail.size, n,
                           (alpha - 1) / math.sqrt(tail.size))
    logs = np.log(values)
    suffix = np.cumsum(logs[::-1])[::-1]  # suffix[k] = Σ_{i ≥ k} ln x_i
    best: tuple[float, float, float, int] | None = None
    starts = np.unique(values[: n - min_tail + 1], return_index=True)[1]  # first index of each distinct value
    for k in starts:
        m = n - k
        total = suffix[k] - m * logs[k]
        if total <= 0:
            continue
        alpha = 1.0 + m / total
        d = _ks_of_tail(values[k:], values[k], alpha)
        if best is None or d < best[0]:
            best = (d, alpha, float(values[k]), int(m))
    require(best is not None, "every candidate tail has all samples equal; no power law can be fitted")
    d, alpha, cut, m = best
    return PowerLawTail(float(alpha), cut, float(d), m, n, float((alpha - 1) / math.sqrt(m)))


@dataclass(frozen=True)
class LayerSpectrum:
    """One weight matrix's spectral summary, from a single SVD (what WeightWatcher reports per layer).

    Attributes:
        eigenvalues: the ESD, eigenvalues of ``X = WᵀW/N`` ascending, shape ``(M,)`` (see :func:`esd`).
        q: the aspect ratio ``Q = N/M ≥ 1``.
        variance: the entries' variance ``σ²`` (about their mean, divided by the number of entries).
        fit: the power-law fit of the ESD's tail (:func:`fit_power_law`).
        stable_rank, effective_rank: see :func:`stable_rank` and :func:`effective_rank`.
        ks_to_mp: KS distance of the ESD to Marchenko–Pastur with this ``Q`` and ``σ²`` (nothing fitted).
        above_mp_edge: eigenvalues above that law's upper edge ``λ₊ = σ²(1 + Q^{-1/2})²``.
    """

    eigenvalues: np.ndarray
    q: float
    variance: float
    fit: PowerLawTail
    stable_rank: float
    effective_rank: float
    ks_to_mp: float
    above_mp_edge: int


def layer_spectrum(weight: Tensor | np.ndarray, *, min_tail: int = 10) -> LayerSpectrum:
    """Every spectral observable of one weight matrix, from one SVD; see :class:`LayerSpectrum`.

    Args:
        weight: a matrix of shape ``(a, b)``, oriented as in :func:`esd`.
        min_tail: passed to :func:`fit_power_law`.

    Raises:
        ConfigError: ``weight`` is not a finite 2-D matrix, is zero or constant, or has fewer than ``min_tail``
            positive eigenvalues.
    """
    w = _matrix(weight)
    s = torch.linalg.svdvals(torch.from_numpy(w)).numpy()
    eigenvalues = np.sort(s**2 / w.shape[0])
    q, variance = w.shape[0] / w.shape[1], float(w.var())
    require(variance > 0, "weight has constant entries; its spectrum has no Marchenko–Pastur reference")
    return LayerSpectrum(eigenvalues, q, variance, fit_power_law(eigenvalues, min_tail=min_tail), _stable_rank(s),
                         _effective_rank(s), ks_distance_to_marchenko_pastur(eigenvalues, q, variance),
                         int((eigenvalues > marchenko_pastur_edges(q, variance)[1]).sum()))
