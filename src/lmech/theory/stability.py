"""Linear stability of gradient descent: the edge of stability.

On a quadratic ``L(θ) = ½ θᵀHθ``, gradient descent ``θ ← θ − η∇L`` multiplies the component along an
eigenvector of ``H`` with eigenvalue ``λ`` by ``1 − ηλ``; it diverges exactly when ``λ > 2/η``. For
heavy-ball momentum ``β`` the threshold is ``λ > (2 + 2β)/η`` (Polyak 1964; Cohen et al. 2021,
arXiv:2103.00065, Appendix B / eq. (1) and §5). Cohen et al. find that on neural networks the
sharpness ``λ_max`` rises to this threshold and then hovers at it (the *edge of stability*).
"""

from __future__ import annotations

import numpy as np

from ..config import require


def stability_threshold(lr: float | np.ndarray, momentum: float = 0.0) -> float | np.ndarray:
    """The largest Hessian eigenvalue for which (heavy-ball) gradient descent is stable.

    .. math::  \\lambda_{\\text{crit}} = \\frac{2 + 2\\beta}{\\eta}

    Args:
        lr: step size η > 0 (scalar or array).
        momentum: heavy-ball coefficient β in [0, 1).

    Returns:
        ``(2 + 2β)/η`` in units of the loss per parameter² (the Hessian's units), same shape as ``lr``.

    Raises:
        ConfigError: if ``lr <= 0`` or ``momentum`` is outside [0, 1).

    >>> stability_threshold(0.01)
    200.0
    >>> stability_threshold(0.01, momentum=0.9)
    380.0
    """
    require(bool(np.all(np.asarray(lr) > 0)), f"lr must be > 0, got {lr!r}")
    require(0 <= momentum < 1, f"momentum must be in [0, 1), got {momentum!r}")
    return (2.0 + 2.0 * momentum) / lr


def gd_quadratic_trajectory(eigenvalue: float, lr: float, x0: float, steps: int) -> np.ndarray:
    """GD on the 1-D quadratic ``½ λ x²`` in closed form: ``x_k = (1 − ηλ)^k x₀``, shape ``(steps+1,)``.

    >>> gd_quadratic_trajectory(3.0, 1.0, 1.0, 3).tolist()  # ηλ = 3 > 2: the iterate flips and grows
    [1.0, -2.0, 4.0, -8.0]
    """
    require(lr > 0, f"lr must be > 0, got {lr!r}")
    return x0 * (1.0 - lr * eigenvalue) ** np.arange(steps + 1)
