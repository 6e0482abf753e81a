"""The deep-linear-modes law: it passes where the theory holds and fails where it cannot."""

import numpy as np
import pytest
import torch

import lmech.laws.deep_linear_modes as dlm
from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.theory import effective_init_strength


@pytest.fixture(scope="module")
def law():
    return get_law("deep-linear-modes")


@pytest.fixture(scope="module")
def quick_result(law):
    return law.run(law.config("quick"))


def _verdicts(result, part: str) -> dict[str, bool]:
    return {c.name: c.passed for c in result.checks if part in c.name}


def test_quick_setting_passes_every_check(quick_result):
    failed = [(c.name, c.measured, c.predicted) for c in quick_result.checks if not c.passed]
    assert not failed
    names = " ".join(c.name for c in quick_result.checks)
    for depth in (2, 3):
        assert f"L={depth} aligned: trajectories" in names
        assert f"L={depth} random: learned in decreasing order" in names
        assert sum(f"L={depth} random: mode" in c.name for c in quick_result.checks) == 4
        assert f"L={depth} random: balancedness" in names


def test_records_and_curves_are_long_form(law, quick_result):
    config = law.config("quick")
    table = quick_result.metrics.to_arrow()
    assert {"step", "observable", "value", "depth", "init", "mode", "s", "layer"} <= set(table.column_names)
    observables = {"mode_strength", "loss", "balancedness_drift", "effective_init_strength"}
    assert set(table.column("observable").to_pylist()) == observables
    steps, strength = quick_result.metrics.series("mode_strength", depth=3, init="random", mode=0)
    assert steps[0] == 0 and strength[-1] == pytest.approx(config.singular_values[0], rel=1e-3)
    curves = quick_result.curves
    assert {"curve", "x", "y", "depth", "init", "mode", "s"} <= set(curves.column_names)
    assert set(curves.column("curve").to_pylist()) == {"mode_strength", "loss"}
    assert set(quick_result.figures) == {"deep_linear_modes"}


def test_large_step_breaks_flow_tracking_and_balancedness(law):
    # lr·s_max = 0.12: GD lags gradient flow by several percent of s and stops conserving W₂ᵀW₂ − W₁W₁ᵀ.
    result = law.run(law.config(depths=(2,), init_strength=1e-2, lr=0.03, record_every=1))
    assert _verdicts(result, "aligned: trajectories") and not any(_verdicts(result, "aligned: trajectories").values())
    assert _verdicts(result, "random: balancedness") == {
        "L=2 random: balancedness conserved, max_t,l ‖D_l(t) − D_l(0)‖_F ÷ ‖D_l(0)‖_F": False}
    assert not result.passed
    # From a balanced, aligned start the layer gradients are balanced as well: GD keeps D_l = 0 exactly.
    assert result.summary["L=2 aligned: balancedness drift"] < 1e-12


def test_a_diverging_step_fails_without_crashing(law):
    result = law.run(law.config(depths=(2,), init_strength=1e-2, lr=1.0, horizon=3.0))
    assert not result.passed
    assert all(not c.passed for c in result.checks if "trajectories" in c.name or "reaches" in c.name)
    assert result.metrics.series("diverged", depth=2, init="aligned")[1].tolist() == [1.0]


@pytest.mark.parametrize(
    "overrides",
    [
        # Width = number of modes: the modes' hidden directions cannot be near-orthogonal, so the modes
        # interact and the one-mode reduction behind the effective initial strength fails.
        dict(width=4, in_features=4, out_features=4),
        # A start far from small: the weak modes grow while the strong ones saturate, no longer apart.
        dict(init_strength=0.3),
    ],
    ids=["width-equals-modes", "large-init"],
)
def test_the_random_start_prediction_fails_outside_its_assumptions(law, overrides):
    result = law.run(law.config("quick", depths=(2,), **overrides))
    assert not all(_verdicts(result, "random: mode").values())


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_effective_strength_of_an_aligned_start_is_its_strength(depth, generator):
    # The balanced, aligned network is its own balanced equivalent: its blow-up time is 1/((L−2) w^{L−2}).
    config = dlm.DeepLinearModesConfig(width=16, depths=(depth,))
    task = dlm.make_task(config, generator)
    layers = dlm.aligned_init(task, 16, depth, 1e-3, generator)
    a0 = effective_init_strength(layers, task.u, task.v, 1e-3 ** (1 / depth))
    np.testing.assert_allclose(a0, 1e-3, rtol=1e-5)


def test_effective_strength_at_depth_two_is_the_growing_component(generator):
    config = dlm.DeepLinearModesConfig(width=32, depths=(2,))
    task = dlm.make_task(config, generator)
    w1, w2 = dlm.random_init(task, 32, 2, 1e-3, generator)
    c = 0.5 * (w1 @ task.v + w2.T @ task.u)
    np.testing.assert_allclose(effective_init_strength([w1, w2], task.u, task.v), np.sum(c**2, axis=0), rtol=1e-12)


def test_random_start_has_orthogonal_middle_layers_and_the_planned_scale(generator):
    config = dlm.DeepLinearModesConfig(width=256, depths=(3,))
    task = dlm.make_task(config, generator)
    w = 1e-3 ** (1 / 3)
    first, middle, last = dlm.random_init(task, 256, 3, 1e-3, generator)
    np.testing.assert_allclose(middle.T @ middle, w**2 * np.eye(256), atol=1e-12)
    growing = 0.5 * (first @ task.v + middle.T @ last.T @ task.u / w)  # E|c_μ|² = w²
    assert np.mean(np.sum(growing**2, axis=0)) == pytest.approx(w**2, rel=0.2)


def test_inputs_are_whitened_so_the_loss_is_the_population_loss(generator):
    config = dlm.DeepLinearModesConfig()
    task = dlm.make_task(config, generator)
    x = task.inputs
    torch.testing.assert_close(x.T @ x / len(x), torch.eye(config.in_features, dtype=torch.float64))
    teacher = task.u @ np.diag(task.s) @ task.v.T
    layers = [torch.tensor(w) for w in dlm.random_init(task, config.width, 3, 1e-2, generator)]
    loss, product, _ = dlm.linear_network_gradients(layers, task.inputs, task.targets)
    assert float(loss) == pytest.approx(0.5 * np.sum((teacher - product.numpy()) ** 2), rel=1e-12)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_hand_gradients_match_autograd(depth, generator):
    dims = [5] + [7] * (depth - 1) + [3]
    layers = [torch.randn(dims[i + 1], dims[i], generator=generator, dtype=torch.float64, requires_grad=True)
              for i in range(depth)]
    x = torch.randn(11, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(11, 3, generator=generator, dtype=torch.float64)
    loss, product, grads = dlm.linear_network_gradients([w.detach() for w in layers], x, y)
    reference = 0.5 * ((x @ torch.linalg.multi_dot(layers[::-1]).T - y) ** 2).sum(dim=1).mean()
    expected = torch.autograd.grad(reference, layers)
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-12)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_half_times_interpolate_and_report_missing_crossings():
    times = np.array([0.0, 1.0, 2.0, 3.0])
    strengths = np.array([[0.0, 0.0], [1.0, 0.1], [3.0, 0.2], [4.0, 0.3]])
    out = dlm.half_times(times, strengths, np.array([4.0, 1.0]))
    assert out[0] == pytest.approx(1.5) and np.isnan(out[1])


def test_presets_exist_and_validate(law):
    quick, standard, full = law.config("quick"), law.config(), law.config("full")
    assert len(full.singular_values) > len(standard.singular_values) >= 4
    for config in (quick, standard, full):
        s = config.singular_values
        assert s[0] / s[-1] >= 4
    with pytest.raises(ConfigError, match="preset must be one of"):
        law.config("huge")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(singular_values=(1.0, 2.0, 3.0, 4.0)), "singular_values must be strictly decreasing"),
        (dict(singular_values=(4.0, -1.0)), "each singular value must be finite and > 0, got -1.0"),
        (dict(singular_values=()), "singular_values must name at least one mode"),
        (dict(in_features=3), r"in_features must be >= the number of modes \(4\), got 3"),
        (dict(width=2), r"width must be >= the number of modes \(4\), got 2"),
        (dict(n_samples=4), r"n_samples must be >= in_features \(6\)"),
        (dict(depths=(1, 2)), "each depth must be an integer >= 2, got 1"),
        (dict(depths=(3, 3)), "depths must be distinct"),
        (dict(init_strength=0.6), r"init_strength must be < half the smallest singular value \(0.5\)"),
        (dict(lr=0.0), "lr must be finite and > 0, got 0.0"),
        (dict(horizon=0.5), "horizon must be >= 1"),
        (dict(seed=-1), r"seed must be a whole number in \[0, 2\*\*32\)"),
    ],
    ids=["increasing-s", "negative-s", "no-modes", "narrow-input", "narrow-hidden", "few-samples", "depth-1",
         "duplicate-depths", "large-init", "zero-lr", "short-horizon", "negative-seed"],
)
def test_bad_configs_are_refused(law, overrides, message):
    with pytest.raises(ConfigError, match=message):
        law.config(**overrides)
