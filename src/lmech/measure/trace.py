"""Stochastic estimates of the Hessian trace ``tr(∇²L)``.

* Hutchinson (1989): ``tr(H) ≈ (1/m) Σ_j z_jᵀ H z_j`` with Rademacher ``z_j``; unbiased, variance
  ``2(‖H‖_F² − Σ_i H_ii²)/m``.
* Hutch++ (Meyer, Musco, Musco, Woodruff 2021, *Hutch++: Optimal Stochastic Trace Estimation*,
  arXiv:2010.09649, Algorithm 1): spend a third of the products on a sketch ``Q = orth(H S)``, take
  ``tr(QᵀHQ)`` exactly and Hutchinson on the rest ``(I − QQᵀ)H(I − QQᵀ)``; error ``O(1/m)`` instead of
  ``O(1/√m)`` when the spectrum decays.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .hessian import Data, HessianOperator, LossFn

METHODS = ("hutchinson", "hutch++")


def _rademacher(n: int, dim: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> Tensor:
    signs = torch.randint(0, 2, (n, dim), generator=gen).to(dtype=dtype, device=device)
    return 2 * signs - 1


def _apply(op: HessianOperator, vectors: Tensor) -> Tensor:
    """``H`` applied to each row of ``vectors`` (shape ``(n, num_params)``)."""
    return torch.stack([op.matvec(v) for v in vectors]) if len(vectors) else vectors.clone()


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    method: str = "hutch++",
    num_matvecs: int = 99,
    seed: int = 0,
    allow_train_mode: bool = False,
) -> float:
    """Estimate the trace of the Hessian of the mean loss over ``data``.

    .. math::  \\operatorname{tr}\\, \\nabla^2_\\theta \\tfrac1N\\textstyle\\sum_i \\ell(f_\\theta(x_i), y_i)

    Args:
        model, loss_fn, data: as for :func:`lmech.measure.hessian_eigenvalues`.
        method: ``"hutch++"`` (default) or ``"hutchinson"``.
        num_matvecs: the number of Hessian-vector products (Hutch++ uses ``3⌊m/3⌋`` of them).
        seed: seeds the random probe vectors.

    Returns:
        The estimate (unbiased for both methods), a float in the loss's units per parameter².

    Raises:
        ConfigError: unknown method, or ``num_matvecs`` below 1 (Hutchinson) or 3 (Hutch++).
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    minimum = 3 if method == "hutch++" else 1
    if num_matvecs < minimum:
        raise ConfigError(f"num_matvecs must be >= {minimum} for {method}, got {num_matvecs}")
    op = HessianOperator(model, loss_fn, data, allow_train_mode=allow_train_mode)
    gen = torch.Generator().manual_seed(seed)
    dim, dtype, device = op.num_params, op.dtype, op.device
    with torch.no_grad():
        if method == "hutchinson":
            z = _rademacher(num_matvecs, dim, gen, dtype, device)
            return float((z * _apply(op, z)).sum() / num_matvecs)
        m3 = min(num_matvecs // 3, dim)
        sketch = _rademacher(m3, dim, gen, dtype, device)
        q, _ = torch.linalg.qr(_apply(op, sketch).T)  # (dim, m3), orthonormal columns
        exact = float((q.T * _apply(op, q.T)).sum())
        n_rest = num_matvecs // 3
        g = _rademacher(n_rest, dim, gen, dtype, device)
        g = g - (g @ q) @ q.T
        return exact + float((g * _apply(op, g)).sum() / n_rest)
