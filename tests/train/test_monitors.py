"""The sharpness monitor's warm start must not lock onto an eigenvalue that is no longer the top."""

import pytest
import torch

from lmech.train import SharpnessMonitor


class Quadratic(torch.nn.Module):
    """Outputs ½ Σ h_i w_i² for every example, so the Hessian of the mean output is diag(h)."""

    def __init__(self, h):
        super().__init__()
        self.h = h
        self.w = torch.nn.Parameter(torch.ones(len(h), dtype=torch.float64))

    def forward(self, x):
        return (0.5 * (self.h * self.w**2).sum()).expand(len(x), 1)


def test_warm_start_from_the_old_top_eigenvector_finds_the_new_top():
    h = torch.tensor([5.0, 6.0] + [1.0] * 50, dtype=torch.float64)  # the top is now the 2nd coordinate
    x = torch.zeros(4, 1, dtype=torch.float64)
    monitor = SharpnessMonitor(lambda out, y: out.mean(), (x, x), tol=1e-8)
    stale = torch.zeros(52, dtype=torch.float64)
    stale[0], stale[1] = 1.0, 1e-4  # almost exactly the eigenvector of 5
    monitor._previous = stale
    assert monitor(Quadratic(h), step=1)["sharpness"] == pytest.approx(6.0, rel=1e-8)
