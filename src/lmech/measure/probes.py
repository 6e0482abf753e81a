"""Linear probes from activations to targets, scored by held-out R², and the geometry of the subspaces they read.

A probe is the affine map ``ŷ = x W + b`` fitted by (ridge) least squares on a random training split of the
examples; its score is the coefficient of determination on the held-out split. The subspace a probe reads is the
column space of ``W`` (a subspace of activation space); two probes' subspaces are compared by their principal
angles (Björck & Golub 1973) or by the mean squared cosine of those angles.

Belief-state probing regresses the residual stream on the exact belief states of the data-generating HMM
(Shai et al. 2024, arXiv:2405.15943, §3); with a product process, one probe per factor, and orthogonal
subspaces mean a factored representation (Shai, Riechers et al. 2026, arXiv:2602.02385, §4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["LinearProbe", "linear_probe", "principal_angles", "probe_subspace", "r2_score", "subspace_overlap"]


def _matrix(name: str, a, *, allow_1d: bool = False) -> Tensor:
    t = a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
    if allow_1d and t.ndim == 1:
        t = t.unsqueeze(1)
    if t.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (examples × features), got shape {tuple(t.shape)}; "
                          "flatten leading dimensions first (e.g. x.reshape(-1, x.shape[-1]))")
    if t.is_complex():
        raise ConfigError(f"{name} is complex; pass real values")
    t = t.detach().to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{name} has non-finite entries; drop those examples or fix them")
    return t


def r2_score(predictions, targets) -> tuple[float, Tensor]:
    """Coefficient of determination, overall and per target column.

    .. math::  R^2_j = 1 - \\frac{\\sum_i (y_{ij} - \\hat y_{ij})^2}{\\sum_i (y_{ij} - \\bar y_j)^2}, \\qquad
        R^2 = 1 - \\frac{\\sum_{ij} (y_{ij} - \\hat y_{ij})^2}{\\sum_{ij} (y_{ij} - \\bar y_j)^2}

    (the overall score weights targets by their variance, scikit-learn's ``"variance_weighted"``). 1 is a perfect
    fit, 0 is the mean's, and it is negative for worse than the mean.

    Args:
        predictions, targets: shape ``(n, k)`` or ``(n,)``.

    Returns:
        ``(overall, per_target)``, ``per_target`` of shape ``(k,)`` (NaN for a constant target column).

    Raises:
        ConfigError: mismatched shapes, ``n < 2``, or every target column constant.
    """
    yhat, y = _matrix("predictions", predictions, allow_1d=True), _matrix("targets", targets, allow_1d=True)
    if yhat.shape != y.shape:
        raise ConfigError(f"predictions {tuple(yhat.shape)} and targets {tuple(y.shape)} must have the same shape")
    if len(y) < 2:
        raise ConfigError(f"R² needs at least 2 examples, got {len(y)}")
    sse = (y - yhat).square().sum(0)
    sst = (y - y.mean(0)).square().sum(0)
    if float(sst.sum()) <= 0:
        raise ConfigError("every target column is constant on these examples; R² is undefined")
    per = torch.where(sst > 0, 1 - sse / sst.clamp_min(torch.finfo(sst.dtype).tiny), torch.nan)
    return float(1 - sse.sum() / sst.sum()), per


@dataclass(frozen=True)
class LinearProbe:
    """A fitted affine probe ``ŷ = x W + b``.

    Attributes:
        weights: ``W``, shape ``(d, k)``, float64.
        bias: ``b``, shape ``(k,)``.
        r2: held-out R² (variance-weighted over the ``k`` targets).
        r2_per_target: held-out R² per target, shape ``(k,)``.
        train_r2: R² on the training split.
        num_train, num_test: split sizes.
        test_index: indices of the held-out examples, shape ``(num_test,)`` (the rest were fitted).
    """

    weights: Tensor
    bias: Tensor
    r2: float
    r2_per_target: Tensor
    train_r2: float
    num_train: int
    num_test: int
    test_index: Tensor

    def predict(self, activations) -> Tensor:
        """``x W + b`` for activations of shape ``(n, d)``; shape ``(n, k)``."""
        return _matrix("activations", activations) @ self.weights + self.bias


def _fit(x: Tensor, y: Tensor, ridge: float) -> tuple[Tensor, Tensor]:
    """Ridge least squares with an unpenalised intercept: minimise ``(1/n)‖Y − XW − 1b‖² + ridge·‖W‖²``."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    if ridge > 0:
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        w = torch.linalg.solve(xc.T @ xc + len(x) * ridge * eye, xc.T @ yc)
    elif x.device.type == "cpu":  # minimum-norm solution; handles rank-deficient activations
        w = torch.linalg.lstsq(xc, yc, driver="gelsd").solution
    else:  # CUDA's lstsq needs full rank
        w = torch.linalg.pinv(xc) @ yc
    return w, my - mx @ w


def linear_probe(activations, targets, *, test_frac: float = 0.2, ridge: float = 0.0, seed: int = 0) -> LinearProbe:
    """Fit an affine probe from activations to targets on a random split and score it on the held-out rest.

    .. math::  (W, b) = \\arg\\min \\frac1{n_{tr}} \\|Y_{tr} - X_{tr} W - \\mathbf 1 b^\\top\\|_F^2
        + \\lambda \\|W\\|_F^2

    (``λ = ridge``; with ``λ = 0`` the minimum-norm least-squares solution). Solved in float64.

    Args:
        activations: shape ``(n, d)``.
        targets: shape ``(n, k)`` or ``(n,)`` (e.g. belief states, shape ``(n, num_states)``).
        test_frac: held-out fraction in ``(0, 1)``; ``round(test_frac · n)`` examples, at least 2.
        ridge: ``λ ≥ 0``.
        seed: seeds the split (a private generator).

    Returns:
        A :class:`LinearProbe`. Held-out R² ≈ 1 for a linear function of the activations, ≈ 0 (slightly
        negative, about ``−d/n``) for targets independent of them.

    Raises:
        ConfigError: mismatched ``n``, bad ``test_frac`` or ``ridge``, fewer than 2 training or test examples,
            non-finite entries, or a test split whose targets are all constant.

    Source:
        Alain & Bengio (2016), arXiv:1610.01644 (linear probes); Shai et al. (2024), arXiv:2405.15943, §3.
    """
    x, y = _matrix("activations", activations), _matrix("targets", targets, allow_1d=True)
    if len(x) != len(y):
        raise ConfigError(f"activations ({len(x)} rows) and targets ({len(y)} rows) must hold the same examples")
    if not 0 < test_frac < 1:
        raise ConfigError(f"test_frac must be in (0, 1), got {test_frac!r}")
    if not (math.isfinite(ridge) and ridge >= 0):
        raise ConfigError(f"ridge must be finite and ≥ 0, got {ridge!r}")
    n_test = round(test_frac * len(x))
    if n_test < 2 or len(x) - n_test < 2:
        raise ConfigError(f"test_frac = {test_frac} of {len(x)} examples leaves fewer than 2 in a split; "
                          "use more examples or another test_frac")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    te, tr = order[:n_test], order[n_test:]
    w, b = _fit(x[tr], y[tr], ridge)
    r2, per = r2_score(x[te] @ w + b, y[te])
    train_r2 = r2_score(x[tr] @ w + b, y[tr])[0] if float((y[tr] - y[tr].mean(0)).square().sum()) > 0 else math.nan
    return LinearProbe(w, b, r2, per, train_r2, len(tr), len(te), te)


def _basis(name: str, a) -> Tensor:
    """Orthonormal basis of the column space, shape ``(d, rank)``."""
    t = _matrix(name, a, allow_1d=True)
    u, s, _ = torch.linalg.svd(t, full_matrices=False)
    rank = int((s > s[0] * max(t.shape) * torch.finfo(t.dtype).eps).sum()) if s.numel() and s[0] > 0 else 0
    if rank == 0:
        raise ConfigError(f"{name} is zero, so it spans no subspace")
    return u[:, :rank]


def probe_subspace(probe: LinearProbe | Tensor) -> Tensor:
    """Orthonormal basis of the subspace of activation space a probe reads (the column space of ``W``), shape
    ``(d, rank W)``.

    Raises:
        ConfigError: an all-zero ``W``.
    """
    return _basis("probe weights", probe.weights if isinstance(probe, LinearProbe) else probe)


def principal_angles(a, b) -> Tensor:
    """Principal angles ``0 ≤ θ_1 ≤ … ≤ θ_r ≤ π/2`` (radians) between the column spaces of ``a`` and ``b``.

    ``cos θ_i`` are the singular values of ``Q_aᵀ Q_b`` (``Q`` orthonormal bases); small angles are taken from the
    sines, the singular values of ``(I − Q_a Q_aᵀ) Q_b``, which keeps them accurate to machine precision.

    Args:
        a: shape ``(d, k_a)`` (columns span the first subspace; a probe's ``weights``); b: shape ``(d, k_b)``.

    Returns:
        Angles of shape ``(min(rank a, rank b),)``, float64, ascending.

    Raises:
        ConfigError: different ambient dimensions ``d``, or an all-zero matrix.

    Source:
        Björck & Golub (1973), Math. Comp. 27(123), §3; Knyazev & Argentati (2002), SIAM J. Sci. Comput. 23(6),
        §2 (the sine-cosine combination).

    >>> e = torch.eye(3, dtype=torch.float64)
    >>> bool(torch.allclose(principal_angles(e[:, :2], e[:, 1:]), torch.tensor([0.0, math.pi / 2], dtype=torch.float64)))
    True
    """
    qa, qb = _basis("a", a), _basis("b", b)
    if qa.shape[0] != qb.shape[0]:
        raise ConfigError(f"a and b must live in the same space: a has {qa.shape[0]} rows, b {qb.shape[0]}")
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    r = qb.shape[1]
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(0.0, 1.0)  # descending, length r
    sin = torch.linalg.svdvals(qb - qa @ (qa.T @ qb)).clamp(0.0, 1.0).flip(0)[:r]  # ascending
    return torch.where(cos.square() > 0.5, torch.arcsin(sin), torch.arccos(cos))


def subspace_overlap(a, b) -> float:
    """Mean squared cosine of the principal angles, ``‖Q_aᵀ Q_b‖²_F / min(rank a, rank b)`` in ``[0, 1]``: 1 when
    one subspace contains the other, 0 when they are orthogonal; two random ``k``-dimensional subspaces of
    ``R^d`` overlap about ``k/d``.

    Raises:
        ConfigError: as :func:`principal_angles`.
    """
    return float(torch.cos(principal_angles(a, b)).square().mean())
