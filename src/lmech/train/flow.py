"""Gradient flow ``dθ/dt = −∇L(θ)``, the small-step limit of gradient descent.

Integrated with SciPy's adaptive Runge–Kutta (Dormand–Prince 5(4), ``solve_ivp(method="RK45")``)
as Cohen et al. (2021, arXiv:2103.00065, §3 and Appendix I) do with RK4 to compare GD
against the flow. Time ``t`` is in units of lr × steps: GD with step ``lr`` after ``k`` steps is
compared with the flow at ``t = lr·k``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import Tensor, nn

from ..config import require
from ..measure.hessian import HessianOperator, LossFn
from ..progress import NO_PROGRESS, Progress


def gradient_flow(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[Tensor, Tensor],
    times: Sequence[float],
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    dtype: torch.dtype = torch.float64,
    progress: Progress = NO_PROGRESS,
) -> np.ndarray:
    """The training loss along gradient flow from the model's current parameters.

    Args:
        model: the starting point (left unchanged; a float64 copy is integrated).
        loss_fn: mean loss over a batch.
        data: ``(inputs, targets)``; the flow is that of the full-batch mean loss.
        times: increasing times ``t ≥ 0`` (units: lr × steps) at which to report the loss.
        rtol, atol: the integrator's tolerances on the parameters.
        dtype: the precision of the gradients (float32 halves the cost on CPU; the integrator's
            state is float64 either way).
        progress: advanced in percent of the time span as the integrator moves.

    Returns:
        Array of shape ``(len(times),)``: ``L(θ(t))``.

    Raises:
        ConfigError: if ``times`` is empty, negative or not increasing.
        RuntimeError: if the integrator fails.
    """
    t = np.asarray(times, dtype=np.float64)
    require(t.ndim == 1 and len(t) > 0, "times must be a non-empty 1-D sequence")
    require(bool(np.all(t >= 0)) and bool(np.all(np.diff(t) > 0)), "times must be >= 0 and increasing")
    flow_model = copy.deepcopy(model).to(dtype)
    x, y = (d.to(dtype) if d.is_floating_point() else d for d in data)
    op = HessianOperator(flow_model, loss_fn, (x, y))

    def set_params(theta: np.ndarray) -> None:
        flat = torch.from_numpy(theta).to(dtype)
        for name, value in op.unflatten(flat).items():
            op.params[name].data.copy_(value)

    done = [0]

    def velocity(now: float, theta: np.ndarray) -> np.ndarray:
        percent = int(100 * now / t[-1]) if t[-1] > 0 else 100
        if percent > done[0]:
            progress.advance(percent - done[0])
            done[0] = percent
        set_params(theta)
        return -op.gradient().double().numpy()

    theta0 = op.flatten(op.params).detach().double().numpy().copy()
    solution = solve_ivp(velocity, (0.0, float(t[-1])), theta0, method="RK45", t_eval=t, rtol=rtol, atol=atol)
    progress.advance(100 - done[0])
    if not solution.success:
        raise RuntimeError(f"gradient flow integration failed: {solution.message}")
    losses = np.empty(len(t))
    for i in range(len(t)):
        set_params(solution.y[:, i])
        losses[i] = op.loss()
    return losses
