"""Extreme eigenvalues of a symmetric operator from matrix-vector products.

Two methods, both matrix-free:

* Lanczos with full reorthogonalisation (Lanczos 1950; Golub & Van Loan, *Matrix Computations*,
  4th ed., §10.1): builds an orthonormal Krylov basis ``V`` and the tridiagonal ``T = VᵀHV``; the
  Ritz values of ``T`` converge to the extreme eigenvalues of ``H``. Stops once every requested Ritz
  pair ``(θ, x)`` has residual ``‖Hx − θx‖ = |β_m s_m| ≤ tol·|θ|``, which guarantees an eigenvalue of
  ``H`` within ``tol·|θ|`` of ``θ`` (Bauer–Fike for symmetric matrices).
* Power iteration with deflation, stopped when the Rayleigh quotient changes by less than
  ``tol`` relative (the rule of PyHessian, Yao et al. 2020, arXiv:1912.07145). It finds the
  eigenvalues of largest *magnitude*, which are the largest algebraic ones only when those dominate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from ..errors import ConfigError, NonFiniteError

MatVec = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class EigenResult:
    """Top eigenvalues (descending), their vectors if kept, and what it cost."""

    eigenvalues: Tensor  # (k,), float64
    eigenvectors: Tensor | None  # (k, dim) or None
    num_matvecs: int
    converged: bool


def _start_vector(dim: int, dtype: torch.dtype, device: torch.device, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    return v / v.norm()


def _non_finite() -> NonFiniteError:
    return NonFiniteError(
        "a Hessian-vector product is NaN or infinite: the loss or the parameters are not finite at "
        "this point (has training diverged?); measure at finite parameters"
    )


def _finite(hv: Tensor) -> Tensor:
    if not torch.isfinite(hv).all():
        raise _non_finite()
    return hv


def _validate(k: int, dim: int, num_matvecs: int, tol: float) -> None:
    if not 1 <= k <= dim:
        raise ConfigError(f"k must be between 1 and the number of parameters ({dim}), got {k}")
    if num_matvecs < k:
        raise ConfigError(f"num_matvecs must be >= k={k}, got {num_matvecs}")
    if not tol > 0:
        raise ConfigError(f"tol must be > 0, got {tol}")


def lanczos(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    *,
    num_matvecs: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    return_eigenvectors: bool = False,
    v0: Tensor | None = None,
) -> EigenResult:
    """The ``k`` largest (algebraic) eigenvalues of a symmetric operator by Lanczos.

    Args:
        matvec: ``v ↦ H v`` for vectors of shape ``(dim,)``.
        dim: the operator's size.
        k: how many eigenvalues.
        num_matvecs: the most products to spend (the Krylov dimension).
        tol: relative residual at which a Ritz pair counts as converged (see module docstring).
        seed: seeds the random start vector.
        return_eigenvectors: also return the Ritz vectors, shape ``(k, dim)``.
        v0: a start vector of shape ``(dim,)`` instead of a random one (a warm start, e.g. the top
            eigenvector from a nearby point of training); ``seed`` is then unused.

    Memory: the basis holds ``min(num_matvecs, dim) × dim`` values of ``dtype`` (full
    reorthogonalisation), e.g. 100 × 55,210 float32 ≈ 22 MB for the edge-of-stability network.

    Raises:
        ConfigError: if ``k``, ``num_matvecs`` or ``tol`` are out of range.
        NonFiniteError: if a product is NaN or infinite.
    """
    _validate(k, dim, num_matvecs, tol)
    device = torch.device(device)
    m_max = min(num_matvecs, dim)
    basis = torch.zeros(m_max, dim, dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []
    if v0 is None:
        basis[0] = _start_vector(dim, dtype, device, seed)
    else:
        if v0.shape != (dim,) or not torch.isfinite(v0).all() or float(v0.norm()) == 0.0:
            raise ConfigError(f"v0 must be a finite nonzero vector of shape ({dim},), got shape {tuple(v0.shape)}")
        basis[0] = v0.to(dtype=dtype, device=device) / v0.norm()
    theta = s = None
    converged = False
    for j in range(m_max):
        w = _finite(matvec(basis[j]))
        alphas.append(float(torch.dot(w, basis[j])))
        # Full reorthogonalisation, twice ("twice is enough", Giraud et al. 2005).
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        if not (np.isfinite(alphas[-1]) and np.isfinite(beta)):
            raise _non_finite()  # finite products whose dot products overflow
        theta, s = eigh_tridiagonal(np.array(alphas), np.array(betas)) if j else (np.array(alphas), np.ones((1, 1)))
        breakdown = beta <= 1e-12 * max(abs(theta).max(), 1.0)  # span(basis) is invariant under H
        if j + 1 >= k:
            top = slice(len(theta) - k, len(theta))
            residuals = np.abs(beta * s[-1, top])
            scale = np.maximum(np.abs(theta[top]), np.finfo(np.float64).tiny)
            if np.all(residuals <= tol * scale) or breakdown:
                converged = True
                break
        if j + 1 < m_max:
            if breakdown:
                # Invariant subspace before k Ritz pairs exist (e.g. v0 an exact eigenvector): go on
                # from a fresh direction orthogonal to the basis; T decouples, so its β is 0.
                w = _start_vector(dim, dtype, device, seed + j + 1)
                for _ in range(2):
                    w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
                beta, w = 0.0, w / w.norm()
            else:
                w = w / beta
            betas.append(beta)
            basis[j + 1] = w
    assert theta is not None and s is not None
    m = len(alphas)
    order = np.argsort(theta)[::-1][:k]
    eigenvalues = torch.tensor(theta[order].copy(), dtype=torch.float64)
    vectors = None
    if return_eigenvectors:
        ritz = torch.as_tensor(s[:, order].T.copy(), dtype=dtype, device=device)
        vectors = ritz @ basis[:m]
    return EigenResult(eigenvalues, vectors, m, converged)


def power_iteration(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    *,
    num_matvecs: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    return_eigenvectors: bool = False,
) -> EigenResult:
    """The ``k`` largest-magnitude eigenvalues by power iteration with deflation.

    Each eigenvalue stops when ``|λ_t − λ_{t−1}| / (|λ_{t−1}| + 1e-6) < tol`` (PyHessian's rule) or
    when the budget ``num_matvecs`` (shared by all ``k``) is spent. Arguments as for :func:`lanczos`.
    """
    _validate(k, dim, num_matvecs, tol)
    device = torch.device(device)
    found: list[Tensor] = []
    values: list[float] = []
    used = 0
    converged = True
    for i in range(k):
        v = _start_vector(dim, dtype, device, seed + i)
        budget = num_matvecs - used - (k - i - 1)  # leave at least one product for each later one
        lam_prev = lam = None
        ok = False
        for _ in range(budget):
            for u in found:
                v = v - torch.dot(u, v) * u
            v = v / v.norm()
            hv = _finite(matvec(v))
            used += 1
            lam = float(torch.dot(hv, v))
            if lam_prev is not None and abs(lam - lam_prev) / (abs(lam_prev) + 1e-6) < tol:
                ok = True
                break
            lam_prev = lam
            v = hv
        converged &= ok
        values.append(float(lam))  # type: ignore[arg-type]  # budget >= 1, so lam was set
        found.append(v / v.norm())
    order = np.argsort(values)[::-1]
    eigenvalues = torch.tensor(np.array(values)[order], dtype=torch.float64)
    vectors = torch.stack([found[i] for i in order]) if return_eigenvectors else None
    return EigenResult(eigenvalues, vectors, used, converged)
