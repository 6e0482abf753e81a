"""Scaling exponents and the random-feature learning curve: closed forms, limits, and simulation."""

import numpy as np
import pytest

from lmech.errors import ConfigError
from lmech.theory import (
    eigenlearning,
    loglog_slope,
    random_feature_learning_curve,
    scaling_exponent,
)


def power_law(a, b, num_modes):
    i = np.arange(1, num_modes + 1, dtype=np.float64)
    return i**-a, i**-b


@pytest.mark.parametrize(
    ("a", "b", "setting", "expected"),
    [
        (1.5, 2.0, "samples", 1.0),  # target-limited: b − 1 < 2a
        (2.0, 1.5, "samples", 0.5),
        (1.2, 2.6, "samples", 1.6),
        (1.5, 4.5, "samples", 3.0),  # saturated: b − 1 = 3.5 > 2a = 3
        (1.5, 4.0, "samples", 3.0),  # the boundary b − 1 = 2a
        (1.5, 2.0, "features", 1.0),
        (2.5, 3.0, "features", 2.0),
        (1.2, 2.6, "features", 1.2),  # saturated for features (b − 1 = 1.6 > a) but not for samples
        (2.0, 7.0, "features", 2.0),
    ],
)
def test_closed_form_exponents(a, b, setting, expected):
    assert scaling_exponent(a, b, setting) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "setting"),
    [(2.0, 2.5, "samples"), (2.0, 7.0, "samples"), (2.0, 4.0, "samples"), (3.0, 2.0, "features"),
     (2.0, 5.0, "features")],
    ids=["samples-target-limited", "samples-saturated", "samples-near-boundary", "features-target-limited",
         "features-saturated"],
)
def test_theory_curves_reach_the_closed_form(a, b, setting):
    """With corrections that decay fast (|b − 1 − 2a| or |b − 1 − a| >= 1) and a spectrum cut far above
    the sizes, the theory's own log-log slope over n (or p) = 100..1000 is the closed form to 0.01."""
    lam, t = power_law(a, b, 2**15)
    sizes = [100, 215, 464, 1000]
    if setting == "samples":
        curve = [eigenlearning(lam, np.sqrt(t), n).test_mse for n in sizes]
    else:
        curve = [random_feature_learning_curve(lam, t, p).infinite_data_mse for p in sizes]
    assert -loglog_slope(sizes, curve) == pytest.approx(scaling_exponent(a, b, setting), abs=0.01)


@pytest.mark.parametrize(
    ("a", "b", "setting", "message"),
    [
        (1.0, 2.0, "samples", r"a must be finite and > 1 .* got 1.0; pass a spectral decay above 1"),
        (0.5, 2.0, "features", "a must be finite and > 1"),
        (1.5, 1.0, "samples", r"b must be finite and > 1 .* got 1.0; pass a target decay above 1"),
        (1.5, float("nan"), "samples", "b must be finite and > 1"),
        (1.5, 2.0, "widths", r"setting must be one of \('samples', 'features'\) .* got 'widths'"),
    ],
)
def test_closed_form_refuses_divergent_sums_and_unknown_settings(a, b, setting, message):
    with pytest.raises(ConfigError, match=message):
        scaling_exponent(a, b, setting)


def test_loglog_slope_of_a_power_law_and_its_errors():
    x = np.array([3.0, 30.0, 300.0, 1000.0])
    assert loglog_slope(x, 7.0 * x**-1.37) == pytest.approx(-1.37, abs=1e-12)
    with pytest.raises(ConfigError, match="must be finite and > 0"):
        loglog_slope([1.0, 10.0], [1.0, 0.0])
    with pytest.raises(ConfigError, match="at least two distinct values"):
        loglog_slope([5.0, 5.0], [1.0, 2.0])
    with pytest.raises(ConfigError, match="1-D of one shape"):
        loglog_slope([1.0, 2.0, 3.0], [1.0, 2.0])


def test_kappa_solves_the_equation_and_is_eigenlearnings_at_no_ridge():
    lam, t = power_law(1.5, 2.0, 3000)
    for p in (1, 17, 400):
        pred = random_feature_learning_curve(lam, t, p)
        assert float(np.sum(lam / (lam + pred.kappa))) == pytest.approx(p, rel=1e-10)
        assert pred.kappa == pytest.approx(eigenlearning(lam, np.sqrt(t), p).kappa, rel=1e-12)
        assert pred.infinite_data_mse == pytest.approx(float(np.sum(t * pred.kappa / (lam + pred.kappa))), rel=1e-12)


def test_infinite_data_limit_and_least_squares_factor():
    lam, t = power_law(2.0, 3.0, 500)
    infinite = random_feature_learning_curve(lam, t, 40)
    assert infinite.test_mse == infinite.infinite_data_mse
    for n, factor in [(42, 41.0), (80, 79 / 39), (10**9, 1.0)]:
        finite = random_feature_learning_curve(lam, t, 40, num_samples=n)
        assert finite.test_mse == pytest.approx(infinite.infinite_data_mse * factor, rel=1e-6)
        assert finite.kappa == infinite.kappa


def test_infinite_data_error_matches_monte_carlo_over_feature_draws(seed):
    """E_F[Σ t_i − cᵀ Σ_z⁻¹ c] over 2,000 draws of F (M = 400, p = 20), against the deterministic
    equivalent: within 4 % (measured 2 %, with a standard error of 0.5 %)."""
    lam, t = power_law(1.5, 2.0, 400)
    v, rng = np.sqrt(t), np.random.default_rng(seed)
    errors = []
    for _ in range(2000):
        w = rng.standard_normal((20, 400)) * np.sqrt(lam)  # W = F Λ^{1/2}
        c = w @ v
        errors.append(t.sum() - c @ np.linalg.solve(w @ w.T, c))
    predicted = random_feature_learning_curve(lam, t, 20).infinite_data_mse
    assert np.mean(errors) == pytest.approx(predicted, rel=0.04)
    assert np.mean(errors) != pytest.approx(random_feature_learning_curve(lam, t, 25).infinite_data_mse, rel=0.04)


def test_least_squares_factor_matches_simulation_on_real_data(seed):
    """One fixed F; n = 40 samples x ~ N(0, Λ) in R^400, z = F x, y = Σ v_i g_i; ordinary least squares on z;
    the exact population error averaged over 3,000 data sets is E_∞(F) (n − 1)/(n − p − 1) = 2.05 E_∞(F), to
    2 % (measured 0.1 %, with a standard error of 0.45 %)."""
    lam, t = power_law(1.5, 2.0, 400)
    v, rng = np.sqrt(t), np.random.default_rng(seed)
    p, n = 20, 40
    f = rng.standard_normal((p, 400))
    w_feat = f * np.sqrt(lam)
    sigma, c = w_feat @ w_feat.T, w_feat @ v
    best = t.sum() - c @ np.linalg.solve(sigma, c)
    errors = []
    for _ in range(3000):
        g = rng.standard_normal((n, 400))
        z, y = (g * np.sqrt(lam)) @ f.T, g @ v
        w = np.linalg.lstsq(z, y, rcond=None)[0]
        errors.append(t.sum() - 2 * w @ c + w @ sigma @ w)
    assert np.mean(errors) == pytest.approx(best * (n - 1) / (n - p - 1), rel=0.02)
    assert min(errors) >= best * (1 - 1e-9)  # no fit beats the best linear predictor on the features


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_features=10), r"num_features must be an integer in \[1, 10\) .* got 10; use fewer features"),
        (dict(num_features=0), r"num_features must be an integer in \[1, 10\)"),
        (dict(num_features=2.5), "num_features must be an integer"),
        (dict(num_features=4, num_samples=5), r"num_samples must be an integer > num_features \+ 1 = 5 .* got 5"),
        (dict(num_features=4, num_samples=6.5), "num_samples must be an integer"),
        (dict(eigenvalues=-np.ones(10)), "eigenvalues must be finite and >= 0"),
        (dict(eigenvalues=np.ones((2, 5))), r"eigenvalues must be a non-empty 1-D array, got shape \(2, 5\)"),
        (dict(target_power=np.ones(9)), r"target_power must have the shape of eigenvalues \(10,\), got \(9,\)"),
        (dict(target_power=np.full(10, np.inf)), "target_power must be finite and >= 0"),
    ],
    ids=["p-at-modes", "p-zero", "p-fraction", "n-too-small", "n-fraction", "negative-eigenvalues", "2-d",
         "shape-mismatch", "infinite-target"],
)
def test_random_feature_curve_refuses_bad_input(kwargs, message):
    args = dict(eigenvalues=np.ones(10), target_power=np.ones(10), num_features=4) | kwargs
    with pytest.raises(ConfigError, match=message):
        random_feature_learning_curve(**args)


def test_zero_eigenvalues_do_not_count_as_modes():
    lam = np.array([1.0, 0.5, 0.0, 0.0])
    with pytest.raises(ConfigError, match=r"in \[1, 2\)"):
        random_feature_learning_curve(lam, np.ones(4), 2)
    pred = random_feature_learning_curve(lam, np.ones(4), 1)
    assert pred.infinite_data_mse > 2.0  # the two modes the kernel cannot see are never learned
