"""The Marchenko–Pastur law: the spectrum of ``X = WᵀW / N`` for a random ``W`` with independent entries.

Let ``W`` be ``N × M`` (``N ≥ M``) with independent, centred entries of variance ``σ²``, and ``Q = N/M ≥ 1``.
As ``N, M → ∞`` at fixed ``Q`` the empirical spectral density of the ``M × M`` correlation matrix
``X = WᵀW / N`` converges to the Marchenko–Pastur density

.. math::  \\rho(\\lambda) = \\frac{Q}{2\\pi\\sigma^2} \\frac{\\sqrt{(\\lambda_+ - \\lambda)(\\lambda - \\lambda_-)}}{\\lambda},
           \\qquad \\lambda_\\pm = \\sigma^2 (1 \\pm Q^{-1/2})^2,

on ``[λ₋, λ₊]`` (Marchenko & Pastur 1967; in the normalisation of Martin & Mahoney 2021, arXiv:1810.01075,
eq. (8)). The law is universal: it holds for any entry distribution with finite variance (uniform, as in
PyTorch's default initialisation, included), but not for heavy-tailed entries.

Here ``X`` has no zero eigenvalues (``M ≤ N``); every function asks for ``Q ≥ 1``.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import require


def _check(q: float, sigma2: float) -> None:
    require(isinstance(q, (int, float)) and math.isfinite(q) and q >= 1,
            f"q = N/M must be a finite number >= 1 (orient W so that N >= M), got {q!r}")
    require(isinstance(sigma2, (int, float)) and math.isfinite(sigma2) and sigma2 > 0,
            f"sigma2 (the entries' variance) must be finite and > 0, got {sigma2!r}")


def marchenko_pastur_edges(q: float, sigma2: float = 1.0) -> tuple[float, float]:
    """The support ``[λ₋, λ₊]`` of the Marchenko–Pastur law, ``λ± = σ²(1 ± Q^{-1/2})²``.

    Args:
        q: aspect ratio ``Q = N/M ≥ 1`` of ``W`` (``N × M``).
        sigma2: the variance ``σ²`` of ``W``'s entries.

    Returns:
        ``(λ₋, λ₊)`` in the units of ``σ²``.

    Raises:
        ConfigError: ``q < 1`` or ``sigma2 <= 0``.

    >>> marchenko_pastur_edges(1.0)
    (0.0, 4.0)
    >>> marchenko_pastur_edges(4.0, 2.0)
    (0.5, 4.5)
    """
    _check(q, sigma2)
    r = 1.0 / math.sqrt(q)
    return sigma2 * (1 - r) ** 2, sigma2 * (1 + r) ** 2


def marchenko_pastur_density(x: np.ndarray | float, q: float, sigma2: float = 1.0) -> np.ndarray:
    """The Marchenko–Pastur density ``ρ(λ)`` (see the module docstring), zero outside ``[λ₋, λ₊]``.

    Args:
        x: eigenvalues ``λ`` at which to evaluate, any shape.
        q: aspect ratio ``Q = N/M ≥ 1``.
        sigma2: the entries' variance ``σ²``.

    Returns:
        The density (units 1/σ²), same shape as ``x``; it integrates to 1. At ``Q = 1`` it diverges as
        ``λ^{-1/2}`` at ``λ = 0``.

    Raises:
        ConfigError: ``q < 1`` or ``sigma2 <= 0``.

    >>> round(float(marchenko_pastur_density(1.0, 1.0)), 12)  # √3/(2π)
    0.275664447711
    """
    lo, hi = marchenko_pastur_edges(q, sigma2)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > lo) & (x < hi)
    safe = np.where(inside, x, 0.5 * (lo + hi))
    value = q / (2 * math.pi * sigma2) * np.sqrt((hi - safe) * (safe - lo)) / safe
    return np.where(inside, value, 0.0)


def marchenko_pastur_cdf(x: np.ndarray | float, q: float, sigma2: float = 1.0) -> np.ndarray:
    """The Marchenko–Pastur distribution function ``F(λ) = ∫_{λ₋}^{λ} ρ``, in closed form.

    With ``r = Q^{-1/2}`` and ``λ = σ²(1 + r² − 2r cos θ)``, ``θ ∈ [0, π]``, the integral of ``ρ`` is

    .. math::  F = \\frac{2}{\\pi}\\left[\\frac{1 + r^2}{4r^2}\\theta + \\frac{\\sin\\theta}{2r}
               - \\frac{1 - r^2}{2r^2} \\arctan\\!\\Big(\\frac{1 + r}{1 - r}\\tan\\frac{\\theta}{2}\\Big)\\right]

    (derived here by the substitution; checked in the tests against numerical quadrature of
    :func:`marchenko_pastur_density`).

    Args:
        x: eigenvalues ``λ``, any shape.
        q: aspect ratio ``Q = N/M ≥ 1``.
        sigma2: the entries' variance ``σ²``.

    Returns:
        ``F(λ)`` in ``[0, 1]``, same shape as ``x`` (0 below ``λ₋``, 1 above ``λ₊``).

    Raises:
        ConfigError: ``q < 1`` or ``sigma2 <= 0``.

    >>> round(float(marchenko_pastur_cdf(1.0, 1.0)), 12)  # Q = 1: F(σ²) = 1/3 + √3/(2π)
    0.608997781044
    """
    lo, hi = marchenko_pastur_edges(q, sigma2)
    r = 1.0 / math.sqrt(q)
    x = np.asarray(x, dtype=np.float64)
    cos = np.clip((1 + r * r - np.clip(x, lo, hi) / sigma2) / (2 * r), -1.0, 1.0)
    theta = np.arccos(cos)
    atan = np.arctan2((1 + r) * np.sin(theta / 2), (1 - r) * np.cos(theta / 2))
    value = (2 / math.pi) * ((1 + r * r) / (4 * r * r) * theta + np.sin(theta) / (2 * r)
                             - (1 - r * r) / (2 * r * r) * atan)
    return np.where(x >= hi, 1.0, np.where(x <= lo, 0.0, np.clip(value, 0.0, 1.0)))


def ks_distance_to_marchenko_pastur(eigenvalues: np.ndarray, q: float, sigma2: float = 1.0) -> float:
    """The Kolmogorov–Smirnov distance between an empirical spectrum and the Marchenko–Pastur law.

    .. math::  D = \\sup_\\lambda \\big|F_M(\\lambda) - F_{\\mathrm{MP}}(\\lambda)\\big|,
               \\qquad F_M(\\lambda) = \\tfrac{1}{M}\\#\\{i : \\lambda_i \\le \\lambda\\}

    Args:
        eigenvalues: the ``M`` eigenvalues of ``X = WᵀW/N``, shape ``(M,)`` (for example from
            :func:`lmech.measure.spectra.esd`).
        q: aspect ratio ``Q = N/M ≥ 1`` of ``W``.
        sigma2: the entries' variance ``σ²`` (not fitted: pass the known or measured variance).

    Returns:
        ``D`` in ``[0, 1]``. For a Gaussian or uniform ``W`` it is ``O(1/M)`` (eigenvalues are rigid), far
        below the ``~1/√M`` of independent samples.

    Raises:
        ConfigError: an empty or non-finite spectrum, ``q < 1`` or ``sigma2 <= 0``.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    require(lam.size >= 1 and bool(np.all(np.isfinite(lam))),
            f"eigenvalues must be a non-empty finite array, got {lam.size} values")
    cdf = marchenko_pastur_cdf(lam, q, sigma2)
    m = lam.size
    above = np.arange(1, m + 1) / m - cdf
    below = cdf - np.arange(m) / m
    return float(max(above.max(), below.max()))
