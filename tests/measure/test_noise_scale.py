"""The gradient noise scale (arXiv:1812.06162): per-example gradients against a loop, B_simple and B_noise
against closed forms and dense Hessians, and the two-batch estimator's unbiasedness."""


import numpy as np
import pytest
import torch

from lmech.data.digits import load_digits
from lmech.errors import ConfigError, TrainModeError
from lmech.measure.noise_scale import (
    gradient_noise_scale,
    per_example_gradients,
    two_batch_estimate,
    two_batch_noise_scale,
)
from lmech.models import mlp
from lmech.train.losses import half_mse

from ..conftest import dense_hessian


def cross_entropy(out, y):
    return torch.nn.functional.cross_entropy(out, y)


@pytest.fixture(scope="module")
def digits_problem():
    """A small tanh MLP (10·16 + 16·10 weights) on 300 digits, briefly trained so G is not tiny."""
    train, _ = load_digits(300, 10, dtype=torch.float64)
    x = train.inputs[:, ::4]  # 16 of the 64 pixels
    model = mlp(16, [10], 10, dtype=torch.float64, seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(30):
        opt.zero_grad()
        cross_entropy(model(x), train.labels).backward()
        opt.step()
    return model, x, train.labels


def test_per_example_gradients_equal_a_loop(digits_problem):
    model, x, y = digits_problem
    g = per_example_gradients(model, cross_entropy, x[:20], y[:20], chunk_size=7)
    for i in range(20):
        model.zero_grad()
        cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        expect = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        torch.testing.assert_close(g[i], expect, rtol=1e-12, atol=1e-14)


def test_b_simple_of_least_squares_matches_the_closed_form():
    """For f = wᵀx and ℓ = ½(f − y)², g_i = (wᵀx_i − y_i) x_i: B_simple from numpy, no autograd."""
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((50, 4)), rng.standard_normal(50), rng.standard_normal(4)
    model = torch.nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w)[None])
    got = gradient_noise_scale(model, half_mse, torch.from_numpy(x), torch.from_numpy(y)[:, None])
    g = (x @ w - y)[:, None] * x
    mean = g.mean(0)
    trace = ((g - mean) ** 2).sum(1).mean()
    assert got.grad_sq_norm == pytest.approx(mean @ mean, rel=1e-12)
    assert got.trace_cov == pytest.approx(trace, rel=1e-12)
    assert got.b_simple == pytest.approx(trace / (mean @ mean), rel=1e-12)


def test_b_noise_against_the_dense_hessian(digits_problem):
    model, x, y = digits_problem
    x, y = x[:60], y[:60]
    h = dense_hessian(model, cross_entropy, x, y)
    g = per_example_gradients(model, cross_entropy, x, y)
    mean, centred = g.mean(0), g - g.mean(0)
    sigma = centred.T @ centred / len(g)
    exact = gradient_noise_scale(model, cross_entropy, x, y, hessian=True, num_probes=None)
    assert exact.trace_h_cov == pytest.approx(float(torch.trace(h @ sigma)), rel=1e-9)
    assert exact.g_h_g == pytest.approx(float(mean @ h @ mean), rel=1e-9)
    assert exact.b_noise == pytest.approx(float(torch.trace(h @ sigma) / (mean @ h @ mean)), rel=1e-9)
    probed = gradient_noise_scale(model, cross_entropy, x, y, hessian=True, num_probes=400, seed=3)
    assert probed.trace_h_cov == pytest.approx(exact.trace_h_cov, rel=0.15)  # Hutchinson error ~ sqrt(2/400)
    assert probed.b_simple == exact.b_simple and probed.num_probes == 400


def test_two_batch_estimator_is_unbiased(digits_problem):
    """Mean of the two-batch estimates over 3,000 pairs within 5 % of the exact |G|², tr Σ and B_simple."""
    model, x, y = digits_problem
    exact = gradient_noise_scale(model, cross_entropy, x, y)
    est = two_batch_noise_scale(model, cross_entropy, x, y, b_small=4, b_big=64, num_pairs=3000, seed=1)
    assert float(est.grad_sq_norm.mean()) == pytest.approx(exact.grad_sq_norm, rel=0.05)
    assert float(est.trace_cov.mean()) == pytest.approx(exact.trace_cov, rel=0.05)
    assert est.b_simple == pytest.approx(exact.b_simple, rel=0.05)


def test_two_batch_estimate_formulas():
    est = two_batch_estimate([3.0, 5.0], [1.5, 2.0], 1, 4)
    assert est.grad_sq_norm.tolist() == [1.0, 1.0] and est.trace_cov.tolist() == [2.0, 4.0]
    assert est.b_simple == 3.0
    with pytest.raises(ConfigError, match="1 <= b_small < b_big"):
        two_batch_estimate([1.0], [1.0], 8, 8)


def test_bad_input_is_named(digits_problem):
    model, x, y = digits_problem
    with pytest.raises(ConfigError, match="same number"):
        gradient_noise_scale(model, cross_entropy, x, y[:5])
    with pytest.raises(ConfigError, match="num_probes"):
        gradient_noise_scale(model, cross_entropy, x, y, hessian=True, num_probes=0)
    dropout = torch.nn.Sequential(torch.nn.Linear(16, 10).double(), torch.nn.Dropout(0.1))
    with pytest.raises(TrainModeError, match="Dropout"):
        gradient_noise_scale(dropout, cross_entropy, x, y)
    frozen = torch.nn.Linear(16, 10).double().requires_grad_(False)
    with pytest.raises(ConfigError, match="requires_grad"):
        gradient_noise_scale(frozen, cross_entropy, x, y)


def test_zero_gradient_means_infinite_noise_scale():
    model = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [-1.0]], dtype=torch.float64) * 0.0
    with pytest.raises(ConfigError, match="infinite"):
        gradient_noise_scale(model, half_mse, x, y)


def test_a_loss_vmap_cannot_batch_gets_a_clear_error(digits_problem):
    model, x, y = digits_problem

    def one_hot_mse(out, labels):
        return 0.5 * ((out - torch.nn.functional.one_hot(labels, 10).to(out.dtype)) ** 2).sum(-1).mean()

    with pytest.raises(ConfigError, match="pass one-hot targets instead"):
        per_example_gradients(model, one_hot_mse, x[:8], y[:8])


def test_nan_inputs_are_named(digits_problem):
    model, x, y = digits_problem
    bad = x.clone()
    bad[7, 3] = float("nan")
    with pytest.raises(ConfigError, match="example 7's gradient is not finite"):
        gradient_noise_scale(model, cross_entropy, bad, y)
    with pytest.raises(ConfigError, match="non-finite gradient"):
        two_batch_noise_scale(model, cross_entropy, bad[:8], y[:8], b_small=2, b_big=8, num_pairs=4)
