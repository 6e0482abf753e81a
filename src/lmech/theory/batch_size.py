"""The steps–examples trade-off of large-batch training (McCandlish et al. 2018, arXiv:1812.06162).

With the learning rate tuned at every batch size ``B``, the number of optimizer steps ``S`` and of
examples ``E = B S`` needed to reach a given loss follow (their eq. (2.11))

.. math::

    \\Big(\\frac{S}{S_{min}} - 1\\Big)\\Big(\\frac{E}{E_{min}} - 1\\Big) = 1
    \\quad\\Longleftrightarrow\\quad
    S = S_{min}\\Big(1 + \\frac{B_{crit}}{B}\\Big), \\qquad
    E = E_{min}\\Big(1 + \\frac{B}{B_{crit}}\\Big), \\qquad B_{crit} = \\frac{E_{min}}{S_{min}},

so that below the critical batch size ``B_crit`` doubling ``B`` halves the steps at no cost in examples,
and above it doubling ``B`` doubles the examples and saves few steps. Their model predicts
``B_crit ≈ B_noise`` (or ``B_simple``) measured at that loss (:mod:`lmech.measure.noise_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from ..config import require

__all__ = ["TradeoffFit", "fit_steps_examples_tradeoff"]


@dataclass(frozen=True)
class TradeoffFit:
    """A fit of ``S = S_min (1 + B_crit/B)``.

    Attributes:
        s_min: steps at infinite batch size; b_crit: the critical batch size (examples); e_min = s_min · b_crit.
        rms_log_residual: ``sqrt(mean (log S − log Ŝ)²)`` over the fitted points (natural log).
    """

    s_min: float
    b_crit: float
    rms_log_residual: float

    @property
    def e_min(self) -> float:
        return self.s_min * self.b_crit

    def steps(self, batch_size) -> np.ndarray:
        """``Ŝ(B) = S_min (1 + B_crit/B)``."""
        return self.s_min * (1.0 + self.b_crit / np.asarray(batch_size, dtype=np.float64))

    def examples(self, batch_size) -> np.ndarray:
        """``Ê(B) = B Ŝ(B) = E_min (1 + B/B_crit)``."""
        return np.asarray(batch_size, dtype=np.float64) * self.steps(batch_size)


def fit_steps_examples_tradeoff(batch_sizes, steps) -> TradeoffFit:
    """Least squares in ``log S`` for ``S = S_min (1 + B_crit/B)``.

    For fixed ``B_crit`` the best ``log S_min`` is the mean of ``log S − log(1 + B_crit/B)``; the remaining
    one-dimensional problem in ``log B_crit`` is solved by bounded Brent search over
    ``[min B / 10⁴, max B · 10⁴]`` (outside it the curve cannot be told from a pure power law with the data).

    Args:
        batch_sizes: ``B`` per point, shape ``(n,)``, > 0.
        steps: ``S`` per point, the steps to the target loss at the best learning rate, shape ``(n,)``, > 0.

    Returns:
        A :class:`TradeoffFit`.

    Raises:
        ConfigError: fewer than 3 points, fewer than 3 distinct batch sizes, or values not finite and > 0.

    Source:
        McCandlish, Kaplan, Amodei et al. (2018), arXiv:1812.06162, §2.3, eq. (2.11).

    >>> b = np.array([4.0, 16.0, 64.0, 256.0])
    >>> fit = fit_steps_examples_tradeoff(b, 100.0 * (1 + 32.0 / b))
    >>> round(fit.s_min, 6), round(fit.b_crit, 6), round(fit.e_min, 4)
    (100.0, 32.0, 3200.0)
    """
    b = np.asarray(batch_sizes, dtype=np.float64).reshape(-1)
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    require(b.shape == s.shape and b.size >= 3, f"need at least 3 (batch size, steps) points of equal count, "
                                                f"got {b.size} and {s.size}")
    require(bool(np.all(np.isfinite(b) & (b > 0) & np.isfinite(s) & (s > 0))),
            "batch sizes and steps must be finite and > 0; drop points that never reached the target")
    require(np.unique(b).size >= 3, f"need at least 3 distinct batch sizes, got {np.unique(b).tolist()}")
    log_s = np.log(s)

    def residual(log_bc: float) -> tuple[float, np.ndarray]:
        shape = np.log1p(np.exp(log_bc) / b)
        log_smin = float(np.mean(log_s - shape))
        return log_smin, log_s - log_smin - shape

    def objective(log_bc: float) -> float:
        return float(np.sum(residual(log_bc)[1] ** 2))

    lo, hi = np.log(b.min() / 1e4), np.log(b.max() * 1e4)
    grid = np.linspace(lo, hi, 201)  # a coarse scan first: the objective can have a shallow second basin
    start = int(np.argmin([objective(v) for v in grid]))
    best = minimize_scalar(objective, bounds=(grid[max(start - 1, 0)], grid[min(start + 1, grid.size - 1)]),
                           method="bounded", options={"xatol": 1e-10})
    log_smin, res = residual(float(best.x))
    return TradeoffFit(s_min=float(np.exp(log_smin)), b_crit=float(np.exp(best.x)),
                       rms_log_residual=float(np.sqrt(np.mean(res**2))))
