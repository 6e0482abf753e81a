"""Gradient flow against the closed form of linear least squares."""

import numpy as np
import pytest
import scipy.linalg
import torch

from lmech.errors import ConfigError
from lmech.train import gradient_flow


def test_flow_matches_matrix_exponential():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    model = torch.nn.Linear(6, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 6, generator=gen, dtype=torch.float64))

    def loss(out, target):
        return 0.5 * ((out - target) ** 2).mean()

    times = np.array([0.0, 0.5, 2.0, 10.0])
    flow = gradient_flow(model, loss, (x, y), times, rtol=1e-10, atol=1e-12)
    # L(w) = ½ mean (xw − y)²: H = XᵀX/n, w* = H⁻¹Xᵀy/n, w(t) = w* + exp(−Ht)(w0 − w*).
    X, Y = x.numpy(), y.numpy()[:, 0]
    H = X.T @ X / len(X)
    w_star = np.linalg.solve(H, X.T @ Y / len(X))
    w0 = model.weight.detach().numpy()[0]
    exact = []
    for t in times:
        w = w_star + scipy.linalg.expm(-H * t) @ (w0 - w_star)
        exact.append(0.5 * np.mean((X @ w - Y) ** 2))
    np.testing.assert_allclose(flow, exact, rtol=1e-7)
    np.testing.assert_array_equal(model.weight.detach().numpy()[0], w0)  # the model is left unchanged


def test_times_must_increase():
    model = torch.nn.Linear(2, 1)
    data = (torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ConfigError, match="increasing"):
        gradient_flow(model, torch.nn.functional.mse_loss, data, [1.0, 0.5])
