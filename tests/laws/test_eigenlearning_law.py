"""The eigenlearning law on reduced settings: it passes where the theory holds, fails when fed a wrong input."""

import dataclasses

import numpy as np
import pytest
import torch

import lmech.laws.eigenlearning  # noqa: F401 - registers the law
from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.eigenlearning import (
    Population,
    compare,
    digits_population,
    measure,
    num_draws_at,
    power_law_population,
    predict,
)
from lmech.theory import eigenlearning, finite_population_eigenlearning

# Both populations, n up to half the synthetic population's 600 points: about 5 s on one core.
SMALL = dict(sizes=(5, 20, 100, 300), num_points=600, num_draws=20, points_per_size=1000)


@pytest.fixture(scope="module")
def law():
    return get_law("eigenlearning")


@pytest.fixture(scope="module")
def small_result(law):
    return law.run(law.config(**SMALL))


@pytest.fixture(scope="module")
def synthetic(seed):
    return power_law_population(400, alpha=1.5, beta=1.2, seed=seed)


@pytest.fixture(scope="module")
def synthetic_measured(synthetic, seed):
    """100 draws per size and ridge: the mean test MSE is good to about 1 % (its standard error)."""
    return measure(synthetic, (50, 200, 300), (0.0, 0.1, 1.0), num_draws=100, points_per_size=0, num_modes=10, seed=seed)


def test_small_setting_passes_every_check(small_result):
    failed = [(c.name, c.measured, c.predicted) for c in small_result.checks if not c.passed]
    assert not failed
    names = [c.name for c in small_result.checks]
    for population in ("digits", "power-law"):
        for ridge in ("0", "0.3"):
            for n in (20, 100, 300):  # every n >= 20 has its own check; n = 5 has none
                assert f"{population} δ={ridge} n={n}: test MSE" in names
            assert sum(name.startswith(f"{population} δ={ridge}: learnability") for name in names) == 1
    assert not any("n=5:" in name for name in names)


def test_result_tables_and_figure(small_result):
    metrics = small_result.metrics.to_arrow()
    assert {"step", "observable", "value", "population", "ridge", "mode"} <= set(metrics.column_names)
    steps, draws = small_result.metrics.series("draws", population="digits", ridge=0.0)
    assert steps.tolist() == [5, 20, 100, 300]
    assert draws.tolist() == [200, 50, 20, 20]  # max(num_draws, ceil(points_per_size / n))
    curves = small_result.curves
    assert {"curve", "x", "y", "population", "ridge", "mode"} <= set(curves.column_names)
    assert set(curves.column("curve").to_pylist()) == {"test_mse", "learnability", "test_mse_infinite_population"}
    assert "eigenlearning" in small_result.figures
    checked = {k: v for k, v in small_result.summary.items() if "published" not in k}
    assert len(checked) == 8 and max(checked.values()) < 0.1
    assert len(small_result.summary) == 10  # plus the published estimate's error at each ridge > 0


def test_population_eigensystems_are_exact(synthetic):
    digits = digits_population("laplace", 0.2)
    for pop in (synthetic, digits):
        n = pop.size
        phi, lam = pop.eigenfunctions, pop.eigenvalues
        torch.testing.assert_close(phi.T @ phi / n, torch.eye(n, dtype=torch.float64), atol=1e-9, rtol=0)
        torch.testing.assert_close(pop.kernel @ phi[:, :20] / n, phi[:, :20] * lam[:20], atol=1e-12, rtol=0)
        assert torch.all(lam[:-1] >= lam[1:])
        assert float(lam.sum()) == pytest.approx(1.0, rel=1e-9)  # mean K(x, x) = 1
        assert float(torch.sum(pop.target_coeffs**2)) == pytest.approx(float(torch.mean(pop.target**2)), rel=1e-9)
    i = torch.arange(1, 401, dtype=torch.float64)
    torch.testing.assert_close(synthetic.eigenvalues, i**-1.5 / torch.sum(i**-1.5))  # the prescribed spectrum
    assert digits.size == 1797 and float(digits.target.mean()) == pytest.approx(0.0, abs=1e-12)


def test_finite_population_estimate_matches_simulation(synthetic, synthetic_measured):
    for (ridge, n), m in synthetic_measured.items():
        p = predict(synthetic, n, ridge)
        assert m.test_mse == pytest.approx(p.test_mse, rel=0.05)
        np.testing.assert_allclose(m.learnability, p.learnability[:10], atol=0.02)
    # At n/N = 3/4 with a ridge, eigenlearning's infinite-population estimate is 20 % off; at ridge 0 the two agree.
    m = synthetic_measured[(0.1, 300)]
    assert m.test_mse < 0.85 * predict(synthetic, 300, 0.1, finite_population=False).test_mse
    assert predict(synthetic, 300, 0.0).test_mse == eigenlearning(
        synthetic.eigenvalues.numpy(), synthetic.target_coeffs.numpy(), 300).test_mse


@pytest.mark.parametrize(
    "wrong",
    ["spectrum_of_another_alpha", "ridge_on_normalised_gram", "shuffled_target"],
)
def test_checks_fail_when_the_theory_is_fed_a_wrong_input(synthetic, synthetic_measured, wrong):
    ridges, sizes = (0.0, 0.1, 1.0), (50, 200, 300)
    if wrong == "spectrum_of_another_alpha":
        i = torch.arange(1, 401, dtype=torch.float64)
        fed = dataclasses.replace(synthetic, eigenvalues=i**-2.5 / torch.sum(i**-2.5))
    elif wrong == "shuffled_target":  # the right amount of target power, in the wrong modes
        fed = dataclasses.replace(synthetic, target=synthetic.eigenfunctions @ synthetic.target_coeffs.flip(0))
    else:
        fed = synthetic
    scale = {"ridge_on_normalised_gram": lambda r, n: r * n}.get(wrong, lambda r, n: r)  # δ meant for K/n + δI
    predicted = {(r, n): predict(fed, n, scale(r, n)) for r in ridges for n in sizes}
    checks = compare("power-law", synthetic_measured, predicted, ridges, sizes)
    failed = [c for c in checks if not c.passed]
    right = compare("power-law", synthetic_measured,
                    {(r, n): predict(synthetic, n, r) for r in ridges for n in sizes}, ridges, sizes)
    assert all(c.passed for c in right)
    assert len(failed) >= 3
    assert all(abs(c.measured / c.predicted - 1) > 0.1 for c in failed if "test MSE" in c.name)


def test_an_unsolvable_gram_matrix_is_a_clear_error():
    n = 50
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    gram = torch.outer(x, x) + 1.0  # rank 2: K(X, X) is singular at ridge 0
    pop = Population("power-law", gram, torch.zeros(n), torch.eye(n) * n**0.5, x)
    with pytest.raises(ConfigError, match="not numerically positive definite .* use a ridge > 0"):
        measure(pop, (10,), (0.0,), num_draws=2, points_per_size=0, num_modes=1, seed=0)


def test_num_draws_grow_for_small_sizes():
    assert num_draws_at(5, 20, 1000) == 200
    assert num_draws_at(300, 20, 1000) == 20
    assert num_draws_at(7, 20, 1000) == 143  # ceil


def test_finite_population_needs_n_below_the_population():
    with pytest.raises(ConfigError, match="n must be below the population size 10, got n=10"):
        finite_population_eigenlearning(np.full(10, 0.1), np.ones(10), 10, ridge=0.1, population_size=10)


def test_presets_exist_and_validate(law):
    quick, full = law.config("quick"), law.config("full")
    assert quick.num_draws < law.config().num_draws < full.num_draws
    for config in (quick, law.config(), full):
        assert min(config.sizes) == 5 and max(config.sizes) == 1000 and len(config.sizes) >= 8
        assert config.num_draws >= 20 and 0.0 in config.ridges and max(config.ridges) > 0
    with pytest.raises(ConfigError, match="preset must be one of"):
        law.config("huge")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(populations=("mnist",)), "population must be one of"),
        (dict(populations=()), "populations must name at least one"),
        (dict(kernel="cosine"), "kernel must be one of"),
        (dict(bandwidth=0.0), "bandwidth must be finite and > 0, got 0.0"),
        (dict(ridges=(0.0, -1.0)), "ridge must be finite and >= 0, got -1.0"),
        (dict(ridges=(0.3, 0.3)), "ridges must be distinct"),
        (dict(sizes=(5, 10)), "sizes must include one n >= 20"),
        (dict(sizes=(20, 1797)), "below the digits population's 1797 points, got n=1797"),
        (dict(num_points=500), "below the power-law population's 500 points, got n=1000"),
        (dict(num_points=10**5), "num_points must be between 2 and 4000"),
        (dict(num_draws=1), "num_draws must be >= 2"),
        (dict(num_modes=0), "num_modes must be between 1 and"),
        (dict(alpha=-1.0), "alpha must be finite and > 0"),
        (dict(seed=-5), r"seed must be a whole number in \[0, 2\*\*32\)"),
    ],
    ids=["unknown-population", "no-population", "kernel", "bandwidth", "negative-ridge", "duplicate-ridges",
         "too-small", "too-big-digits", "too-big-synthetic", "huge-population", "one-draw", "no-modes", "alpha",
         "seed"],
)
def test_bad_configs_are_refused(law, overrides, message):
    with pytest.raises(ConfigError, match=message):
        law.config(**overrides)
