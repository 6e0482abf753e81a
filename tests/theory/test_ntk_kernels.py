"""Infinite-width NNGP and NTK: closed forms, the dual activations against numerical Gaussian integrals,
invariances, and Monte Carlo against wide random networks (NTK and standard parametrisation)."""

import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from scipy.integrate import quad
from scipy.special import erf, ndtr
from torch import nn

from lmech.errors import ConfigError
from lmech.measure import empirical_ntk
from lmech.models import Erf, ntk_mlp
from lmech.theory import dual_activation, infinite_width_kernels, nngp_kernel, ntk_kernel


@pytest.fixture
def inputs(seed) -> np.ndarray:
    """Six inputs in 5-D of different norms, with a nearly parallel pair (ρ ≈ 1) and an antipodal
    pair (ρ = −1 in the first layer without bias)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, 5)) * np.array([[0.5], [1.0], [1.5], [1.0], [2.0], [0.7]])
    x[1] = x[0] + 0.05 * rng.normal(size=5)
    x[3] = -1.3 * x[2]
    return x


# --- closed forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "erf", "identity"])
@pytest.mark.parametrize("parametrization", ["ntk", "standard"])
def test_depth_zero_is_the_linear_kernel(inputs, activation, parametrization):
    k = infinite_width_kernels(inputs, depth=0, activation=activation, weight_var=1.7, bias_var=0.4,
                               parametrization=parametrization)
    np.testing.assert_allclose(k.nngp, 1.7 * inputs @ inputs.T / 5 + 0.4, rtol=1e-14)
    expected_ntk = k.nngp if parametrization == "ntk" else inputs @ inputs.T + 1.0  # SP: w·x + b
    np.testing.assert_allclose(k.ntk, expected_ntk, rtol=1e-14)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_relu_with_he_variance_keeps_the_diagonal(inputs, depth):
    """σ_w² = 2, σ_b = 0: ``E[relu(u)²] = q/2`` so every Σ^l(x, x) = q = 2‖x‖²/d, and Θ(x, x) = (L + 1) q."""
    q = 2 * (inputs**2).sum(1) / 5
    k = infinite_width_kernels(inputs, depth=depth, activation="relu", weight_var=2.0)
    np.testing.assert_allclose(k.nngp.diagonal(), q, rtol=1e-14)
    np.testing.assert_allclose(k.ntk.diagonal(), (depth + 1) * q, rtol=1e-14)


def test_relu_one_hidden_layer_orthogonal_inputs():
    """Θ = Σ² + 2 Σ̇ Σ¹ with Σ¹ = 0 and θ = π/2: Σ² = 2 · √(q q')/(2π) = 1/π for unit q, q'."""
    k = infinite_width_kernels([[1.0, 0.0], [0.0, 1.0]], depth=1, activation="relu", weight_var=2.0)
    np.testing.assert_allclose(k.nngp, [[1.0, 1 / math.pi], [1 / math.pi, 1.0]], rtol=1e-14)
    np.testing.assert_allclose(k.ntk, [[2.0, 1 / math.pi], [1 / math.pi, 2.0]], rtol=1e-14)


def test_erf_one_hidden_layer_closed_form():
    """q = 1/2: E[erf(u)²] = (2/π) arcsin(1/2) = 1/3 and E[erf'(u)²] = (4/π)/√(2·2 − 1)."""
    k = infinite_width_kernels([[1.0, 0.0]], depth=1, activation="erf", weight_var=1.0)
    assert float(k.nngp[0, 0]) == pytest.approx(1 / 3, rel=1e-14)
    assert float(k.ntk[0, 0]) == pytest.approx(1 / 3 + 0.5 * 4 / (math.pi * math.sqrt(3)), rel=1e-14)


@pytest.mark.parametrize("depth", [1, 3])
def test_identity_activation_is_a_deep_linear_network(inputs, depth):
    """Σ^{L+1} = σ_w^{2(L+1)} x·x'/d and, without bias, Θ = (L + 1) Σ^{L+1}."""
    wv = 1.3
    k = infinite_width_kernels(inputs, depth=depth, activation="identity", weight_var=wv)
    expected = wv ** (depth + 1) * inputs @ inputs.T / 5
    np.testing.assert_allclose(k.nngp, expected, rtol=1e-13)
    np.testing.assert_allclose(k.ntk, (depth + 1) * expected, rtol=1e-13)


def test_convenience_functions_agree(inputs):
    kwargs = dict(depth=2, activation="erf", weight_var=1.5, bias_var=0.2)
    k = infinite_width_kernels(inputs, **kwargs)
    np.testing.assert_array_equal(nngp_kernel(inputs, **kwargs), k.nngp)
    np.testing.assert_array_equal(ntk_kernel(inputs, **kwargs), k.ntk)
    sp = infinite_width_kernels(inputs, parametrization="standard", widths=[10, 20], **kwargs)
    np.testing.assert_array_equal(sp.nngp, k.nngp)  # the NNGP does not depend on the parametrisation
    np.testing.assert_array_equal(ntk_kernel(inputs, parametrization="standard", widths=[10, 20], **kwargs), sp.ntk)


# --- the dual activations against numerical Gaussian integrals -----------------------------------

CORRELATIONS = [-1.0, -1 + 1e-9, -0.7, 0.0, 0.3, 0.95, 1 - 1e-9, 1.0]


def relu_reference(q1: float, q2: float, rho: float) -> tuple[float, float]:
    """``u = √q1 z₁``, ``v = √q2 (ρ z₁ + s z₂)``: integrate z₂ out by the truncated-normal mean
    ``E[relu(a + sZ)] = a Φ(a/s) + s φ(a/s)`` and ``P(a + sZ > 0) = Φ(a/s)``, then z₁ > 0 by quad."""
    s = math.sqrt(max(1 - rho * rho, 0.0))
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def mean_relu(a):
        return max(a, 0.0) if s == 0 else a * ndtr(a / s) + s * pdf(a / s)

    def prob_positive(a):
        return float(a > 0) if s == 0 else ndtr(a / s)

    def integral(f):  # near ρ = ±1 the integrand turns over within z₁ ≲ s of 0: integrate that part apart
        edge = 50 * s if 0 < s < 0.02 else 1.0
        return sum(quad(f, a, b, epsabs=1e-15, epsrel=1e-12)[0] for a, b in ((0, edge), (edge, np.inf)))

    k = integral(lambda z: z * pdf(z) * mean_relu(rho * z))
    k_dot = integral(lambda z: pdf(z) * prob_positive(rho * z))
    return math.sqrt(q1 * q2) * k, k_dot


def erf_reference(q1: float, q2: float, rho: float) -> tuple[float, float]:
    """2-D Gauss–Hermite (240² nodes) of ``erf(u) erf(v)`` and ``erf'(u) erf'(v)``."""
    z, w = hermegauss(240)
    w = w / math.sqrt(2 * math.pi)
    s = math.sqrt(max(1 - rho * rho, 0.0))
    u = math.sqrt(q1) * z[:, None]
    v = math.sqrt(q2) * (rho * z[:, None] + s * z[None, :])
    weights = w[:, None] * w[None, :]
    derivative = lambda t: 2 / math.sqrt(math.pi) * np.exp(-t * t)  # noqa: E731
    return float((weights * erf(u) * erf(v)).sum()), float((weights * derivative(u) * derivative(v)).sum())


@pytest.mark.parametrize("rho", CORRELATIONS, ids=[f"rho={r:+.9g}" for r in CORRELATIONS])
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_dual_activation_matches_numerical_integration(activation, rho, seed):
    rng = np.random.default_rng(seed)
    reference = relu_reference if activation == "relu" else erf_reference
    for q1, q2 in 10 ** rng.uniform(-1.3, 0.6, size=(3, 2)):  # variances in [0.05, 4]
        k, k_dot = dual_activation(q1, q2, rho * math.sqrt(q1 * q2), activation=activation)
        ref_k, ref_k_dot = reference(q1, q2, rho)
        assert float(k) == pytest.approx(ref_k, rel=1e-7, abs=1e-12)
        assert float(k_dot) == pytest.approx(ref_k_dot, rel=1e-7, abs=1e-12)


def test_dual_activation_broadcasts_and_validates():
    k, k_dot = dual_activation(np.ones((3, 1)), np.ones((1, 4)), 0.5, activation="relu")
    assert k.shape == k_dot.shape == (3, 4)
    with pytest.raises(ConfigError, match="cov² must be <= var1 · var2"):
        dual_activation(1.0, 1.0, 1.5, activation="erf")
    with pytest.raises(ConfigError, match="var1 and var2 must be >= 0"):
        dual_activation(-1.0, 1.0, 0.0, activation="relu")
    with pytest.raises(ConfigError, match=r"activation must be one of \('relu', 'erf', 'identity'\), got 'tanh'"):
        dual_activation(1.0, 1.0, 0.0, activation="tanh")


# --- invariances --------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("parametrization", ["ntk", "standard"])
def test_gram_matrices_are_symmetric_psd(activation, parametrization, seed):
    x = np.random.default_rng(seed).normal(size=(40, 7))
    x[5] = x[4]  # a repeated input: a singular Gram matrix
    k = infinite_width_kernels(x, depth=3, activation=activation, bias_var=0.1, parametrization=parametrization,
                               widths=[50, 60, 70])
    for kernel in (k.nngp, k.ntk):
        np.testing.assert_array_equal(kernel, kernel.T)
        eigenvalues = np.linalg.eigvalsh(kernel)
        assert eigenvalues.min() >= -1e-12 * eigenvalues.max()


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_cross_kernel_is_the_block_of_the_gram_matrix(inputs, activation):
    kwargs = dict(depth=2, activation=activation, bias_var=0.3)
    x1, x2 = inputs[:4], inputs[4:]
    full = infinite_width_kernels(inputs, **kwargs)
    cross = infinite_width_kernels(x1, x2, **kwargs)
    swapped = infinite_width_kernels(x2, x1, **kwargs)
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(cross, name), getattr(full, name)[:4, 4:], rtol=1e-12)
        np.testing.assert_allclose(getattr(swapped, name), getattr(cross, name).T, rtol=1e-12)


def test_rotation_invariance_and_relu_homogeneity(inputs, seed):
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(5, 5)))
    kwargs = dict(depth=3, activation="relu", weight_var=1.7)
    k = infinite_width_kernels(inputs, **kwargs)
    rotated = infinite_width_kernels(inputs @ rotation, **kwargs)
    # rtol as below: for the antipodal pair 2, 3 the rotation's rounding δ in ρ = −1 moves arccos ρ by √(2δ) ≈ 1e-8
    # (its size depends on the CPU and its BLAS: 3e-9 measured on an AMD EPYC)
    np.testing.assert_allclose(rotated.ntk, k.ntk, rtol=1e-7)
    scales = np.array([0.5, 1.0, 2.0, 3.0, 1.0, 0.1])  # no bias: ReLU kernels are 1-homogeneous in each input
    scaled = infinite_width_kernels(scales[:, None] * inputs, **kwargs)
    # Inputs 2 and 3 are antipodal: a rounding error δ in ρ = −1 moves θ = arccos ρ by √(2δ) ≈ 1e-8.
    np.testing.assert_allclose(scaled.ntk, np.outer(scales, scales) * k.ntk, rtol=1e-7)
    np.testing.assert_allclose(scaled.nngp, np.outer(scales, scales) * k.nngp, rtol=1e-7)


def test_zero_input_without_bias_gives_a_zero_row_not_nan(inputs):
    x = np.vstack([inputs, np.zeros(5)])
    for activation in ("relu", "erf"):
        k = infinite_width_kernels(x, depth=3, activation=activation)
        assert np.all(np.isfinite(k.ntk)) and np.all(np.isfinite(k.nngp))
        np.testing.assert_array_equal(k.ntk[-1], 0.0)
        np.testing.assert_array_equal(k.nngp[:, -1], 0.0)


def test_accepts_torch_tensors(inputs):
    k = infinite_width_kernels(torch.tensor(inputs, dtype=torch.float32), depth=1)
    assert k.ntk.dtype == np.float64 and k.ntk.shape == (6, 6)
    np.testing.assert_allclose(k.ntk, ntk_kernel(inputs.astype(np.float32), depth=1), rtol=1e-12)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(depth=-1), r"depth must be an integer >= 0 \(the number of hidden layers\), got -1"),
        (dict(depth=1.5), "depth must be an integer"),
        (dict(activation="tanh"), r"activation must be one of \('relu', 'erf', 'identity'\), got 'tanh'"),
        (dict(parametrization="mup"), r"parametrization must be one of \('ntk', 'standard'\), got 'mup'"),
        (dict(weight_var=0.0), r"weight_var \(σ_w²\) must be finite and > 0, got 0.0"),
        (dict(bias_var=-1.0), r"bias_var \(σ_b²\) must be finite and >= 0, got -1.0"),
        (dict(bias_var=float("nan")), "bias_var"),
        (dict(parametrization="standard"), r"widths \(the 2 hidden widths\) are required for parametrization='standard'"),
        (dict(parametrization="standard", widths=[10]), r"widths must be 2 integers >= 1 .*got \[10\]"),
        (dict(widths=[10, 0]), r"widths must be 2 integers >= 1"),
        (dict(x2=np.ones((3, 4))), r"same number of features, got shapes \(6, 5\) and \(3, 4\)"),
        (dict(x2=np.ones(5)), r"x2 must be a 2-D array of shape \(n_samples, in_features\), got shape \(5,\)"),
        (dict(x2=np.full((2, 5), np.nan)), "x2 must be finite"),
    ],
    ids=["depth-neg", "depth-float", "activation", "parametrization", "weight-var", "bias-var", "bias-var-nan",
         "sp-no-widths", "sp-short-widths", "zero-width", "feature-mismatch", "x2-1d", "x2-nan"],
)
def test_bad_arguments_raise_config_error(inputs, kwargs, match):
    args = dict(depth=2) | kwargs
    with pytest.raises(ConfigError, match=match):
        infinite_width_kernels(inputs, args.pop("x2", None), **args)


# --- Monte Carlo against wide random networks ----------------------------------------------------


def ntk_network_kernels(x, *, depth, activation, weight_var, bias_var, width, seeds, parametrization="ntk"):
    """For each seed, one network's empirical NTK and the empirical NNGP of its last hidden layer
    ``σ_w² h·h'/n + σ_b²`` (the covariance of its output given the hidden layer), each (n, n)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    ntks, nngps = [], []
    for s in seeds:
        model = ntk_mlp(x.shape[1], [width] * depth, 1, activation=activation, weight_var=weight_var,
                        bias_var=bias_var, parametrization=parametrization, seed=s, dtype=torch.float64).eval()
        ntks.append(empirical_ntk(model, xt).numpy())
        with torch.no_grad():
            h = model[:-1](xt).numpy()
        nngps.append(weight_var * h @ h.T / width + bias_var)
    return np.stack(nngps), np.stack(ntks)


def assert_within_monte_carlo_error(samples, expected, *, width, depth):
    """The seed average matches the theory within 4 standard errors plus the O(1/width) finite-width bias.

    One network's kernel differs from its limit by a relative (Frobenius) error ``ε`` that is measured
    here from the spread across seeds; for ReLU its variance is about ``5 depth/width`` (Hanin & Nica
    2019, arXiv:1909.05989, Theorem 1), so ``ε ≤ 3 √(5 depth/width)`` is required first. The mean of
    ``S`` independent networks then has error ``ε/√S`` (4 of those are allowed) plus a bias of order
    ``depth/width`` (``2 (depth + 1)/width`` is allowed).
    """
    num_seeds = len(samples)
    scale = np.linalg.norm(expected)
    mean = samples.mean(axis=0)
    spread = math.sqrt(((samples - mean) ** 2).sum() / (num_seeds - 1)) / scale
    error = np.linalg.norm(mean - expected) / scale
    assert spread <= 3 * math.sqrt(5 * depth / width), f"one network's relative error {spread:.3g} is not O(1/√width)"
    tolerance = 4 * spread / math.sqrt(num_seeds) + 2 * (depth + 1) / width
    assert error <= tolerance, f"relative error of the mean {error:.3g} > {tolerance:.3g} (spread {spread:.3g})"


MC_CASES = [  # (activation, depth, σ_w², σ_b²)
    ("relu", 1, 2.0, 0.0),
    ("relu", 2, 2.0, 0.3),
    ("relu", 3, 1.5, 0.1),
    ("erf", 1, 1.5, 0.0),
    ("erf", 2, 1.5, 0.3),
    ("erf", 3, 2.5, 0.1),
]
MC_IDS = [f"{a}-depth{d}-bias{b}" for a, d, _, b in MC_CASES]


@pytest.mark.parametrize(("activation", "depth", "weight_var", "bias_var"), MC_CASES, ids=MC_IDS)
def test_matches_wide_networks_ntk_parametrization(inputs, activation, depth, weight_var, bias_var, seed):
    width, seeds = 512, range(seed, seed + 8)
    nngps, ntks = ntk_network_kernels(inputs, depth=depth, activation=activation, weight_var=weight_var,
                                      bias_var=bias_var, width=width, seeds=seeds)
    k = infinite_width_kernels(inputs, depth=depth, activation=activation, weight_var=weight_var, bias_var=bias_var)
    assert_within_monte_carlo_error(nngps, k.nngp, width=width, depth=depth)
    assert_within_monte_carlo_error(ntks, k.ntk, width=width, depth=depth)


@pytest.mark.slow
@pytest.mark.parametrize(("activation", "depth", "weight_var", "bias_var"), MC_CASES, ids=MC_IDS)
def test_matches_very_wide_networks_ntk_parametrization(inputs, activation, depth, weight_var, bias_var, seed):
    width, seeds = 4096, range(seed, seed + 6)
    nngps, ntks = ntk_network_kernels(inputs, depth=depth, activation=activation, weight_var=weight_var,
                                      bias_var=bias_var, width=width, seeds=seeds)
    k = infinite_width_kernels(inputs, depth=depth, activation=activation, weight_var=weight_var, bias_var=bias_var)
    assert_within_monte_carlo_error(nngps, k.nngp, width=width, depth=depth)
    assert_within_monte_carlo_error(ntks, k.ntk, width=width, depth=depth)


def test_mean_field_network_kernels_are_the_ntk_ones_over_width(inputs, seed):
    """Output multipliers σ_w/n_L and σ_b/√n_L instead of σ_w/√n_L and σ_b: the NTK is the NTK network's / n_L."""
    width, depth, bias_var = 512, 2, 0.2
    nngps, ntks = ntk_network_kernels(inputs, depth=depth, activation="relu", weight_var=2.0, bias_var=bias_var,
                                      width=width, seeds=range(seed, seed + 8), parametrization="mean-field")
    k = infinite_width_kernels(inputs, depth=depth, activation="relu", weight_var=2.0, bias_var=bias_var)
    assert_within_monte_carlo_error(ntks, k.ntk / width, width=width, depth=depth)
    # The hidden layers are the NTK network's: the last hidden layer's kernel is the full NNGP.
    assert_within_monte_carlo_error(nngps, k.nngp, width=width, depth=depth)


def sp_network(in_features, widths, *, activation, weight_var, bias_var, seed):
    """Standard parametrisation from plain ``nn.Linear``: ``W ~ N(0, σ_w²/fan_in)``, ``b ~ N(0, σ_b²)``."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [in_features, *widths, 1]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = torch.nn.utils.skip_init(nn.Linear, fan_in, fan_out, bias=bias_var > 0, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.normal_(0.0, math.sqrt(weight_var / fan_in), generator=gen)
            if layer.bias is not None:
                layer.bias.normal_(0.0, math.sqrt(bias_var), generator=gen)
        layers.append(layer)
        if i < len(widths):
            layers.append(nn.ReLU() if activation == "relu" else Erf())
    return nn.Sequential(*layers).eval()


SP_CASES = [("relu", (384, 640), 2.0, 0.2), ("erf", (640, 384), 1.5, 0.0), ("relu", (512,), 1.0, 0.5)]


@pytest.mark.parametrize(("activation", "widths", "weight_var", "bias_var"), SP_CASES,
                         ids=[f"{a}-{'x'.join(map(str, w))}-bias{b}" for a, w, _, b in SP_CASES])
def test_matches_wide_networks_standard_parametrization(inputs, activation, widths, weight_var, bias_var, seed):
    """SP's NTK grows with the (unequal) widths; the theory with those widths matches the networks."""
    xt = torch.as_tensor(inputs)
    samples = np.stack([
        empirical_ntk(sp_network(5, widths, activation=activation, weight_var=weight_var, bias_var=bias_var, seed=s),
                      xt).numpy()
        for s in range(seed, seed + 8)
    ])
    expected = ntk_kernel(inputs, depth=len(widths), activation=activation, weight_var=weight_var,
                          bias_var=bias_var, parametrization="standard", widths=widths)
    assert_within_monte_carlo_error(samples, expected, width=min(widths), depth=len(widths))
    ntk_param = ntk_kernel(inputs, depth=len(widths), activation=activation, weight_var=weight_var, bias_var=bias_var)
    assert np.linalg.norm(expected) > 50 * np.linalg.norm(ntk_param)  # O(width) larger than the NTK parametrisation's
