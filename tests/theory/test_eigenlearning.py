"""Eigenlearning (arXiv:2110.03922) against its conservation law, the BCP form, its limits and KRR."""

import numpy as np
import pytest

from lmech.errors import ConfigError
from lmech.theory import bcp_learning_curve, eigenlearning, finite_population_eigenlearning


def power_law(num_modes: int, alpha: float = 1.5, beta: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """λ_i = i^{-α}, v_i² = i^{-β}: a typical kernel spectrum and target power."""
    i = np.arange(1, num_modes + 1, dtype=np.float64)
    return i**-alpha, i ** (-beta / 2)


def wide_spectrum(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """2000 eigenvalues log-uniform over 1e-12..1e6 (plus a few zeros), random target."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([10.0 ** rng.uniform(-12, 6, size=2000), np.zeros(5)])
    return lam, rng.normal(size=lam.size)


SPECTRA = {
    "power_law_1e5": lambda seed: power_law(10**5),
    "power_law_steep": lambda seed: power_law(500, alpha=3.0),
    "flat": lambda seed: (np.ones(300), np.ones(300)),
    "wide_1e-12_1e6": wide_spectrum,
}


@pytest.mark.parametrize("spectrum", list(SPECTRA), ids=list(SPECTRA))
@pytest.mark.parametrize("n", [1, 7, 100, 299])
def test_learnabilities_sum_to_n_at_zero_ridge(spectrum, n, seed):
    lam, v = SPECTRA[spectrum](seed)
    p = eigenlearning(lam, v, n)
    assert p.learnability.sum() == pytest.approx(n, abs=1e-8)
    assert p.kappa > 0
    assert np.all((p.learnability >= 0) & (p.learnability <= 1))
    assert p.e0 >= 1
    assert p.train_mse == 0.0  # interpolation


@pytest.mark.parametrize("n", [3, 50, 1000])
@pytest.mark.parametrize("ridge", [1e-6, 1e-2, 10.0])
def test_ridge_equation_holds(n, ridge):
    lam, v = power_law(5000)
    p = eigenlearning(lam, v, n, ridge=ridge)
    assert p.learnability.sum() + ridge / p.kappa == pytest.approx(n, rel=1e-10)


@pytest.mark.parametrize("spectrum", list(SPECTRA), ids=list(SPECTRA))
@pytest.mark.parametrize(
    ("ridge", "noise_var"),
    [(0.0, 0.0), (0.0, 0.3), (1e-3, 0.1), (2.0, 1.0)],
    ids=["interp", "interp_noise", "ridge", "big_ridge"],
)
@pytest.mark.parametrize("n", [5, 120])
def test_matches_bordelon_canatar_pehlevan(spectrum, ridge, noise_var, n, seed):
    lam, v = SPECTRA[spectrum](seed)
    p = eigenlearning(lam, v, n, ridge=ridge, noise_var=noise_var)
    b = bcp_learning_curve(lam, v, n, ridge=ridge, noise_var=noise_var)
    assert b.kappa == pytest.approx(n * p.kappa, rel=1e-8)
    assert 1 / (1 - b.gamma) == pytest.approx(p.e0, rel=1e-8)
    # BCP's E_g is against the clean target; eigenlearning's test MSE against noisy test labels.
    assert b.gen_error + noise_var == pytest.approx(p.test_mse, rel=1e-8)


def test_many_samples_with_ridge_leave_only_noise():
    lam, v = power_law(200)
    noise_var = 0.01
    errors = [eigenlearning(lam, v, n, ridge=1e-4, noise_var=noise_var).test_mse for n in (10, 10**3, 10**5, 10**7)]
    assert np.all(np.diff(errors) < 0)
    assert errors[-1] == pytest.approx(noise_var, rel=1e-3)
    p = eigenlearning(lam, v, 10**7, ridge=1e-4, noise_var=noise_var)
    np.testing.assert_allclose(p.learnability, 1.0, atol=1e-3)


def test_huge_ridge_learns_nothing():
    lam, v = power_law(200)
    noise_var = 0.2
    p = eigenlearning(lam, v, 50, ridge=1e12, noise_var=noise_var)
    np.testing.assert_allclose(p.learnability, 0.0, atol=1e-9)
    assert p.test_mse == pytest.approx(np.sum(v**2) + noise_var, rel=1e-8)
    assert p.train_mse == pytest.approx(p.test_mse, rel=1e-8)  # δ/(nκ) → 1


def test_zero_eigenvalues_are_never_learned():
    lam = np.array([2.0, 1.0, 0.0, 0.5, 0.0])
    v = np.array([0.0, 0.0, 3.0, 0.0, 4.0])
    p = eigenlearning(lam, v, 2, noise_var=0.0)
    np.testing.assert_array_equal(p.learnability[[2, 4]], 0.0)
    assert p.test_mse == pytest.approx(p.e0 * 25.0, rel=1e-12)


def simulate_krr(lam, v, n, ridge, noise_var, num_trials, rng) -> tuple[float, float]:
    """Mean test MSE (noisy test labels) and train MSE of KRR over ``num_trials`` training sets, with
    features z ~ N(0, I_M) and kernel K(z, z') = Σ_i λ_i z_i z'_i, so the φ_i = z_i are orthonormal under
    the data distribution and the test MSE is exact given the fitted coefficients."""
    z = rng.normal(size=(num_trials, n, lam.size))
    y = z @ v + np.sqrt(noise_var) * rng.normal(size=(num_trials, n))
    scaled = z * np.sqrt(lam)
    gram = np.stack([a @ a.T for a in scaled])  # one BLAS call per set: faster than a batched matmul
    alpha = np.linalg.solve(gram + ridge * np.eye(n), y[..., None])[..., 0]
    coeffs = lam * np.einsum("tnm,tn->tm", z, alpha)  # f̂ = Σ_i coeffs_i φ_i
    test = np.sum((coeffs - v) ** 2, axis=1) + noise_var
    train = np.mean((np.einsum("tij,tj->ti", gram, alpha) - y) ** 2, axis=1)
    return float(test.mean()), float(train.mean())


@pytest.mark.parametrize("n", [20, 80])
@pytest.mark.parametrize(("ridge", "noise_var"), [(0.0, 0.0), (0.0, 0.05), (0.05, 0.05)], ids=["interp", "noise", "ridge"])
def test_prediction_matches_kernel_ridge_simulation(n, ridge, noise_var, seed):
    # M = 200 modes, 200 training sets: the sampling error of the mean test MSE is about 1%, and the
    # theory's finite-n bias about 1-2% here; the train MSE fluctuates more (about 3%).
    lam, v = power_law(200, alpha=1.5, beta=1.0)
    rng = np.random.default_rng([seed, n, int(ridge * 100), int(noise_var * 100)])
    sim_test, sim_train = simulate_krr(lam, v, n, ridge, noise_var, num_trials=200, rng=rng)
    p = eigenlearning(lam, v, n, ridge=ridge, noise_var=noise_var)
    assert sim_test == pytest.approx(p.test_mse, rel=0.05)
    if ridge > 0:
        assert sim_train == pytest.approx(p.train_mse, rel=0.15)
    else:
        assert sim_train == pytest.approx(0.0, abs=1e-12)


def test_solver_is_fast_enough_for_a_million_modes():
    lam, v = power_law(10**6)
    p = eigenlearning(lam, v, 10**4)
    assert p.learnability.sum() == pytest.approx(10**4, rel=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eigenvalues": [1.0, -0.1]}, "eigenvalues must be >= 0"),
        ({"eigenvalues": [1.0, np.nan]}, "eigenvalues must be finite"),
        ({"eigenvalues": np.ones((2, 2))}, "1-D"),
        ({"eigenvalues": []}, "non-empty"),
        ({"target_coeffs": [1.0, 2.0, 3.0]}, "target_coeffs must have the shape"),
        ({"target_coeffs": [1.0, np.inf]}, "target_coeffs must be finite"),
        ({"n": 0}, "n .* must be an integer >= 1, got 0"),
        ({"n": 1.5}, "got 1.5"),
        ({"ridge": -1.0}, "ridge must be finite and >= 0, got -1.0"),
        ({"noise_var": -0.1}, "noise_var must be finite and >= 0, got -0.1"),
        ({"n": 2}, "ridge=0 .* n < number of nonzero eigenvalues \\(2\\), got n=2"),
    ],
    ids=["negative", "nan", "2d", "empty", "shape", "inf_target", "n0", "n_float", "ridge", "noise", "interpolating"],
)
@pytest.mark.parametrize("function", [eigenlearning, bcp_learning_curve], ids=["eigenlearning", "bcp"])
def test_bad_input_raises_config_error(kwargs, match, function):
    args = {"eigenvalues": [1.0, 0.5], "target_coeffs": [1.0, 1.0], "n": 1} | kwargs
    n = args.pop("n")
    with pytest.raises(ConfigError, match=match):
        function(args.pop("eigenvalues"), args.pop("target_coeffs"), n, **args)


def test_more_samples_than_modes_is_fine_with_a_ridge():
    p = eigenlearning([1.0, 0.5], [1.0, 1.0], 10, ridge=0.1)
    assert p.learnability.sum() + 0.1 / p.kappa == pytest.approx(10)


def test_extreme_scales_keep_the_conservation_law_and_finite_e0():
    """The estimate is invariant under λ → cλ, δ → cδ (κ → cκ), however large or small c is."""
    rng = np.random.default_rng(0)
    lam, v = np.sort(rng.random(50))[::-1], rng.standard_normal(50)
    base = eigenlearning(lam, v, 10, ridge=1e-3)
    for c in (1e-300, 1e-30, 1e30, 1e300):
        p = eigenlearning(lam * c, v, 10, ridge=1e-3 * c)
        assert p.kappa == pytest.approx(base.kappa * c, rel=1e-10)
        assert p.test_mse == pytest.approx(base.test_mse, rel=1e-10)
    # One mode dominates at n = 1: E_0 is huge (κ ≈ √λ₂) but finite, not a division by zero.
    p = eigenlearning([1.0, 1e-34], [1.0, 1.0], 1)
    assert p.kappa == pytest.approx(1e-17, rel=1e-6) and p.e0 == pytest.approx(5e16, rel=1e-6)
    assert eigenlearning(np.full(100, 1e307), np.ones(100), 10).learnability.sum() == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(dict(population_size=50), r"population_size must be an integer at least the number of eigenvalues \(100\)"),
     (dict(population_size=100.5), "population_size must be an integer"),
     (dict(ridge=-0.1), "ridge must be finite and >= 0"),
     (dict(n=100), "n must be below the population size 100")],
    ids=["population-smaller-than-spectrum", "fractional-population", "negative-ridge", "n-equals-population"],
)
def test_finite_population_refuses_bad_input(overrides, message):
    kw = dict(eigenvalues=np.full(100, 0.01), target_coeffs=np.full(100, 0.1), n=10, ridge=0.5, population_size=100)
    with pytest.raises(ConfigError, match=message):
        finite_population_eigenlearning(**{**kw, **overrides})
