"""Scaling exponents of kernel and linear random-feature regression with power-law spectra.

Take a kernel (or a linear model on Gaussian data) whose eigenvalues decay as ``λ_i ∝ i^(−a)`` and a
target whose power in mode ``i`` decays as ``t_i = v_i² ∝ i^(−b)``, with ``a > 1`` (a trace-class kernel)
and ``b > 1`` (a target of finite power). Then:

* **ridgeless kernel regression on n samples** has test MSE ``∝ n^(−min(b − 1, 2a))``. Eigenlearning
  (:func:`lmech.theory.eigenlearning`) gives ``κ ∝ n^(−a)``; the modes with ``λ_i < κ`` (``i ≳ n``) are
  unlearned and carry ``Σ_{i>n} t_i ∝ n^(1−b)``, the learned ones leave ``Σ_{i<n} t_i κ²/λ_i² ∝
  n^(−2a) Σ_{i<n} i^(2a−b)``, which is ``∝ n^(1−b)`` when ``b − 1 < 2a`` and saturates at ``n^(−2a)``
  otherwise. Spigler, Geiger, Wyart (arXiv:1905.10843); Bordelon, Canatar, Pehlevan (arXiv:2002.02561);
  in the notation of Cui, Loureiro, Krzakala, Zdeborová (arXiv:2105.15004) — eigenvalues ``k^(−α)``,
  source ``r`` with ``b = 1 + 2αr`` — the noiseless rate ``2α min(r, 1)``.
* **linear random features on infinite data**, ``p`` features ``z = F x`` with ``F`` a ``p × M`` standard
  Gaussian matrix and ``x ~ N(0, Λ)``, have the population-optimal test MSE
  ``E_∞ = Σ_i t_i κ/(λ_i + κ)`` with ``Σ_i λ_i/(λ_i + κ) = p`` (the deterministic equivalent of a
  random projection), so ``κ ∝ p^(−a)`` and ``E_∞ ∝ p^(−min(b − 1, a))``: the same split of the modes,
  with one power of ``κ/λ_i`` instead of two. Bach (arXiv:2303.01372); Atanasov, Zavatone-Veth,
  Pehlevan (arXiv:2405.00592); Maloney, Roberts, Sully (arXiv:2210.16859).

The closed forms are the exponents of the *asymptotic* power laws of an infinite spectrum. At finite size
the learning curve bends towards them with corrections that decay like ``size^(−|b − 1 − 2a|)`` (kernel
regression) or ``size^(−|b − 1 − a|)`` (random features), and a spectrum cut at ``M`` modes bends it further
as the size approaches ``M`` (the unlearnable tail beyond ``M`` is missing): over two decades the local slope
can differ from the closed form by 0.1 or more. :func:`loglog_slope` of the theory's own curve at the
measured sizes is the finite-range, finite-``M`` prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import require
from .eigenlearning import _solve_kappa

__all__ = ["SETTINGS", "RandomFeaturePrediction", "loglog_slope", "random_feature_learning_curve", "scaling_exponent"]

SETTINGS = ("samples", "features")


def scaling_exponent(a: float, b: float, setting: str) -> float:
    """The decay exponent ``γ`` of the test MSE, ``E ∝ size^(−γ)``, for power-law spectrum and target.

    .. math::

        \\gamma_{\\text{samples}} = \\min(b - 1,\\ 2a), \\qquad \\gamma_{\\text{features}} = \\min(b - 1,\\ a)

    for eigenvalues ``λ_i ∝ i^(−a)`` and target power ``t_i ∝ i^(−b)``: ``"samples"`` is ridgeless kernel
    regression against the number of samples ``n``, ``"features"`` linear random-feature regression against
    the number of features ``p`` with unlimited data. At ``b − 1 = 2a`` (or ``a``) the rate carries a
    logarithm, ``n^(−2a) log n``.

    Args:
        a: spectral decay, ``> 1`` so that ``Σ_i λ_i`` is finite.
        b: target decay, ``> 1`` so that the target power ``Σ_i t_i`` is finite.
        setting: ``"samples"`` or ``"features"``.

    Returns:
        ``γ > 0``; the log-log slope of the learning curve is ``−γ``.

    Raises:
        ConfigError: for ``a ≤ 1``, ``b ≤ 1`` (either sum diverges) or an unknown ``setting``.

    Source:
        Spigler, Geiger, Wyart (2020), arXiv:1905.10843; Bordelon, Canatar, Pehlevan (2020),
        arXiv:2002.02561, §4; Cui, Loureiro, Krzakala, Zdeborová (2021), arXiv:2105.15004 (rate
        ``2α min(r, 1)`` with ``b = 1 + 2αr``); for features: Bach (2023), arXiv:2303.01372; Maloney, Roberts,
        Sully (2022), arXiv:2210.16859; Atanasov, Zavatone-Veth, Pehlevan (2024), arXiv:2405.00592.

    The target limits the rate until it is smoother than the estimator can exploit:

    >>> scaling_exponent(1.5, 2.0, "samples"), scaling_exponent(1.5, 4.5, "samples")
    (1.0, 3.0)
    >>> scaling_exponent(1.5, 2.0, "features"), scaling_exponent(1.5, 4.5, "features")
    (1.0, 1.5)
    """
    require(setting in SETTINGS, f"setting must be one of {SETTINGS} (kernel regression against n, random "
                                 f"features against p), got {setting!r}")
    require(math.isfinite(a) and a > 1, f"a must be finite and > 1 (the eigenvalues λ_i ∝ i^(−a) must be "
                                        f"summable), got {a!r}; pass a spectral decay above 1")
    require(math.isfinite(b) and b > 1, f"b must be finite and > 1 (the target power t_i ∝ i^(−b) must be "
                                        f"summable), got {b!r}; pass a target decay above 1")
    return float(min(b - 1.0, (2.0 if setting == "samples" else 1.0) * a))


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``.

    Args:
        x, y: positive values, of shape ``(k,)`` with ``k ≥ 2`` and at least two distinct ``x``.

    Raises:
        ConfigError: for arrays of other shapes, fewer than two distinct ``x``, or entries that are not
            finite and positive.

    >>> round(loglog_slope([1, 10, 100], [3.0, 0.3, 0.03]), 12)
    -1.0
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    require(x.ndim == 1 and x.shape == y.shape, f"x and y must be 1-D of one shape, got {x.shape} and {y.shape}")
    require(bool(np.all(np.isfinite(x) & (x > 0) & np.isfinite(y) & (y > 0))),
            "x and y must be finite and > 0 (a log-log slope), got a zero, negative or non-finite entry")
    require(np.unique(x).size >= 2, f"x must hold at least two distinct values, got {x.tolist()}")
    lx, ly = np.log(x), np.log(y)
    lx = lx - lx.mean()
    return float(np.dot(lx, ly - ly.mean()) / np.dot(lx, lx))


@dataclass(frozen=True, kw_only=True)
class RandomFeaturePrediction:
    """The deterministic equivalent of linear random-feature regression at one size.

    Attributes:
        kappa: ``κ > 0`` with ``Σ_i λ_i/(λ_i + κ) = p`` (units of the eigenvalues).
        infinite_data_mse: the population-optimal test MSE ``E_∞ = Σ_i t_i κ/(λ_i + κ)``.
        test_mse: ``E_∞`` times the least-squares factor ``(n − 1)/(n − p − 1)`` for ``n`` samples
            (equal to ``E_∞`` for infinite data).
    """

    kappa: float
    infinite_data_mse: float
    test_mse: float


def random_feature_learning_curve(eigenvalues, target_power, num_features: int,
                                  num_samples: int | None = None) -> RandomFeaturePrediction:
    """Test MSE of least squares on ``p`` linear random features of Gaussian data.

    Data ``x ~ N(0, Λ)`` in ``R^M`` with ``Λ = diag(λ_i)``, target ``y = Σ_i v_i g_i`` with ``x_i = √λ_i g_i``
    and power ``t_i = v_i²``; features ``z = F x`` with ``F`` a ``p × M`` matrix of independent standard
    normals. The best linear predictor on ``z`` leaves ``E_∞(F) = Σ t_i − cᵀ Σ_z⁻¹ c`` (``Σ_z = F Λ Fᵀ``,
    ``c = F Λ^{1/2} v``), whose deterministic equivalent is

    .. math::

        \\sum_i \\frac{\\lambda_i}{\\lambda_i + \\kappa} = p, \\qquad
        \\mathcal{E}_\\infty = \\sum_i t_i \\frac{\\kappa}{\\lambda_i + \\kappa},

    (``Λ^{1/2} Fᵀ Σ_z⁻¹ F Λ^{1/2} ≍ Λ (Λ + κ)⁻¹``, the projection onto the features' span). Ordinary least
    squares on ``n`` samples ``(z, y)``, jointly Gaussian, then has expected test MSE

    .. math::

        \\mathcal{E}_n = \\mathcal{E}_\\infty \\, \\frac{n - 1}{n - p - 1},

    exactly in expectation over the samples: the residual ``y − w_*ᵀ z`` is Gaussian noise of variance
    ``E_∞`` independent of ``z``, and ``E tr((ZᵀZ)⁻¹ Σ_z) = p/(n − p − 1)`` for Gaussian rows. κ is the root
    of eigenlearning's equation with ``p`` in place of ``n`` and no ridge, solved by the same routine as
    :func:`lmech.theory.eigenlearning`.

    Args:
        eigenvalues: ``λ_i ≥ 0``, of shape ``(M,)``.
        target_power: ``t_i ≥ 0``, of shape ``(M,)``.
        num_features: ``p``, an integer with ``1 ≤ p <`` the number of nonzero eigenvalues.
        num_samples: ``n > p + 1``, or ``None`` for infinite data.

    Returns:
        A :class:`RandomFeaturePrediction`.

    Raises:
        ConfigError: for arrays that are not 1-D, of one shape, finite and non-negative; ``p`` not an
            integer ``≥ 1`` or at least the number of nonzero eigenvalues (then the features span every
            mode and ``κ = 0``); ``n ≤ p + 1`` (the least-squares error is infinite).

    Source:
        Bach (2023), "High-dimensional analysis of double descent for linear regression with random
        projections", arXiv:2303.01372; Atanasov, Zavatone-Veth, Pehlevan (2024), "Scaling and
        renormalization in high-dimensional regression", arXiv:2405.00592; Maloney, Roberts, Sully (2022),
        "A solvable model of neural scaling laws", arXiv:2210.16859. The factor ``(n − 1)/(n − p − 1)`` is
        the classical expected risk of Gaussian-design least squares.

    With ``M`` equal eigenvalues the features span a uniformly random ``p``-dimensional subspace, which
    captures the fraction ``p/M`` of an isotropic target on average, leaving ``(1 − p/M) Σ_i t_i``:

    >>> lam = np.full(10, 1.0)
    >>> pred = random_feature_learning_curve(lam, lam, 4)
    >>> round(pred.kappa, 12), round(pred.infinite_data_mse, 12)
    (1.5, 6.0)
    >>> round(random_feature_learning_curve(lam, lam, 4, num_samples=11).test_mse, 12)
    10.0
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    t = np.asarray(target_power, dtype=np.float64)
    require(lam.ndim == 1 and lam.size > 0, f"eigenvalues must be a non-empty 1-D array, got shape {lam.shape}")
    require(bool(np.all(np.isfinite(lam) & (lam >= 0))), "eigenvalues must be finite and >= 0, got a negative or "
                                                         "non-finite entry")
    require(t.shape == lam.shape, f"target_power must have the shape of eigenvalues {lam.shape}, got {t.shape}")
    require(bool(np.all(np.isfinite(t) & (t >= 0))), "target_power must be finite and >= 0 (it is v_i²), got a "
                                                     "negative or non-finite entry")
    num_nonzero = int(np.count_nonzero(lam))
    require(isinstance(num_features, (int, np.integer)) and not isinstance(num_features, bool)
            and 1 <= num_features < num_nonzero,
            f"num_features must be an integer in [1, {num_nonzero}) (below the number of nonzero eigenvalues, "
            f"else the features span every mode), got {num_features!r}; use fewer features or more modes")
    p = int(num_features)
    if num_samples is not None:
        require(isinstance(num_samples, (int, np.integer)) and not isinstance(num_samples, bool)
                and num_samples > p + 1,
                f"num_samples must be an integer > num_features + 1 = {p + 1} (least squares needs n > p + 1 for "
                f"a finite expected error), got {num_samples!r}; use more samples or None for infinite data")
    scale = float(lam.max())
    kappa = _solve_kappa(lam / scale, p, 0.0)
    infinite = float(np.sum(t * kappa / (lam / scale + kappa)))
    factor = 1.0 if num_samples is None else (num_samples - 1) / (num_samples - p - 1)
    return RandomFeaturePrediction(kappa=kappa * scale, infinite_data_mse=infinite, test_mse=infinite * factor)
