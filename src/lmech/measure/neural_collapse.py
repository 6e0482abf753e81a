"""Neural collapse: the geometry of last-layer features and classifier in the terminal phase of training.

Papyan, Han, Donoho (2020, *Prevalence of neural collapse during the terminal phase of deep learning
training*, PNAS, arXiv:2008.08186) observe four properties emerge once training error reaches zero and
training continues:

* **NC1** within-class variability collapses: ``Tr(Σ_W Σ_B⁺)/C → 0``;
* **NC2** the centred class means become equinorm and equiangular, a simplex equiangular tight frame
  (pairwise cosine ``−1/(C−1)``);
* **NC3** the classifier's rows align with the centred class means (self-duality);
* **NC4** the classifier's decision becomes the nearest class mean's.

With features ``h_i ∈ ℝ^d`` (the penultimate layer's output), labels ``y_i ∈ {0..C−1}``, class means ``μ_c``,
global mean ``μ_G = (1/C) Σ_c μ_c`` (the mean of class means, as in the paper's balanced setting):

.. math::

    \\Sigma_W = \\frac1n \\sum_i (h_i - \\mu_{y_i})(h_i - \\mu_{y_i})^\\top, \\qquad
    \\Sigma_B = \\frac1C \\sum_c (\\mu_c - \\mu_G)(\\mu_c - \\mu_G)^\\top.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["NeuralCollapse", "neural_collapse"]


@dataclass(frozen=True)
class NeuralCollapse:
    """The neural-collapse observables at one moment (all dimensionless).

    Attributes:
        nc1: ``Tr(Σ_W Σ_B⁺)/C``.
        equinorm_means: ``std_c ‖μ_c − μ_G‖ / mean_c ‖μ_c − μ_G‖``; equinorm_classifier: the same for the
            rows ``w_c`` of the classifier.
        equiangular_means: ``mean_{c≠c'} |cos(μ̃_c, μ̃_c') + 1/(C−1)|`` (0 for a simplex ETF);
            equiangular_classifier: the same for the classifier rows; cos_std_means: ``std_{c≠c'}`` of the
            cosines.
        nc3: ``‖W/‖W‖_F − M̃/‖M̃‖_F‖_F`` with ``M̃`` the ``C × d`` centred class means.
        nc4: fraction of examples whose classifier decision ``argmax_c (w_c·h + b_c)`` differs from the
            nearest class mean ``argmin_c ‖h − μ_c‖``.
        accuracy: fraction of examples the classifier labels correctly.
    """

    nc1: float
    equinorm_means: float
    equinorm_classifier: float
    equiangular_means: float
    equiangular_classifier: float
    cos_std_means: float
    nc3: float
    nc4: float
    accuracy: float


def _off_diagonal_cosines(rows: Tensor) -> Tensor:
    unit = rows / rows.norm(dim=1, keepdim=True)
    cos = unit @ unit.T
    c = len(rows)
    return cos[~torch.eye(c, dtype=torch.bool, device=rows.device)]


def neural_collapse(features, labels, weight, bias=None) -> NeuralCollapse:
    """NC1-NC4 of ``features`` under the linear classifier ``(weight, bias)``.

    Args:
        features: ``h_i``, shape ``(n, d)`` (tensors or NumPy arrays throughout).
        labels: ``y_i``, integers in ``0..C−1``, shape ``(n,)``; every class must occur at least once.
        weight: classifier rows ``w_c``, shape ``(C, d)``; bias: shape ``(C,)`` or ``None``.

    Returns:
        A :class:`NeuralCollapse` (computed in float64).

    Raises:
        ConfigError: mismatched shapes, fewer than 2 classes, a class with no example, non-integer labels,
            non-finite features or weight, a bias not of shape ``(C,)``.

    Source:
        Papyan, Han, Donoho (2020), arXiv:2008.08186, §3 and Figures 4-7 (NC1 as in Fig. 6, NC2 Figs. 4-5 via
        the coefficient of variation of norms and ``|cos + 1/(C−1)|``, NC3 Fig. 7, NC4 Fig. 8).

    A simplex ETF with no within-class spread, classified by its own means:

    >>> c = 3; means = torch.eye(c) - 1.0 / c
    >>> nc = neural_collapse(means.repeat(4, 1), torch.arange(c).repeat(4), means)
    >>> round(nc.nc1, 6), round(nc.equiangular_means, 6), round(nc.nc3, 6), nc.nc4
    (0.0, 0.0, 0.0, 0.0)
    """
    h, w = torch.as_tensor(features).detach().double(), torch.as_tensor(weight).detach().double()
    y = torch.as_tensor(labels).detach()
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ConfigError(f"labels must be integers (class indices), got dtype {y.dtype}; pass labels.long()")
    y = y.long().to(h.device)
    w = w.to(h.device)
    if h.ndim != 2 or y.shape != (len(h),):
        raise ConfigError(f"features must be (n, d) and labels (n,), got {tuple(h.shape)} and {tuple(y.shape)}")
    c = w.shape[0]
    if w.ndim != 2 or w.shape[1] != h.shape[1] or c < 2:
        raise ConfigError(f"weight must be (C, d) with C >= 2 and d = {h.shape[1]}, got {tuple(w.shape)}")
    if bool((y < 0).any() or (y >= c).any()):
        raise ConfigError(f"labels must lie in 0..{c - 1} (the classifier has {c} rows)")
    if not bool(torch.isfinite(h).all()) or not bool(torch.isfinite(w).all()):
        raise ConfigError("features or weight contain NaN or infinite values")
    b = None if bias is None else torch.as_tensor(bias).detach().double().to(h.device)
    if b is not None and b.shape != (c,):
        raise ConfigError(f"bias must have shape ({c},), got {tuple(b.shape)}")
    counts = torch.bincount(y, minlength=c)
    if bool((counts == 0).any()):
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ConfigError(f"classes {missing} have no example; neural collapse needs every class")
    means = torch.zeros(c, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, y, h) / counts[:, None]
    centred = means - means.mean(0)
    within = h - means[y]
    sigma_w = within.T @ within / len(h)
    sigma_b = centred.T @ centred / c
    nc1 = float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)) / c)
    norms_m, norms_w = centred.norm(dim=1), w.norm(dim=1)
    cos_m, cos_w = _off_diagonal_cosines(centred), _off_diagonal_cosines(w)
    nc3 = float((w / w.norm() - centred / centred.norm()).norm())
    logits = h @ w.T + (0 if b is None else b)
    nearest = torch.cdist(h, means).argmin(1)
    decision = logits.argmax(1)
    return NeuralCollapse(
        nc1=nc1,
        equinorm_means=float(norms_m.std() / norms_m.mean()),
        equinorm_classifier=float(norms_w.std() / norms_w.mean()),
        equiangular_means=float((cos_m + 1.0 / (c - 1)).abs().mean()),
        equiangular_classifier=float((cos_w + 1.0 / (c - 1)).abs().mean()),
        cos_std_means=float(cos_m.std()),
        nc3=nc3,
        nc4=float((decision != nearest).double().mean()),
        accuracy=float((decision == y).double().mean()),
    )
