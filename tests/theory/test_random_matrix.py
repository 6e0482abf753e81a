"""The Marchenko–Pastur law: the closed-form CDF against quadrature of the density, the density's moments against
their closed forms, the law against simulated random matrices (and its failure on heavy-tailed entries), the KS
distance against scipy's, and errors."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from lmech.errors import ConfigError
from lmech.theory.random_matrix import (
    ks_distance_to_marchenko_pastur,
    marchenko_pastur_cdf,
    marchenko_pastur_density,
    marchenko_pastur_edges,
)

SHAPES = [(1.0, 1.0), (1.5, 0.3), (4.0, 2.0), (8.0, 1e-3), (100.0, 1.0)]


def esd(w: np.ndarray) -> np.ndarray:
    """Brute force: eigenvalues of WᵀW/N for W of shape (N, M), N ≥ M (torch's eigensolver: one thread)."""
    return torch.linalg.eigvalsh(torch.from_numpy(w.T @ w / w.shape[0])).numpy()


@pytest.mark.parametrize(("q", "sigma2"), SHAPES, ids=[f"Q{q:g}-s{s:g}" for q, s in SHAPES])
def test_cdf_is_the_integral_of_the_density(q, sigma2):
    lo, hi = marchenko_pastur_edges(q, sigma2)
    for x in np.linspace(lo, hi, 9):
        numeric = integrate.quad(lambda t: float(marchenko_pastur_density(t, q, sigma2)), lo, x, limit=200)[0]
        assert float(marchenko_pastur_cdf(x, q, sigma2)) == pytest.approx(numeric, abs=1e-9)
    assert marchenko_pastur_cdf(np.array([lo - 1.0, hi + 1.0]), q, sigma2).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(("q", "sigma2"), SHAPES, ids=[f"Q{q:g}-s{s:g}" for q, s in SHAPES])
def test_density_moments_match_the_closed_forms(q, sigma2):
    """Mass 1, mean σ² and variance σ⁴/Q (the moments of tr X/M for i.i.d. entries)."""
    lo, hi = marchenko_pastur_edges(q, sigma2)

    def moment(k):
        return integrate.quad(lambda t: t**k * float(marchenko_pastur_density(t, q, sigma2)), lo, hi, limit=200,
                              epsabs=0.0, epsrel=1e-11)[0]

    assert moment(0) == pytest.approx(1.0, abs=1e-8)
    assert moment(1) == pytest.approx(sigma2, rel=1e-8)
    assert moment(2) - moment(1) ** 2 == pytest.approx(sigma2**2 / q, rel=1e-7)


def test_edges_closed_form():
    assert marchenko_pastur_edges(1.0, 3.0) == (0.0, 12.0)
    lo, hi = marchenko_pastur_edges(9.0, 1.0)
    assert (lo, hi) == pytest.approx(((2 / 3) ** 2, (4 / 3) ** 2))
    assert float(marchenko_pastur_density(hi + 1e-9, 9.0)) == 0.0


@pytest.mark.parametrize(("n", "m"), [(600, 600), (1000, 500), (2400, 300)], ids=["Q1", "Q2", "Q8"])
@pytest.mark.parametrize("entries", ["gaussian", "uniform"])
def test_random_matrices_follow_marchenko_pastur(n, m, entries, seed):
    rng = np.random.default_rng(seed)
    sigma2 = 0.7
    if entries == "gaussian":
        w = rng.normal(0.0, np.sqrt(sigma2), size=(n, m))
    else:
        bound = np.sqrt(3 * sigma2)
        w = rng.uniform(-bound, bound, size=(n, m))
    assert ks_distance_to_marchenko_pastur(esd(w), n / m, sigma2) < 0.02


def test_heavy_tailed_entries_and_a_wrong_variance_are_not_marchenko_pastur(seed):
    """Student-t entries with 2.5 degrees of freedom (finite variance, but converging slowly) and a uniform matrix
    compared with the wrong variance (1/fan_in instead of PyTorch's 1/(3·fan_in)) are both far from MP."""
    rng = np.random.default_rng(seed)
    w = rng.standard_t(2.5, size=(512, 512))
    assert ks_distance_to_marchenko_pastur(esd(w), 1.0, float(w.var())) > 0.02
    bound = 1 / np.sqrt(512)
    u = rng.uniform(-bound, bound, size=(512, 512))
    assert ks_distance_to_marchenko_pastur(esd(u), 1.0, bound**2 / 3) < 0.02
    assert ks_distance_to_marchenko_pastur(esd(u), 1.0, bound**2) > 0.3


def test_ks_distance_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    lam = esd(rng.normal(size=(300, 100))) * 1.1  # a slightly wrong scale, so D is not tiny
    expected = stats.kstest(lam, lambda x: marchenko_pastur_cdf(x, 3.0, 1.0)).statistic
    assert ks_distance_to_marchenko_pastur(lam, 3.0, 1.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: marchenko_pastur_edges(0.5), "q = N/M must be a finite number >= 1"),
        (lambda: marchenko_pastur_density(1.0, 2.0, -1.0), "sigma2 .* must be finite and > 0, got -1.0"),
        (lambda: marchenko_pastur_cdf(1.0, float("nan")), "q = N/M must be a finite number >= 1"),
        (lambda: ks_distance_to_marchenko_pastur(np.array([]), 1.0), "non-empty finite array, got 0 values"),
    ],
    ids=["q-below-1", "negative-variance", "nan-q", "empty-spectrum"],
)
def test_errors(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
