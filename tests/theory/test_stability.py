"""The GD stability threshold against simulation on quadratics."""

import numpy as np
import pytest
import torch

from lmech.errors import ConfigError
from lmech.theory import gd_quadratic_trajectory, stability_threshold


def simulate(hessian: np.ndarray, lr: float, momentum: float, steps: int, seed: int) -> float:
    """Heavy-ball GD on ½ xᵀHx with torch.optim.SGD; returns ‖x_T‖ / ‖x_0‖."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(hessian), generator=gen, dtype=torch.float64, requires_grad=True)
    h = torch.as_tensor(hessian)
    x0 = x.detach().norm()
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * x @ h @ x).backward()
        opt.step()
    return float(x.detach().norm() / x0)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9], ids=["gd", "beta0.5", "beta0.9"])
@pytest.mark.parametrize("side", [0.97, 1.03], ids=["below", "above"])
def test_threshold_separates_convergence_from_divergence(momentum, side):
    lr = 0.1
    lam = side * stability_threshold(lr, momentum)
    hessian = np.diag([lam, 0.3 * lam, 1.0])
    growth = simulate(hessian, lr, momentum, steps=3000, seed=0)
    if side < 1:
        assert growth < 1.0
    else:
        assert np.nan_to_num(growth, nan=np.inf) > 1e3  # overflow to inf/nan is divergence too


def test_closed_form_matches_gd():
    x = gd_quadratic_trajectory(eigenvalue=5.0, lr=0.1, x0=2.0, steps=50)
    sim = [2.0]
    for _ in range(50):
        sim.append(sim[-1] - 0.1 * 5.0 * sim[-1])
    np.testing.assert_allclose(x, sim, rtol=1e-12)


def test_threshold_is_vectorised_and_validates():
    np.testing.assert_allclose(stability_threshold(np.array([0.1, 0.2])), [20.0, 10.0])
    with pytest.raises(ConfigError, match="lr must be > 0"):
        stability_threshold(0.0)
    with pytest.raises(ConfigError, match="momentum must be in"):
        stability_threshold(0.1, momentum=1.0)
