"""How activations hold several belief states: the subspace each factor is written into, the dimension the beliefs
occupy, and how often random subspaces would look as orthogonal.

For a product of independent processes the joint belief is ``η = η^{(1)} ⊗ ⋯ ⊗ η^{(F)}``. A representation linear in
the joint belief spans up to ``Π_f s_f − 1`` dimensions (``s_f`` hidden states of factor ``f``); a *factored* one,
linear in the factor beliefs side by side, spans ``Σ_f (s_f − 1)``, one subspace per factor (Shai, Riechers et al.
2026, arXiv:2602.02385, §3). The functions here measure which of the two a set of activations is:

* :func:`simplex_coordinates` — beliefs in an orthonormal basis of the simplex's tangent space (``s − 1``
  coordinates, no redundant column), so regressions on them are full rank;
* :func:`factor_encodings` — the directions activations move along with each factor's belief, from one least-squares
  regression of the activations on all factors' coordinates (an encoding model, the reverse of a probe);
* :func:`explained_dimension` — the number of principal components of the part of the activations that is linear in
  a target (e.g. the joint belief) needed to reach a fraction of its variance;
* :func:`variance_dimension` — the same for the activations themselves;
* :func:`chance_of_orthogonality` — the probability that uniformly random subspaces of an ambient space have every
  principal angle at least as large as a measured one (in high dimension random subspaces are nearly orthogonal,
  so an angle means little without it).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["chance_of_orthogonality", "explained_dimension", "factor_encodings", "simplex_coordinates",
           "variance_dimension"]


def _rows(name: str, a) -> Tensor:
    t = torch.as_tensor(a).to(torch.float64)
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 1:
        raise ConfigError(f"{name} must have shape (n, d) with n ≥ 2 and d ≥ 1, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{name} contains NaN or inf")
    return t


def _fraction(frac: float) -> float:
    if not (isinstance(frac, (int, float)) and 0 < frac <= 1):
        raise ConfigError(f"frac must be a variance fraction in (0, 1], got {frac!r}")
    return float(frac)


def simplex_coordinates(p) -> Tensor:
    """Coordinates of probability vectors in an orthonormal basis of ``{v : Σ_i v_i = 0}``.

    ``c = (p − 1/s) Q`` with ``Q`` of shape ``(s, s − 1)``, orthonormal columns orthogonal to ``1`` (the Helmert
    basis), so distances and angles in the simplex are kept and the ``s`` columns that sum to 1 become ``s − 1``
    independent ones.

    Args:
        p: shape ``(..., s)``, ``s ≥ 2``.

    Returns:
        Shape ``(..., s − 1)``, float64.

    Raises:
        ConfigError: fewer than 2 categories.
    """
    p = torch.as_tensor(p).to(torch.float64)
    s = p.shape[-1] if p.ndim else 0
    if s < 2:
        raise ConfigError(f"probability vectors need at least 2 entries in the last dimension, got shape {tuple(p.shape)}")
    q = torch.zeros(s, s - 1, dtype=torch.float64)
    for j in range(1, s):  # column j−1: (1, …, 1, −j, 0, …) / √(j(j+1))
        q[:j, j - 1] = 1.0
        q[j, j - 1] = -j
        q[:, j - 1] /= math.sqrt(j * (j + 1))
    return (p - 1.0 / s) @ q


def _lstsq(z: Tensor, x: Tensor) -> Tensor:
    """Least squares ``B = argmin ‖(x − x̄) − (z − z̄) B‖``, shape ``(k, d)``."""
    return torch.linalg.lstsq(z - z.mean(0), x - x.mean(0), driver="gelsd").solution


def factor_encodings(activations, factors) -> list[Tensor]:
    """The directions activations move along with each factor's belief.

    Regress the activations on every factor's coordinates at once, ``x − x̄ ≈ Σ_f (c_f − c̄_f) B_f``, and return
    ``B_fᵀ`` (shape ``(d, k_f)``) per factor: its columns span the subspace factor ``f`` is written into. Because
    the factors are fitted jointly, a direction shared by two factors is not counted twice.

    Args:
        activations: shape ``(n, d)``.
        factors: sequence of per-factor coordinates (e.g. :func:`simplex_coordinates` of the beliefs), each of shape
            ``(n, k_f)``.

    Returns:
        A list of ``(d, k_f)`` float64 matrices, one per factor.

    Raises:
        ConfigError: no factors, mismatched ``n``, non-finite entries, or more regressors than examples.
    """
    x = _rows("activations", activations)
    zs = [_rows(f"factors[{i}]", z) for i, z in enumerate(factors)]
    if not zs:
        raise ConfigError("factors must hold at least one (n, k) matrix of coordinates")
    if any(len(z) != len(x) for z in zs):
        raise ConfigError(f"every factor must have the activations' {len(x)} rows, got {[len(z) for z in zs]}")
    z = torch.cat(zs, dim=1)
    if z.shape[1] >= len(x):
        raise ConfigError(f"{z.shape[1]} regressors need more than {len(x)} examples")
    b = _lstsq(z, x)
    return [part.T for part in b.split([zi.shape[1] for zi in zs], dim=0)]


def _pca_fractions(x: Tensor) -> Tensor:
    var = torch.linalg.svdvals(x - x.mean(0)).square()
    total = var.sum()
    if total <= 0:
        raise ConfigError("the activations do not vary, so they occupy no dimension")
    return var.cumsum(0) / total


def _count(fractions: Tensor, frac: float) -> int:
    return int((fractions < frac - 1e-12).sum()) + 1


def variance_dimension(x, frac: float = 0.95) -> tuple[int, Tensor]:
    """The smallest number of principal components holding ``frac`` of the variance of ``x``.

    Args:
        x: shape ``(n, d)``.
        frac: in ``(0, 1]``.

    Returns:
        ``(D, fractions)``: ``D`` and the cumulative variance fractions of the components, shape ``(min(n, d),)``.

    Raises:
        ConfigError: bad shape, non-finite entries, ``frac`` out of range, or constant ``x``.
    """
    fractions = _pca_fractions(_rows("x", x))
    return _count(fractions, _fraction(frac)), fractions


def explained_dimension(activations, targets, frac: float = 0.95) -> tuple[int, Tensor, float]:
    """The dimension of the part of the activations that is linear in the targets.

    Fit ``x̂ = (t − t̄) B`` by least squares and count the principal components of ``x̂`` needed for ``frac`` of its
    variance. With the joint belief of a product process as targets, ``x̂`` is the most general representation
    linear in the joint belief: a factored representation gives ``Σ_f (s_f − 1)`` components, a joint one up to
    ``Π_f s_f − 1`` (Shai, Riechers et al. 2026, arXiv:2602.02385, §3); components the activations hold that are not
    linear in the beliefs (position, noise) do not enter.

    Args:
        activations: shape ``(n, d)``.
        targets: shape ``(n, k)``; pass independent coordinates (:func:`simplex_coordinates`).
        frac: in ``(0, 1]``.

    Returns:
        ``(D, fractions, r2)``: the dimension, the cumulative variance fractions of ``x̂``'s components, and the share
        of the activations' variance that ``x̂`` explains.

    Raises:
        ConfigError: bad shapes or values, or activations with no part linear in the targets.
    """
    x, t = _rows("activations", activations), _rows("targets", targets)
    if len(x) != len(t):
        raise ConfigError(f"activations ({len(x)} rows) and targets ({len(t)} rows) must hold the same examples")
    fit = (t - t.mean(0)) @ _lstsq(t, x)
    fractions = _pca_fractions(fit)
    r2 = float(fit.square().sum() / (x - x.mean(0)).square().sum())
    return _count(fractions, _fraction(frac)), fractions, r2


def chance_of_orthogonality(dims: tuple[int, int], ambient: int, angle: float, *, num_draws: int = 20_000,
                            seed: int = 0) -> float:
    """Probability that two independent uniformly random subspaces of ``R^ambient``, of dimensions ``dims``, have
    every principal angle ≥ ``angle`` (radians), by Monte Carlo over ``num_draws`` pairs.

    Closed forms it matches: two random lines in ``R²`` make a uniform angle on ``[0, π/2]`` (probability
    ``1 − 2θ/π``); in ``R³`` the cosine of their angle is uniform on ``[0, 1]`` (probability ``cos θ``).

    When ``sum(dims) > ambient`` the subspaces always share a direction and the probability is 0 for any
    ``angle > 0``.

    Raises:
        ConfigError: a dimension below 1 or above ``ambient``, ``angle`` outside ``[0, π/2]``, or ``num_draws < 1``.
    """
    a, b = dims
    if not (all(isinstance(v, int) and v >= 1 for v in (a, b, ambient)) and max(a, b) <= ambient):
        raise ConfigError(f"dims {dims} and ambient {ambient} must be integers ≥ 1 with each dim ≤ ambient")
    if not 0 <= angle <= math.pi / 2:
        raise ConfigError(f"angle must be in [0, π/2] radians, got {angle!r}")
    if not (isinstance(num_draws, int) and num_draws >= 1):
        raise ConfigError(f"num_draws must be an integer ≥ 1, got {num_draws!r}")
    gen = torch.Generator().manual_seed(seed)
    qa = torch.linalg.qr(torch.randn(num_draws, ambient, a, generator=gen, dtype=torch.float64))[0]
    qb = torch.linalg.qr(torch.randn(num_draws, ambient, b, generator=gen, dtype=torch.float64))[0]
    largest_cos = torch.linalg.svdvals(qa.transpose(1, 2) @ qb)[:, 0]
    return float((largest_cos <= math.cos(angle) + 1e-12).double().mean())

