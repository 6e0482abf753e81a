"""AGF on modular addition: the utility's maximum, the acquisition order and the plateau levels, each against a
brute-force computation on the actual task (float64, exhaustive over all pairs)."""

import math

import numpy as np
import pytest
import torch

from lmech.data.groups import composition_dataset, cyclic, dihedral, fourier_template
from lmech.errors import ConfigError
from lmech.measure.fourier import fourier_basis, fourier_power, group_fourier_power
from lmech.theory.agf import agf_acquisition_order, agf_max_utility, agf_plateau_levels


def _task(group, power, seed=3):
    x = fourier_template(group, power, seed=seed)
    data = composition_dataset(group, 2, template=x, dtype=torch.float64)
    return x, data.inputs[:, 0], data.inputs[:, 1], data.targets


def _utility(xa, xb, y, theta):
    """U(θ) = 2/(N|G|) Σ_ab ⟨y_ab, w⟩ (u·x_a + v·x_b)², straight from the definition (residual = target)."""
    n = xa.shape[1]
    u, v, w = theta[..., :n], theta[..., n:2 * n], theta[..., 2 * n:]
    h = xa @ u.T + xb @ v.T  # (N, R)
    return 2.0 / (len(y) * n) * ((y @ w.T) * h * h).sum(0)


def _maximise_on_sphere(xa, xb, y, basis, restarts, generator, iters=400):
    """Projected gradient ascent of U over unit θ = basis @ c (basis: orthonormal columns), many restarts."""
    c = torch.randn(restarts, basis.shape[1], generator=generator, dtype=torch.float64)
    c = c / c.norm(dim=1, keepdim=True)
    for _ in range(iters):
        c.requires_grad_(True)
        (grad,) = torch.autograd.grad(_utility(xa, xb, y, c @ basis.T).sum(), c)
        with torch.no_grad():
            c = c + 2.0 * grad
            c = c / c.norm(dim=1, keepdim=True)
    with torch.no_grad():
        return _utility(xa, xb, y, c @ basis.T)


def _frequency_block(p: int, k: int) -> torch.Tensor:
    """Orthonormal basis of {(u, v, w): all three at frequency k}, shape (3p, 3·rows)."""
    basis, freqs = fourier_basis(p)
    rows = basis[freqs == k].T  # (p, r)
    return torch.block_diag(rows, rows, rows)


@pytest.mark.parametrize("p", [7, 8], ids=["odd-p", "even-p-with-nyquist"])
def test_max_utility_per_frequency_matches_numerical_maximisation(p, generator):
    power = [0.0] + list(np.linspace(1.5, 0.4, p // 2))
    _, xa, xb, y = _task(cyclic(p), power)
    predicted = agf_max_utility(fourier_power(y[0]).numpy(), p=p)
    for k in range(1, p // 2 + 1):
        found = _maximise_on_sphere(xa, xb, y, _frequency_block(p, k), 16, generator).max()
        assert float(found) == pytest.approx(predicted[k], rel=1e-6), k


def test_no_neuron_beats_the_best_single_frequency(generator):
    p = 7
    _, xa, xb, y = _task(cyclic(p), [0.0, 0.6, 1.8, 1.1])
    best = agf_max_utility([0.0, 0.6, 1.8, 1.1], p=p).max()
    found = _maximise_on_sphere(xa, xb, y, torch.eye(3 * p, dtype=torch.float64), 64, generator)
    assert float(found.max()) == pytest.approx(best, rel=1e-6)  # the maximum is reached ...
    assert float(found.max()) <= best * (1 + 1e-9)  # ... and never exceeded (local maxima sit at other frequencies)


def test_utility_is_the_rate_of_gradient_flow_for_a_dormant_neuron(generator):
    # −∇L of the MSE (mean over pairs and outputs) at a tiny single-neuron network equals ∇U.
    p = 7
    _, xa, xb, y = _task(cyclic(p), [0.0, 0.6, 1.8, 1.1])
    theta = (1e-4 * torch.randn(3 * p, generator=generator, dtype=torch.float64)).requires_grad_(True)
    u, v, w = theta[:p], theta[p:2 * p], theta[2 * p:]
    loss = (((xa @ u + xb @ v) ** 2)[:, None] * w[None, :] - y).pow(2).mean()
    (grad_loss,) = torch.autograd.grad(loss, theta)
    (grad_u,) = torch.autograd.grad(_utility(xa, xb, y, theta[None]).sum(), theta)
    torch.testing.assert_close(-grad_loss, grad_u, rtol=1e-6, atol=0.0)


def test_one_neuron_fits_only_a_ninth_of_its_frequency(generator):
    # Why each AGF drop has sub-steps in GD: the best single neuron on frequency k (optimal scale) removes
    # P_k / 9 of the loss's P_k; its by-products at (2k, 0), (0, 2k), (k, −k) need other neurons to cancel them.
    p = 7
    _, xa, xb, y = _task(cyclic(p), [0.0, 0.6, 1.8, 1.1])
    basis, freqs = fourier_basis(p)
    for k in (1, 2, 3):
        rows = basis[freqs == k].T
        y_k = y @ rows @ rows.T

        def captured(c, rows=rows, y_k=y_k):
            theta = c @ torch.block_diag(rows, rows, rows).T
            u, v, w = theta[:, :p], theta[:, p:2 * p], theta[:, 2 * p:]
            out = ((xa @ u.T + xb @ v.T) ** 2)[:, :, None] * w[None]  # (N, restarts, p)
            return (out * y[:, None]).sum((0, 2)) ** 2 / (out * out).sum((0, 2)) / y_k.pow(2).sum()

        c = torch.randn(16, 3 * rows.shape[1], generator=generator, dtype=torch.float64)
        for _ in range(300):
            c.requires_grad_(True)
            (grad,) = torch.autograd.grad(captured(c).sum(), c)
            with torch.no_grad():
                c = c + 0.5 * grad
                c = c / c.norm(dim=1, keepdim=True)
        assert float(captured(c).max()) == pytest.approx(1 / 9, rel=1e-8), k


def test_order_is_decreasing_power_for_odd_p():
    power = [0.0, 0.3, 2.0, 0.9, 1.4, 0.5]
    assert agf_acquisition_order(power, p=11).tolist() == [2, 4, 3, 5, 1]


def test_nyquist_frequency_counts_four_times_more_utility():
    # P = 1 at the Nyquist frequency (real irrep) beats P = 2 at a complex pair: 4·1 > 2^{3/2}.
    assert agf_acquisition_order([0.0, 2.0, 0.0, 0.0, 1.0], p=8).tolist() == [4, 1]
    assert agf_acquisition_order([0.0, 2.6, 0.0, 0.0, 1.0], p=8).tolist() == [1, 4]


def test_frequencies_without_power_are_never_learned():
    assert agf_acquisition_order([0.0, 0.0, 1.0, 0.0, 3.0], p=9).tolist() == [4, 2]


def _isotypic_basis(group, members) -> torch.Tensor:
    """Orthonormal basis of the functions on G whose Fourier transform lives on the irreps ``members``
    (Π[g, h] = 1/|G| Σ_ρ d_ρ tr(ρ(g)^† ρ(h)), an orthogonal projector), shape (|G|, Σ d_ρ²)."""
    proj = sum(rho.dim * torch.einsum("gji,hji->gh", rho.matrices.conj(), rho.matrices)
               for i, rho in enumerate(group.irreps) if i in members) / group.order
    assert proj.imag.abs().max() < 1e-12
    vals, vecs = torch.linalg.eigh(proj.real)
    return vecs[:, vals > 0.5]


def _restricted_least_squares(xa, xb, y, basis) -> float:
    """The loss of the best network f = Σ w (u·x_a + v·x_b)² with u, v in span(basis): quadratic forms in the
    projected inputs span every quadratic monomial, so this is least squares on those monomials."""
    z = torch.cat([xa @ basis, xb @ basis], dim=1)
    i, j = torch.triu_indices(z.shape[1], z.shape[1])
    features = z[:, i] * z[:, j]
    assert features.shape[1] < 0.9 * len(y)  # far from interpolation: a low residual means something
    coef = torch.linalg.lstsq(features, y, driver="gelsd").solution
    return float((y - features @ coef).pow(2).mean())


@pytest.mark.parametrize("p", [13, 14])
def test_plateau_levels_are_the_best_loss_of_a_network_seeing_only_the_learned_frequencies(p):
    group = cyclic(p)
    rng = np.random.default_rng(p)
    power = np.concatenate([[0.0], rng.uniform(0.2, 2.0, p // 2)])
    x, xa, xb, y = _task(group, power.tolist())
    order = agf_acquisition_order(power, p=p)
    levels = agf_plateau_levels(fourier_power(x).numpy(), order, group_order=p)
    assert levels[0] == pytest.approx(float(y.pow(2).mean()), rel=1e-12)  # the zero network
    basis, freqs = fourier_basis(p)
    for m in (1, 2, 3):
        rows = basis[torch.isin(freqs, torch.as_tensor(order[:m]))].T
        assert _restricted_least_squares(xa, xb, y, rows) == pytest.approx(levels[m], rel=1e-8, abs=1e-12), m


def test_plateau_levels_hold_for_a_nonabelian_group_with_the_power_per_irrep():
    group = dihedral(7)  # irreps: trivial, sign, 2-d j = 1, 2, 3
    power = [0.0, 0.7, 1.6, 0.4, 1.1]
    x, xa, xb, y = _task(group, power)
    measured_power = group_fourier_power(x, group).numpy()
    np.testing.assert_allclose(measured_power, power, atol=1e-12)
    order = [2, 1, 4]  # any order: the level depends only on which irreps are learned
    levels = agf_plateau_levels(measured_power, order, group_order=group.order)
    for m in (1, 2, 3):
        got = _restricted_least_squares(xa, xb, y, _isotypic_basis(group, order[:m]))
        assert got == pytest.approx(levels[m], rel=1e-8, abs=1e-12), m


def test_plateau_levels_fall_from_the_total_power_to_zero():
    levels = agf_plateau_levels([0.0, 1.0, 3.0, 2.0, 0.5], [2, 3, 1], group_order=9)
    np.testing.assert_allclose(levels, np.array([6.5, 3.5, 1.5, 0.5]) / 9)  # frequency 4 is never learned


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: agf_max_utility([0.0, 1.0, 2.0], p=7), r"one entry per frequency 0..3 of Z_7 \(4 entries\), got 3"),
        (lambda: agf_max_utility([0.5, 1.0, 2.0, 1.0], p=7), "mean-zero template"),
        (lambda: agf_max_utility([0.0, -1.0, 2.0, 1.0], p=7), "finite and >= 0"),
        (lambda: agf_max_utility([0.0, 1.0], p=2), "p must be an integer >= 3"),
        (lambda: agf_acquisition_order([0.0, 1.0, 1.0, 2.0], p=7), "frequencies 1 and 2 have equal AGF utility"),
        (lambda: agf_acquisition_order([0.0, 0.0, 0.0, 0.0], p=7), "no frequency with power > 0"),
        (lambda: agf_plateau_levels([0.0, 1.0, 2.0], [1, 1], group_order=5), "distinct frequencies in 0..2"),
        (lambda: agf_plateau_levels([0.0, 1.0, 2.0], [3], group_order=5), "distinct frequencies in 0..2"),
        (lambda: agf_plateau_levels([0.0, 1.0, 2.0], [1.5], group_order=5), "integer frequency indices"),
        (lambda: agf_plateau_levels([0.0, 1.0, 2.0], [1], group_order=0), "group_order must be an integer >= 1"),
    ],
    ids=["wrong-length", "nonzero-mean", "negative", "tiny-p", "tie", "no-power", "repeat", "out-of-range",
         "non-integer", "bad-order"],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_utility_scales_as_the_power_to_three_halves():
    u = agf_max_utility([0.0, 1.0, 4.0, 9.0], p=7)
    np.testing.assert_allclose(u[1:] / u[1], [1.0, 8.0, 27.0])
    assert u[1] == pytest.approx(1 / (3 * math.sqrt(3) * 7))
