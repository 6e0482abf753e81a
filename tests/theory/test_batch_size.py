"""The steps-examples hyperbola of McCandlish et al. (arXiv:1812.06162): exact recovery, the hyperbola
identity, least squares against a brute-force grid, and errors."""

import numpy as np
import pytest

from lmech.errors import ConfigError
from lmech.theory.batch_size import fit_steps_examples_tradeoff


def test_exact_points_give_back_the_constants_and_satisfy_the_hyperbola():
    b = 2.0 ** np.arange(2, 12)
    fit = fit_steps_examples_tradeoff(b, 500.0 * (1 + 40.0 / b))
    assert fit.s_min == pytest.approx(500.0, rel=1e-6) and fit.b_crit == pytest.approx(40.0, rel=1e-6)
    s, e = fit.steps(b), fit.examples(b)
    np.testing.assert_allclose((s / fit.s_min - 1) * (e / fit.e_min - 1), 1.0, rtol=1e-12)
    assert fit.rms_log_residual < 1e-7


def test_noisy_points_match_a_brute_force_least_squares():
    rng = np.random.default_rng(0)
    b = 2.0 ** np.arange(3, 10)
    s = 600.0 * (1 + 35.0 / b) * np.exp(0.05 * rng.standard_normal(b.size))
    fit = fit_steps_examples_tradeoff(b, s)
    log_bc = np.linspace(np.log(1.0), np.log(1e4), 200_001)
    shape = np.log1p(np.exp(log_bc)[:, None] / b)
    resid = np.log(s) - shape
    resid -= resid.mean(axis=1, keepdims=True)
    best = np.argmin((resid**2).sum(axis=1))
    assert fit.b_crit == pytest.approx(np.exp(log_bc[best]), rel=1e-3)
    assert fit.rms_log_residual == pytest.approx(np.sqrt((resid[best] ** 2).mean()), rel=1e-6)


@pytest.mark.parametrize(("b", "s", "message"), [
    ([1.0, 2.0], [3.0, 2.0], "at least 3"),
    ([1.0, 2.0, 4.0], [3.0, np.inf, 1.0], "finite and > 0"),
    ([2.0, 2.0, 4.0], [3.0, 2.0, 1.0], "3 distinct batch sizes"),
])
def test_bad_points_are_named(b, s, message):
    with pytest.raises(ConfigError, match=message):
        fit_steps_examples_tradeoff(b, s)
