"""The ntk-infinite-width law: its closed-form kernel flow, a reduced setting that passes, and a
setting too narrow for the infinite-width prediction, which must fail."""

import numpy as np
import pytest
from scipy.linalg import expm

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.ntk_infinite_width import kernel_gradient_flow, loglog_slope

SMALL = dict(widths=(64, 256, 1024), seeds=1, n_kernel=32, n_train=60, n_test=60,
             wide_widths=(2048, 8192, 16384), change_widths=(128, 512, 2048), time=20.0, checkpoints=4)


@pytest.fixture(scope="module")
def law():
    return get_law("ntk-infinite-width")


@pytest.fixture
def kernel_problem():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 6))
    k = a @ a.T  # Θ on 5 train + 4 test points, PSD
    f0 = rng.standard_normal((9, 2))
    y = rng.standard_normal((5, 2))
    return k, f0, y


def test_kernel_gradient_flow_equals_the_matrix_exponential(kernel_problem):
    """df/dt = −Θ(·, X)(f(X) − Y)/n is linear in z = [f(X) − Y; f(X*)]: z_t = exp(A t) z_0 with
    A = −[[Θ(X, X), 0], [Θ(X*, X), 0]]/n, solved by scipy's expm, independent of the eigenbasis."""
    k, f0, y = kernel_problem
    n, times = 5, np.array([0.0, 0.3, 2.0, 50.0])
    got = kernel_gradient_flow(k[:5, :5], k[5:, :5], f0[:5], f0[5:], y, times)
    a = np.zeros((9, 9))
    a[:, :5] = -k[:, :5] / n
    z0 = np.vstack([f0[:5] - y, f0[5:]])
    for t, g in zip(times, got):
        np.testing.assert_allclose(g, (expm(a * t) @ z0)[5:], rtol=1e-9, atol=1e-10)
    train_as_test = kernel_gradient_flow(k[:5, :5], k[:5, :5], f0[:5], f0[:5], y, np.array([0.0, 1e6]))
    np.testing.assert_allclose(train_as_test[0], f0[:5])
    np.testing.assert_allclose(train_as_test[1], y, atol=1e-8)  # interpolates after a long time


def test_loglog_slope_of_a_power_law():
    widths = np.array([64.0, 256.0, 1024.0])
    assert loglog_slope(widths, 3.0 * widths**-0.5) == pytest.approx(-0.5)


@pytest.fixture(scope="module")
def small_result(law):
    return law.run(law.config(**SMALL))


def test_small_setting_passes_every_check(small_result):
    failed = [(c.name, c.measured, c.predicted) for c in small_result.checks if not c.passed]
    assert not failed
    assert len(small_result.checks) == 6
    slope = [r["value"] for r in small_result.metrics.rows if r["observable"] == "output_deviation_slope"]
    assert -0.7 < slope[0] < -0.3  # the finite-width deviation falls about as width^(-1/2)
    assert "ntk_infinite_width" in small_result.figures


def test_figure_curve_and_dots_are_the_same_network(small_result):
    """At t = 0 the kernel prediction is the network's own output, so the curve starts on the first dot."""
    widest = SMALL["wide_widths"][-1]
    _, loss = small_result.metrics.series("test_loss", width=widest, seed=0)
    curve = [r for r in small_result.curves.to_pylist() if r["curve"] == "kernel test loss"]
    assert curve[0]["x"] == 0.0 and curve[0]["y"] == pytest.approx(loss[0], rel=1e-5)


def test_the_kernel_moves_lazily_under_ntk_and_richly_under_mup(small_result):
    rows = [r for r in small_result.metrics.rows if r["observable"] == "ntk_relative_change"]
    lazy = {r["width"]: r["value"] for r in rows if r["parametrization"] == "ntk"}
    rich = {r["width"]: r["value"] for r in rows if r["parametrization"] == "mean-field"}
    assert lazy[2048] < lazy[128] / 8  # falls about 16x over a 16x wider range
    assert rich[2048] > 0.2 and rich[2048] > 20 * lazy[2048]


def test_narrow_networks_miss_the_infinite_width_prediction(law):
    result = law.run(law.config(**{**SMALL, "wide_widths": (16, 32, 64), "time": 20.0}))
    verdict = {c.name: c.passed for c in result.checks}
    assert verdict[next(n for n in verdict if n.startswith("(b) width 64"))] is False
    assert not result.passed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(dict(widths=(64, 64, 128)), "widths must be >= 3 distinct increasing widths"),
     (dict(activation="tanh"), "activation must be one of"),
     (dict(n_train=1700, n_test=200), r"max\(n_train, n_kernel\) \+ n_test must be at most 1796"),
     (dict(n_kernel=1750), r"got max\(200, 1750\) \+ 200"),
     (dict(time=0.1, lr=0.5), "time must be at least one step"),
     (dict(wide_widths=(4096, 2048)), "wide_widths must be distinct increasing")],
    ids=["repeated-width", "activation-without-theory", "too-many-digits", "kernel-inputs-too-many", "time-below-a-step",
         "decreasing-wide"],
)
def test_bad_configs_are_refused(law, overrides, message):
    with pytest.raises(ConfigError, match=message):
        law.config(**overrides)


def test_presets(law):
    assert law.config("quick").wide_widths[-1] >= 2048
    assert law.config("full").widths[-1] >= 4096 and law.config().widths[-1] >= 4096
