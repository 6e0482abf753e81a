"""Eigenlearning: closed-form learning curves of kernel ridge regression (KRR).

Write the kernel in its eigenbasis under the data distribution ``p``,
``K(x, x') = Σ_i λ_i φ_i(x) φ_i(x')`` with ``E_{x~p}[φ_i(x) φ_j(x)] = δ_ij``, the target as
``f(x) = Σ_i v_i φ_i(x)``, and the labels as ``y = f(x) + ε`` with ``ε ~ N(0, σ²)``. KRR with ridge ``δ``
on ``n`` samples predicts ``f̂(x) = K(x, X) (K(X, X) + δ I_n)^{-1} y`` (note: ``δ`` multiplies the
identity next to the *unnormalised* Gram matrix, i.e. the sum-over-samples convention).

Simon, Dickens, Karkada and DeWeese (2021, arXiv:2110.03922, "The Eigenlearning Framework", §4,
eqs. (6)-(12) of the TMLR version) estimate, for large ``n``:

* the effective regularisation ``κ > 0`` from  ``Σ_i λ_i/(λ_i + κ) + δ/κ = n``;
* the learnability of mode ``i``, ``L_i = λ_i/(λ_i + κ)``, which obeys the conservation law
  ``Σ_i L_i = n`` at ``δ = 0``;
* the overfitting coefficient ``E_0 = n / (n − Σ_i L_i²)``;
* the test MSE against *noisy* test labels ``E_te = E_0 (Σ_i (1 − L_i)² v_i² + σ²)``;
* the train MSE ``E_tr = (δ / (n κ))² E_te``.

The same estimate in the notation of Bordelon, Canatar and Pehlevan (2020, arXiv:2002.02561, eqs.
(4)-(5) / Canatar et al. 2021, arXiv:2006.13198) is implemented independently in
:func:`bcp_learning_curve`; their ``κ_BCP = n κ`` and ``γ = Σ_i L_i² / n``, so ``E_0 = 1/(1 − γ)``,
and their generalisation error is measured against the *clean* target, ``E_g = E_te − σ²``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..config import require

__all__ = [
    "BCPPrediction", "EigenlearningPrediction", "FinitePopulationPrediction", "bcp_learning_curve", "eigenlearning",
    "finite_population_eigenlearning",
]


@dataclass(frozen=True, kw_only=True)
class EigenlearningPrediction:
    """The eigenlearning estimate for one training-set size.

    Attributes:
        kappa: effective regularisation ``κ`` (units of the eigenvalues), ``≥ 0``.
        learnability: ``L_i = λ_i/(λ_i + κ)``, of shape ``(M,)``, each in ``[0, 1]``.
        e0: overfitting coefficient ``E_0 = n/(n − Σ_i L_i²) ≥ 1``.
        test_mse: expected test MSE against noisy labels, ``E_0 (Σ_i (1−L_i)² v_i² + σ²)``.
        train_mse: expected train MSE (mean over the ``n`` samples), ``(δ/(nκ))² E_te``.
    """

    kappa: float
    learnability: np.ndarray
    e0: float
    test_mse: float
    train_mse: float


@dataclass(frozen=True, kw_only=True)
class BCPPrediction:
    """The Bordelon–Canatar–Pehlevan estimate for one training-set size.

    Attributes:
        kappa: their effective regularisation ``κ_BCP`` (equal to ``n κ`` of :func:`eigenlearning`).
        gamma: ``γ = Σ_i n λ_i² / (n λ_i + κ_BCP)²`` in ``[0, 1)``.
        gen_error: generalisation error against the clean target, ``E_g``.
    """

    kappa: float
    gamma: float
    gen_error: float


def _validate(eigenvalues, target_coeffs, n, ridge, noise_var) -> tuple[np.ndarray, np.ndarray, int, float, float]:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    v = np.asarray(target_coeffs, dtype=np.float64)
    require(lam.ndim == 1 and lam.size > 0, f"eigenvalues must be a non-empty 1-D array, got shape {lam.shape}")
    require(bool(np.all(np.isfinite(lam))), "eigenvalues must be finite, got a NaN or inf entry")
    require(bool(np.all(lam >= 0)), f"eigenvalues must be >= 0 (a kernel is PSD), got min {lam.min()!r}")
    require(v.shape == lam.shape, f"target_coeffs must have the shape of eigenvalues {lam.shape}, got {v.shape}")
    require(bool(np.all(np.isfinite(v))), "target_coeffs must be finite, got a NaN or inf entry")
    require(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1,
        f"n (number of training samples) must be an integer >= 1, got {n!r}",
    )
    require(np.isfinite(ridge) and ridge >= 0, f"ridge must be finite and >= 0, got {ridge!r}")
    require(np.isfinite(noise_var) and noise_var >= 0, f"noise_var must be finite and >= 0, got {noise_var!r}")
    num_nonzero = int(np.count_nonzero(lam))
    require(
        ridge > 0 or n < num_nonzero,
        f"with ridge=0 the eigenlearning equation needs n < number of nonzero eigenvalues ({num_nonzero}), "
        f"got n={n}: the interpolating solution then has kappa=0 and E_0 diverges; "
        "pass ridge > 0 or more (nonzero) eigenvalues",
    )
    return lam, v, int(n), float(ridge), float(noise_var)


def _solve_kappa(lam: np.ndarray, n: int, ridge: float) -> float:
    """Root of ``Σ λ/(λ+κ) + δ/κ − n``, strictly decreasing in κ, by Brent's method on ``log κ``."""

    def excess(log_kappa: float) -> float:
        kappa = np.exp(log_kappa)
        return float(np.sum(lam / (lam + kappa)) + ridge / kappa - n)

    # Upper end: Σλ/(λ+κ) + δ/κ <= (Σλ + δ)/κ, which is n/2 at κ = 2(Σλ + δ)/n.
    hi = np.log(2.0 * (lam.sum() + ridge) / n)
    if ridge > 0:
        lo = np.log(ridge / (2.0 * n))  # δ/κ = 2n there
    else:
        # Every nonzero term is >= 1/(1+ε) at κ = ε λ_min⁺; with ε = (N−n)/(2n) the sum exceeds n.
        num_nonzero = np.count_nonzero(lam)
        lo = np.log(lam[lam > 0].min() * (num_nonzero - n) / (2.0 * n))
    lo = min(lo, hi - 1.0)
    log_kappa = brentq(excess, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    return float(np.exp(log_kappa))


def eigenlearning(
    eigenvalues: np.ndarray,
    target_coeffs: np.ndarray,
    n: int,
    *,
    ridge: float = 0.0,
    noise_var: float = 0.0,
) -> EigenlearningPrediction:
    """Eigenlearning estimate of KRR's effective regularisation, learnabilities, test and train MSE.

    .. math::

        \\sum_i \\frac{\\lambda_i}{\\lambda_i + \\kappa} + \\frac{\\delta}{\\kappa} = n, \\qquad
        \\mathcal{L}_i = \\frac{\\lambda_i}{\\lambda_i + \\kappa}, \\qquad
        \\mathcal{E}_0 = \\frac{n}{n - \\sum_i \\mathcal{L}_i^2},

        \\mathcal{E}_{te} = \\mathcal{E}_0 \\Big(\\sum_i (1 - \\mathcal{L}_i)^2 v_i^2 + \\sigma^2\\Big), \\qquad
        \\mathcal{E}_{tr} = \\Big(\\frac{\\delta}{n\\kappa}\\Big)^2 \\mathcal{E}_{te}.

    Normalisation: ``λ_i`` are eigenvalues of the kernel *integral operator* under the data distribution
    (eigenfunctions orthonormal in ``L²(p)``), ``v_i`` the target's coefficients in that basis, and the
    ridge ``δ`` is added to the unnormalised ``n × n`` Gram matrix. The test MSE is against noisy test
    labels (so it includes ``σ²``); the train MSE is the mean over the ``n`` training samples.
    κ is found by Brent's method on ``log κ`` (the left side is strictly decreasing in κ); each
    evaluation is one vectorised pass over the eigenvalues.

    Args:
        eigenvalues: kernel eigenvalues ``λ_i ≥ 0``, of shape ``(M,)``.
        target_coeffs: target coefficients ``v_i``, of shape ``(M,)``.
        n: number of training samples, an integer ``≥ 1``.
        ridge: ridge ``δ ≥ 0``.
        noise_var: label-noise variance ``σ² ≥ 0``.

    Returns:
        An :class:`EigenlearningPrediction`.

    Raises:
        ConfigError: for non-1-D, negative or non-finite eigenvalues; ``target_coeffs`` of another
            shape; ``n < 1``; negative ``ridge`` or ``noise_var``; or ``ridge = 0`` with ``n`` at least
            the number of nonzero eigenvalues (then the interpolating solution has ``κ = 0`` and the
            estimate degenerates — add a ridge or more modes).

    Source:
        Simon, Dickens, Karkada, DeWeese (2021), "The Eigenlearning Framework: A Conservation Law
        Perspective on Kernel Regression and Wide Neural Networks", arXiv:2110.03922, §4 (κ, learnability,
        E_0, test and train MSE).

    With two equal modes and ``n = 1`` the conservation law gives ``L = 1/2`` each, so κ = λ:

    >>> p = eigenlearning([1.0, 1.0], [1.0, 0.0], 1)
    >>> round(p.kappa, 12), p.learnability.round(12).tolist(), round(p.e0, 12), round(p.test_mse, 12)
    (1.0, [0.5, 0.5], 2.0, 0.5)
    """
    lam, v, n, ridge, noise_var = _validate(eigenvalues, target_coeffs, n, ridge, noise_var)
    # The equation is invariant under (λ, κ, δ) → c(λ, κ, δ): solve at scale max λ = 1, so that sums
    # cannot overflow (λ ~ 1e308) and the bracket is well placed whatever the units.
    scale = float(lam.max()) if lam.max() > 0 else 1.0
    lam, ridge_s = lam / scale, ridge / scale
    kappa = _solve_kappa(lam, n, ridge_s)
    learnability = lam / (lam + kappa)
    unlearned = kappa / (lam + kappa)  # 1 − L_i without cancellation
    # n − Σ L_i² = Σ L_i (1 − L_i) + δ/κ by the κ equation: no cancellation when Σ L_i² → n.
    e0 = n / (float(np.sum(learnability * unlearned)) + ridge_s / kappa)
    test_mse = e0 * (float(np.sum(unlearned**2 * v**2)) + noise_var)
    train_mse = (ridge_s / (n * kappa)) ** 2 * test_mse
    return EigenlearningPrediction(kappa=kappa * scale, learnability=learnability, e0=e0, test_mse=test_mse,
                                   train_mse=train_mse)


def bcp_learning_curve(
    eigenvalues: np.ndarray,
    target_coeffs: np.ndarray,
    n: int,
    *,
    ridge: float = 0.0,
    noise_var: float = 0.0,
) -> BCPPrediction:
    """The Bordelon–Canatar–Pehlevan learning curve of KRR (the same estimate, their notation).

    .. math::

        \\kappa = \\delta + \\kappa \\sum_i \\frac{\\lambda_i}{n\\lambda_i + \\kappa}, \\qquad
        \\gamma = \\sum_i \\frac{n\\lambda_i^2}{(n\\lambda_i + \\kappa)^2},

        E_g = \\frac{1}{1 - \\gamma} \\sum_i \\frac{\\kappa^2 v_i^2}{(n\\lambda_i + \\kappa)^2}
              + \\frac{\\gamma}{1 - \\gamma} \\sigma^2 .

    Same normalisation and arguments as :func:`eigenlearning`; here ``κ`` is solved by Newton's method
    on ``h(κ) = κ (1 − Σ_i λ_i/(nλ_i + κ)) − δ``, which is increasing and convex (``h' = 1 − γ``)
    above the root, started at ``κ = δ + Σ_i λ_i`` where ``h ≥ 0`` so the iterates fall monotonically.
    ``E_g`` is against the clean target: ``E_g = E_te − σ²`` of :func:`eigenlearning`.

    Args:
        eigenvalues: kernel eigenvalues ``λ_i ≥ 0``, of shape ``(M,)``.
        target_coeffs: target coefficients ``v_i`` (their ``\\bar w_i``-weighted target power ``v_i²``),
            of shape ``(M,)``.
        n: number of training samples, an integer ``≥ 1``.
        ridge: ridge ``δ ≥ 0`` (their ``λ``).
        noise_var: label-noise variance ``σ² ≥ 0``.

    Returns:
        A :class:`BCPPrediction`.

    Raises:
        ConfigError: as :func:`eigenlearning`.

    Source:
        Bordelon, Canatar, Pehlevan (2020), "Spectrum Dependent Learning Curves in Kernel Regression and
        Wide Neural Networks", arXiv:2002.02561, eqs. (4)-(5); noise term from Canatar, Bordelon,
        Pehlevan (2021), arXiv:2006.13198, eq. (4).
    """
    lam, v, n, ridge, noise_var = _validate(eigenvalues, target_coeffs, n, ridge, noise_var)
    kappa = ridge + float(lam.sum())
    for _ in range(1000):
        denom = n * lam + kappa
        h = kappa * (1.0 - float(np.sum(lam / denom))) - ridge
        gamma = float(np.sum(n * lam**2 / denom**2))
        step = h / (1.0 - gamma)
        kappa_new = max(kappa - step, 0.5 * kappa)  # never overshoot through 0 (guards round-off)
        converged = abs(kappa_new - kappa) <= 1e-15 * kappa
        kappa = kappa_new
        if converged:
            break
    denom = n * lam + kappa
    gamma = float(np.sum(n * lam**2 / denom**2))
    gen_error = (float(np.sum(kappa**2 * v**2 / denom**2)) + gamma * noise_var) / (1.0 - gamma)
    return BCPPrediction(kappa=kappa, gamma=gamma, gen_error=gen_error)


@dataclass(frozen=True)
class FinitePopulationPrediction:
    """The finite-population estimate for one training-set size (fields as in
    :class:`EigenlearningPrediction`; noiseless target, so no noise term and no train MSE)."""

    kappa: float
    learnability: np.ndarray
    e0: float
    test_mse: float


def finite_population_eigenlearning(eigenvalues: np.ndarray, target_coeffs: np.ndarray, n: int, *, ridge: float,
                                 population_size: int) -> FinitePopulationPrediction:
    """Eigenlearning for ``n`` points drawn *without* replacement from a population of ``N`` points.

    .. math::

        \\sum_i \\mathcal{L}_i + \\frac{\\delta}{\\kappa}\\Big(1 - \\frac{\\sum_i \\mathcal{L}_i}{N}\\Big) = n,
        \\qquad
        \\mathcal{E}_0 = \\frac{n - s \\sum_i \\mathcal{L}_i / N}
                              {n - \\sum_i \\mathcal{L}_i^2 - s \\sum_i \\mathcal{L}_i (1 - \\mathcal{L}_i) / N},
        \\quad s = \\delta/\\kappa,

    with ``L_i = λ_i/(λ_i + κ)`` and test MSE ``E_0 Σ_i (1 − L_i)² v_i²`` (noiseless target). The κ equation
    is eigenlearning's with the effective ridge ``δ' = δ (1 − Σ L_i / N)``, solved by Brent's method on
    ``δ' ∈ (δ(1 − n/N), δ)`` with :func:`lmech.theory.eigenlearning` inside. At ``δ = 0`` this *is*
    eigenlearning's estimate, for any ``N``.

    Derivation (not from the references): with the eigenfunctions rotationally invariant, the design
    ``M = Φ_Xᵀ Φ_X`` of ``n`` distinct rows is ``N`` times a rank-``n`` projection; subordination for the free
    multiplicative convolution gives ``(Λ^{1/2} M Λ^{1/2} + D)^{-1} ≍ (sΛ + D)^{-1}`` with
    ``s = 1/S_M(−Σ_i sλ_i(sλ_i + D_i)^{-1}/N)``, ``D = δ − tΛ``, and ``E_0 = 1 − ∂s/∂t`` at ``t = 0``. The
    Wishart S-transform recovers eigenlearning (arXiv:2110.03922, §4); the projection's gives the above.
    Checked against simulation at ``n/N`` up to 3/4 (tests/laws/test_eigenlearning_law.py) and exact for
    the identity kernel (below); lmech's extension, used by the ``eigenlearning`` law on the digits.

    Args:
        eigenvalues: ``λ_i ≥ 0`` of ``K/N``, of shape ``(N,)``.
        target_coeffs: ``v_i``, of shape ``(N,)``.
        n: training-set size, ``1 ≤ n < N``.
        ridge: ``δ ≥ 0`` added to ``K(X, X)``.
        population_size: ``N``.

    Raises:
        ConfigError: as :func:`lmech.theory.eigenlearning`, or if ``population_size`` is not an
            integer at least the number of eigenvalues, or ``n ≥ N``.

    When the kernel is the identity (``λ_i = 1/N``), KRR returns ``f/(1 + δ)`` on the sampled points and 0
    elsewhere, so the test MSE is exactly ``(n/N)(δ/(1 + δ))² + 1 − n/N`` for ``mean f² = 1``; so is the
    estimate, where eigenlearning's is 16 % too high at ``n/N = 0.8, δ = 2``:

    >>> lam, v = np.full(100, 0.01), np.full(100, 0.1)
    >>> round(finite_population_eigenlearning(lam, v, 80, ridge=2.0, population_size=100).test_mse, 12)
    0.555555555556
    >>> round(0.8 * (2 / 3) ** 2 + 0.2, 12), round(eigenlearning(lam, v, 80, ridge=2.0).test_mse, 3)
    (0.555555555556, 0.643)
    """
    lam, v, n, ridge, _ = _validate(eigenvalues, target_coeffs, n, ridge, 0.0)
    require(
        isinstance(population_size, (int, np.integer)) and not isinstance(population_size, bool)
        and population_size >= lam.size,
        f"population_size must be an integer at least the number of eigenvalues ({lam.size}), got {population_size!r}",
    )
    require(n < population_size, f"n must be below the population size {population_size}, got n={n}")
    if ridge == 0:
        p = eigenlearning(eigenvalues, target_coeffs, n)
        return FinitePopulationPrediction(p.kappa, p.learnability, p.e0, p.test_mse)

    def excess(effective_ridge: float) -> float:
        learn = eigenlearning(eigenvalues, target_coeffs, n, ridge=effective_ridge).learnability
        return effective_ridge - ridge * (1.0 - learn.sum() / population_size)

    effective = brentq(excess, ridge * (1.0 - n / population_size), ridge, xtol=1e-15 * ridge, rtol=1e-13)
    p = eigenlearning(eigenvalues, target_coeffs, n, ridge=effective)
    learn, s = p.learnability, ridge / p.kappa
    unlearned = p.kappa / (lam + p.kappa)
    df, spread = float(learn.sum()), float(np.sum(learn * unlearned))  # Σ L_i, Σ L_i (1 − L_i)
    # n − Σ L_i² = Σ L_i (1 − L_i) + δ'/κ for the effective ridge δ' that κ solves (no cancellation).
    e0 = (n - s * df / population_size) / (spread + effective / p.kappa - s * spread / population_size)
    test_mse = e0 * float(np.sum(unlearned**2 * v**2))
    return FinitePopulationPrediction(p.kappa, learn, e0, test_mse)
