"""Weight-matrix spectra: the ESD, stable and effective rank against brute force; the power-law fit against the
closed-form MLE, a brute-force KS scan, synthetic Pareto samples and the Lévy-matrix law α = 1 + μ/2; the
element-wise shuffle as a null; errors."""

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from lmech.errors import ConfigError
from lmech.measure.spectra import (
    aspect_ratio,
    effective_rank,
    esd,
    fit_power_law,
    layer_spectrum,
    permute_entries,
    power_law_alpha,
    singular_values,
    stable_rank,
)
from lmech.theory.random_matrix import ks_distance_to_marchenko_pastur


def pareto(alpha: float, n: int, rng: np.random.Generator, xmin: float = 1.0) -> np.ndarray:
    """Inversion sampling of the density ∝ x^-α on x ≥ xmin, written independently of the law's sampler."""
    return xmin / rng.uniform(size=n) ** (1 / (alpha - 1))


def test_esd_is_the_spectrum_of_the_correlation_matrix(generator):
    w = torch.randn(70, 30, generator=generator, dtype=torch.float64)
    brute = torch.linalg.eigvalsh(w.T @ w / 70).numpy()
    np.testing.assert_allclose(esd(w), brute, rtol=1e-10)
    np.testing.assert_allclose(esd(w.T), brute, rtol=1e-10)  # a (out, in) = (30, 70) weight is oriented the same way
    assert aspect_ratio(w.T) == pytest.approx(70 / 30)
    np.testing.assert_allclose(singular_values(w), torch.linalg.svdvals(w).numpy(), rtol=1e-12)


def test_stable_rank_against_matrix_norms(generator):
    w = torch.randn(50, 20, generator=generator, dtype=torch.float64)
    expected = float(torch.linalg.matrix_norm(w, "fro") ** 2 / torch.linalg.matrix_norm(w, 2) ** 2)
    assert stable_rank(w) == pytest.approx(expected, rel=1e-12)
    q, _ = torch.linalg.qr(torch.randn(50, 50, generator=generator, dtype=torch.float64))
    assert stable_rank(3.0 * q @ w) == pytest.approx(expected, rel=1e-10)  # invariant to rotation and scale
    assert 1.0 <= expected <= 20.0
    assert stable_rank(torch.outer(torch.arange(1.0, 6.0), torch.ones(4))) == pytest.approx(1.0)


def test_effective_rank_against_the_entropy_of_singular_values(generator):
    w = torch.randn(40, 25, generator=generator, dtype=torch.float64)
    s = torch.linalg.svdvals(w).numpy()
    assert effective_rank(w) == pytest.approx(np.exp(stats.entropy(s / s.sum())), rel=1e-12)
    assert effective_rank(np.diag([2.0, 2.0, 2.0, 2.0, 0.0])) == pytest.approx(4.0)
    assert effective_rank(np.outer(np.ones(6), np.arange(1.0, 4.0))) == pytest.approx(1.0)
    assert 1.0 < effective_rank(w) < 25.0


def test_layer_spectrum_agrees_with_the_single_observables(generator):
    w = torch.randn(300, 200, generator=generator, dtype=torch.float64) * 0.1
    spec = layer_spectrum(w)
    np.testing.assert_allclose(spec.eigenvalues, esd(w), rtol=1e-12)
    assert spec.stable_rank == pytest.approx(stable_rank(w)) and spec.effective_rank == pytest.approx(effective_rank(w))
    assert spec.fit == fit_power_law(esd(w))
    assert spec.q == 1.5 and spec.variance == pytest.approx(float(w.var(unbiased=False)))
    assert spec.ks_to_mp < 0.02 and spec.above_mp_edge <= 2  # Gaussian: MP with its own variance, no outliers


def test_alpha_is_the_maximum_of_the_likelihood(seed):
    """The closed form (Clauset et al. eq. 3.1) against a numerical maximisation of the Pareto log-likelihood."""
    x = pareto(2.5, 500, np.random.default_rng(seed), xmin=0.3)
    logs = np.log(x / 0.3)

    def negative_log_likelihood(a):
        return -(len(x) * np.log((a - 1) / 0.3) - a * logs.sum())

    numeric = optimize.minimize_scalar(negative_log_likelihood, bounds=(1.01, 10.0), method="bounded",
                                       options={"xatol": 1e-10}).x
    assert power_law_alpha(x, 0.3) == pytest.approx(numeric, abs=1e-6)
    assert power_law_alpha(x, 0.3) == pytest.approx(1 + len(x) / logs.sum(), rel=1e-14)
    fixed = fit_power_law(x, xmin=0.3)
    assert fixed.alpha == pytest.approx(power_law_alpha(x, 0.3)) and fixed.n_tail == 500


def test_the_xmin_scan_equals_a_brute_force_scan(seed):
    """Every candidate x_min: the MLE α and scipy's KS statistic against the fitted Pareto; the smallest wins."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(0.1, 0.6, 200), pareto(2.8, 150, rng)])
    values = np.sort(x)
    best = None
    for cut in values[: len(values) - 10 + 1]:
        tail = values[values >= cut]
        a = power_law_alpha(values, cut)
        d = stats.kstest(tail, lambda t, a=a, cut=cut: 1 - (t / cut) ** (1 - a)).statistic
        if best is None or d < best[0]:
            best = (d, a, cut, len(tail))
    fit = fit_power_law(x)
    assert (fit.ks_distance, fit.alpha, fit.xmin, fit.n_tail) == pytest.approx(best, rel=1e-10)
    assert 1.0 <= fit.xmin < 1.2  # the scan finds where the tail starts
    assert fit_power_law(x, xmin=values[0]).alpha < fit.alpha - 0.5  # and the whole sample would be badly wrong


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0, 4.0])
def test_fit_recovers_the_exponent_of_pareto_samples(alpha, seed):
    fit = fit_power_law(pareto(alpha, 10_000, np.random.default_rng(seed)))
    assert fit.alpha == pytest.approx(alpha, abs=0.1)
    assert abs(fit.alpha - alpha) < 3 * fit.sigma + 0.02
    assert fit.xmin >= 1.0 and fit.n_tail > 2000


def test_a_tolerance_of_0_1_needs_many_samples():
    """With 200 samples the fit's spread over seeds is wider than 0.1: the Pareto check's tolerance would then
    fail, so at 10,000 samples it is not loose."""
    errors = [fit_power_law(pareto(3.0, 200, np.random.default_rng(s))).alpha - 3.0 for s in range(20)]
    assert np.std(errors) > 0.1 and max(abs(e) for e in errors) > 0.2


@pytest.mark.parametrize("mu", [0.5, 1.0])
def test_levy_matrices_have_tail_exponent_one_plus_mu_over_two(mu):
    """i.i.d. entries with P(|w| > x) ~ x^-μ, μ < 2: the ESD's tail is λ^-(1 + μ/2) (Martin & Mahoney 2021,
    arXiv:1810.01075, Table 3; Ben Arous & Guionnet 2008). Averaged over three 1000 × 500 matrices."""
    alphas = []
    for s in range(3):
        rng = np.random.default_rng(s)
        w = rng.choice([-1.0, 1.0], size=(1000, 500)) * rng.uniform(size=(1000, 500)) ** (-1 / mu)
        alphas.append(fit_power_law(esd(w)).alpha)
    assert np.mean(alphas) == pytest.approx(1 + mu / 2, abs=0.05)


def test_shuffling_entries_separates_correlations_from_heavy_entries(generator):
    """A random matrix plus a few strong rank-one directions (correlated entries, like a trained layer): its tail
    is heavy and the shuffle restores Marchenko–Pastur and a large α. A matrix of i.i.d. heavy-tailed entries: the
    shuffle changes nothing."""
    n = 400
    w = torch.randn(n, n, generator=generator, dtype=torch.float64) / n**0.5
    u = torch.randn(n, 10, generator=generator, dtype=torch.float64) / n**0.5
    v = torch.randn(n, 10, generator=generator, dtype=torch.float64) / n**0.5
    spiked = w + u @ torch.diag(torch.linspace(1.5, 4.0, 10, dtype=torch.float64)) @ v.T
    shuffled = permute_entries(spiked, generator)
    assert sorted(shuffled.flatten().tolist()) == sorted(spiked.flatten().tolist()) and shuffled.shape == spiked.shape
    variance = float(spiked.var())
    assert ks_distance_to_marchenko_pastur(esd(spiked), 1.0, variance) > 0.02
    assert ks_distance_to_marchenko_pastur(esd(shuffled), 1.0, variance) < 0.02
    assert fit_power_law(esd(spiked)).alpha < fit_power_law(esd(shuffled)).alpha - 2
    heavy = torch.from_numpy(np.random.default_rng(0).standard_t(1.0, size=(n, n)))  # Cauchy: 1 + μ/2 = 1.5
    alphas = [fit_power_law(esd(m)).alpha for m in (heavy, *(permute_entries(heavy, generator) for _ in range(3)))]
    assert max(alphas) < 2.5  # heavy before and after: the shuffle keeps an entry-wise heavy tail


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: esd(torch.zeros(5)), r"weight must be a 2-D matrix, got shape \(5,\)"),
        (lambda: esd(np.full((3, 3), np.nan)), "non-finite entries"),
        (lambda: stable_rank(np.zeros((3, 2))), "zero matrix"),
        (lambda: fit_power_law(np.ones(20) * np.arange(20), min_tail=1), "min_tail must be an integer >= 2, got 1"),
        (lambda: fit_power_law(np.arange(1.0, 6.0)), "at least min_tail = 10 positive samples, got 5"),
        (lambda: fit_power_law(np.ones(30)), "all samples equal"),
        (lambda: power_law_alpha(np.arange(1.0, 5.0), -1.0), "xmin must be finite and > 0, got -1.0"),
        (lambda: layer_spectrum(np.ones((30, 30))), "constant entries"),
    ],
    ids=["1-d", "nan", "zero-matrix", "min-tail", "too-few", "all-equal", "negative-xmin", "constant"],
)
def test_errors(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
