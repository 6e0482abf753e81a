"""The kernel-scaling-exponent law: it passes on a reduced setting, its measurements are exact, and it
fails when the theory is fed the wrong spectrum or target."""

import dataclasses
import math

import numpy as np
import pytest

import lmech.laws.kernel_scaling_exponent as kse  # registers the law
from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.theory import random_feature_learning_curve

# Two pairs, both Gaussian settings, 4,096 modes, n and p = 10..1000: about 8 s on one core.
SMALL = dict(pairs=((1.5, 2.0), (2.0, 1.5)), num_modes=2**12, num_draws=6, points_per_size=2000)


@pytest.fixture(scope="module")
def law():
    return get_law("kernel-scaling-exponent")


@pytest.fixture(scope="module")
def small_config(law, seed):
    return law.config(seed=seed, **SMALL)


@pytest.fixture(scope="module")
def small_result(law, small_config):
    return law.run(small_config)


def test_small_setting_passes_every_check(small_result):
    failed = [(c.name, c.measured) for c in small_result.checks if not c.passed]
    assert not failed
    names = [c.name for c in small_result.checks]
    assert len(names) == 8  # 2 settings × 2 pairs × (exponent, level)
    for setting in ("krr-gaussian", "random-features"):
        for pair in ("a=1.5 b=2", "a=2 b=1.5"):
            assert sum(n.startswith(f"{setting} {pair}: |measured − predicted exponent|") for n in names) == 1
            assert sum(n.startswith(f"{setting} {pair}: max |measured/predicted test MSE − 1|") for n in names) == 1
    for check in small_result.checks:
        assert check.predicted == (0.05 if "exponent" in check.name else 0.15)


def test_result_tables_curves_and_figure(small_result, small_config):
    metrics = small_result.metrics.to_arrow()
    assert {"step", "observable", "value", "setting", "a", "b"} <= set(metrics.column_names)
    steps, draws = small_result.metrics.series("draws", setting="krr-gaussian", a=1.5, b=2.0)
    assert steps.tolist() == list(small_config.sizes)
    assert draws.tolist() == [max(6, math.ceil(2000 / n)) for n in small_config.sizes]
    assert draws.tolist()[:3] == [200, 112, 63]
    p, best = small_result.metrics.series("infinite_data_mse", setting="random-features", a=2.0, b=1.5)
    _, mse = small_result.metrics.series("test_mse", setting="random-features", a=2.0, b=1.5)
    assert p.tolist() == list(small_config.feature_counts) and np.all(best < mse)
    assert small_result.metrics.series("infinite_data_mse", setting="krr-gaussian", a=1.5, b=2.0)[0].size == 0

    rows = small_result.curves.to_pylist()
    assert {"curve", "x", "y", "setting", "a", "b"} <= set(small_result.curves.column_names)
    assert {r["curve"] for r in rows} == {"test_mse", "asymptotic", "infinite_data_mse"}
    theory = sorted((r["x"], r["y"]) for r in rows if r["curve"] == "test_mse" and r["setting"] == "krr-gaussian"
                    and r["a"] == 1.5 and r["b"] == 2.0)
    asymptote = sorted((r["x"], r["y"]) for r in rows if r["curve"] == "asymptotic" and r["setting"] == "krr-gaussian"
                       and r["a"] == 1.5 and r["b"] == 2.0)
    assert asymptote[0] == pytest.approx(theory[0])  # anchored at the theory's first point
    (x0, y0), (x1, y1) = asymptote[0], asymptote[-1]
    assert math.log(y1 / y0) / math.log(x1 / x0) == pytest.approx(-1.0)  # min(b − 1, 2a) = 1

    summary = small_result.summary
    assert summary["random-features a=2 b=1.5: asymptotic exponent"] == 0.5
    assert summary["krr-gaussian a=1.5 b=2: measured exponent"] == pytest.approx(1.0, abs=0.1)
    assert len(summary) == 16  # measured, predicted, asymptotic exponent and level deviation per (setting, pair)
    axes = small_result.figures["kernel_scaling_exponent"].axes
    assert len(axes) == 2 and axes[0].get_xscale() == "log" and axes[1].get_yscale() == "log"


@pytest.fixture(scope="module")
def measured(small_result, small_config):
    """Both Gaussian settings at (a, b) = (1.5, 2), rebuilt from the small run's records and the theory."""
    out = {}
    for setting in ("krr-gaussian", "random-features"):
        sizes, mse = small_result.metrics.series("test_mse", setting=setting, a=1.5, b=2.0)
        _, sd = small_result.metrics.series("test_mse_sd", setting=setting, a=1.5, b=2.0)
        _, draws = small_result.metrics.series("draws", setting=setting, a=1.5, b=2.0)
        grid = kse.curve_sizes(sizes)
        out[setting] = kse.Outcome(sizes, mse, sd, draws, grid, kse.predicted_test_mse(setting, 1.5, 2.0, grid,
                                                                                        small_config))
    return out


@pytest.mark.parametrize("setting", ["krr-gaussian", "random-features"])
def test_checks_fail_when_the_theory_is_fed_a_wrong_target(measured, small_config, setting):
    result = measured[setting]
    right, _ = kse.compare(setting, 1.5, 2.0, result)
    assert all(c.passed for c in right)
    fed = dataclasses.replace(result, theory=kse.predicted_test_mse(setting, 1.5, 2.5, result.grid, small_config))
    exponent, level = kse.compare(setting, 1.5, 2.0, fed)[0]
    assert not exponent.passed and exponent.measured > 0.3  # predicted ≈ 1.5 = b − 1 for b = 2.5, measured ≈ 1
    assert not level.passed


@pytest.mark.parametrize(("setting", "wrong_a"), [("krr-gaussian", 4.0), ("random-features", 2.5)])
def test_a_wrong_spectrum_keeps_the_exponent_but_fails_the_level(measured, small_config, setting, wrong_a):
    """At (a, b) = (1.5, 2) the target limits the rate, min(b − 1, ·) = 1 whatever a is: a theory fed
    the wrong a predicts the same exponent (to 0.05) but the wrong level (by 25 % for kernel regression,
    2.6 times for features), and only the level check fails."""
    result = measured[setting]
    fed = dataclasses.replace(result, theory=kse.predicted_test_mse(setting, wrong_a, 2.0, result.grid, small_config))
    exponent, level = kse.compare(setting, 1.5, 2.0, fed)[0]
    assert exponent.passed
    assert not level.passed and level.measured > 0.2


def test_gaussian_krr_test_mse_is_the_population_error(seed):
    """The per-draw error Σ_i (v_i − v̂_i)² of the measurement, against brute force: the same draw's
    kernel fit evaluated on 200,000 fresh Gaussian test points (M = 64 modes, n = 20)."""
    a, b, m = 1.5, 2.0, 64
    errors = kse.measure_krr_gaussian(a, b, m, (20,), num_draws=2, points_per_size=0, seed=seed)[20]
    lam, t = kse.power_law(a, b, m)
    phi = kse._rng(seed, "krr-gaussian", a, b, 0).standard_normal((20, m))  # draw 0, as the measurement has it
    gram = (phi * lam) @ phi.T  # K(x_j, x_k) = Σ_i λ_i φ_i(x_j) φ_i(x_k)
    alpha = np.linalg.solve(gram, phi @ np.sqrt(t))
    test = np.random.default_rng(seed).standard_normal((200_000, m))
    residual = (test * lam) @ phi.T @ alpha - test @ np.sqrt(t)
    assert errors[0] == pytest.approx(float(np.mean(residual**2)), rel=0.02)


def test_circle_population_and_its_error_are_exact(seed):
    a, b, size = 1.5, 2.0, 128
    population = kse.circle_population(a, b, size, seed)
    gram = population.kernel[(np.arange(size)[:, None] - np.arange(size)[None, :]) % size]
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(gram / size)), np.sort(population.eigenvalues), atol=1e-12)
    assert float(np.mean(population.target**2)) == pytest.approx(float(np.sum(population.target_coeffs**2)), rel=1e-12)
    k = np.arange(1, size // 2)
    power = np.abs(np.fft.rfft(population.target)[1:size // 2]) ** 2 * 2 / size**2
    np.testing.assert_allclose(power, k**-b, rtol=1e-10)  # target power k^(−b) at frequency k
    idx = np.random.default_rng(seed).choice(size, 12, replace=False)
    alpha = np.linalg.solve(gram[np.ix_(idx, idx)], population.target[idx])
    brute = float(np.mean((gram[:, idx] @ alpha - population.target) ** 2))
    assert population.test_mse(idx, alpha) == pytest.approx(brute, rel=1e-9)
    assert brute > 0


def test_random_feature_infinite_data_error_is_exact(seed):
    """E_∞ of each draw, from the running sum of (L⁻¹c)², against the residual of projecting the target
    onto the span of the first p rows of W = F Λ^{1/2} by QR."""
    a, b, m = 2.5, 3.0, 512
    out = kse.measure_random_features(a, b, m, (4, 16, 64), 3.0, num_draws=2, points_per_size=0, seed=seed)
    lam, t = kse.power_law(a, b, m)
    w = kse._rng(seed, "random-features", a, b, 0).standard_normal((64, m)) * np.sqrt(lam)
    for p in (4, 16, 64):
        q, _ = np.linalg.qr(w[:p].T)
        residual = np.sqrt(t) - q @ (q.T @ np.sqrt(t))
        assert out[p][1][0] == pytest.approx(float(residual @ residual), rel=1e-8)
        assert np.all(out[p][0] >= out[p][1])  # a fit on finite data never beats the best predictor


def test_random_feature_fits_match_the_least_squares_factor(seed):
    """Mean over 400 draws of the fitted test MSE over E_∞ of the same draw, against (n − 1)/(n − p − 1):
    the samples drawn from the joint Gaussian of (z, y) behave as fresh data z = F x, y = vᵀ g would."""
    out = kse.measure_random_features(1.5, 2.0, 256, (8, 32), 2.0, num_draws=400, points_per_size=0, seed=seed)
    for p in (8, 32):
        n = kse.num_samples(p, 2.0)
        assert np.mean(out[p][0] / out[p][1]) == pytest.approx((n - 1) / (n - p - 1), rel=0.03)


def test_draw_plan_and_draw_counts():
    assert kse.num_draws_at(10, 3, 100) == 10 and kse.num_draws_at(1000, 3, 100) == 3
    assert kse.num_draws_at(7, 3, 100) == 15  # ceil
    plan = kse.draw_plan((10, 100, 1000), 3, 100)
    assert plan[:3] == [[10, 100, 1000]] * 3 and plan[3:] == [[10]] * 7


def test_theory_matches_the_theory_module(small_config):
    lam, t = kse.power_law(1.2, 2.6, small_config.num_modes)
    p = 100
    curve = kse.predicted_test_mse("random-features", 1.2, 2.6, [p], small_config)
    n = kse.num_samples(p, small_config.samples_per_feature)
    assert curve[0] == random_feature_learning_curve(lam, t, p, n).test_mse
    with pytest.raises(ConfigError, match="needs the circle population"):
        kse.predicted_test_mse("krr-circle", 1.2, 2.6, [p], small_config)


def test_an_unfactorable_gram_matrix_is_a_clear_error(seed):
    with pytest.raises(ConfigError, match="not numerically positive definite at a=12.*use a smaller a"):
        kse.measure_krr_gaussian(12.0, 2.0, 256, (60,), num_draws=2, points_per_size=0, seed=seed)


def test_presets_exist_and_validate(law):
    quick, default, full = law.config("quick"), law.config(), law.config("full")
    assert quick.num_draws < default.num_draws < full.num_draws
    assert quick.settings == default.settings == ("krr-gaussian", "random-features")
    assert full.settings == kse.SETTINGS and len(full.pairs) == 4
    for config in (quick, default, full):
        assert len(config.pairs) >= 3
        for sizes in (config.sizes, config.feature_counts, config.circle_sizes):
            assert max(sizes) / min(sizes) >= 100
    with pytest.raises(ConfigError, match="preset must be one of"):
        law.config("huge")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(pairs=((1.0, 2.0),)), r"a must be finite and > 1 .* got 1.0 in pair \(1.0, 2.0\)"),
        (dict(pairs=((1.5, 0.5),)), r"b must be finite and > 1 .* got 0.5"),
        (dict(pairs=((1.5,),)), r"each pair must be \(a, b\), two numbers, got \(1.5,\)"),
        (dict(pairs=((1.5, "2"),)), r"each pair must be \(a, b\), two numbers, got \(1.5, '2'\)"),
        (dict(pairs=((1.5, 2.0), (1.5, 2.0))), "pairs must be distinct"),
        (dict(pairs=()), "pairs must name at least one"),
        (dict(settings=("krr-sphere",)), "setting must be one of"),
        (dict(settings=()), "settings must name at least one"),
        (dict(sizes=(10, 30, 100)), r"sizes must span at least 2 decades \(max/min >= 100\) .* got 10..100; widen"),
        (dict(feature_counts=(20, 200, 1000)), "feature_counts must span at least 2 decades"),
        (dict(sizes=(10, 1000)), "sizes must hold at least 3 sizes"),
        (dict(sizes=(100, 10, 1000)), "sizes must be distinct and increasing"),
        (dict(sizes=(10, 100, 4000)), r"sizes must stay at most num_modes / 4 = 2048, .* got 4000; raise num_modes"),
        (dict(circle_sizes=(32, 320, 8192)), r"circle_sizes must stay at most circle_points / 256 = 4096"),
        (dict(samples_per_feature=1.0), "samples_per_feature must be finite and > 1"),
        (dict(samples_per_feature=1.1), r"gives n = 11 samples for p = 10 features; least squares needs n > p \+ 1"),
        (dict(num_draws=1), "num_draws must be a whole number >= 2"),
        (dict(num_modes=10**6), r"num_modes must be a whole number in \[64, 32768\]"),
        (dict(circle_points=1001), "circle_points must be an even whole number"),
        (dict(seed=-1), r"seed must be a whole number in \[0, 2\*\*32\)"),
    ],
    ids=["a-at-1", "b-below-1", "pair-of-one", "pair-with-text", "duplicate-pairs", "no-pairs", "unknown-setting", "no-settings",
         "one-decade", "features-one-decade", "two-sizes", "unsorted", "sizes-beyond-modes", "circle-too-big",
         "ratio-1", "ratio-too-small-for-p", "one-draw", "huge-modes", "odd-circle", "seed"],
)
def test_bad_configs_are_refused(law, overrides, message):
    with pytest.raises(ConfigError, match=message):
        law.config(**overrides)


@pytest.mark.slow
def test_circle_exponent_matches_eigenlearning(law, seed):
    """The circle at (a, b) = (2, 1.5): exponent within 0.05 of eigenlearning's, level ratio 1.0-1.15
    (about 20 s)."""
    config = law.config(settings=("krr-circle",), pairs=((2.0, 1.5),), seed=seed, num_draws=6, points_per_size=2000)
    result = law.run(config)
    assert result.passed and len(result.checks) == 1
    ratio = (result.summary["krr-circle a=2 b=1.5: level ratio measured/eigenlearning, min"],
             result.summary["krr-circle a=2 b=1.5: level ratio measured/eigenlearning, max"])
    assert 0.95 < ratio[0] <= ratio[1] < 1.15
    assert set(result.curves.column("setting").to_pylist()) == {"krr-circle"}
