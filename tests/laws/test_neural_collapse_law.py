"""The neural-collapse law: its quick preset collapses; cross-entropy on the same budget does not; a run stopped soon
after zero training error cannot claim a terminal phase; config errors."""

import math

import pytest

from lmech.errors import ConfigError, NonFiniteError
from lmech.laws import get_law
from lmech.laws import neural_collapse as _neural_collapse  # noqa: F401 - registers the law
from lmech.laws.neural_collapse import NeuralCollapseConfig, balanced_digits, measurement_steps


def verdicts(result) -> dict[str, bool]:
    return {c.name.split(":")[0].split(" (")[0]: c.passed for c in result.checks}


@pytest.mark.slow
def test_quick_preset_collapses():
    law = get_law("neural-collapse")
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    s = result.summary
    assert s["lowest training accuracy after t₀"] == 1.0
    assert s["equiangularity at initialisation"] > 3 * s["equiangularity at T"]
    assert s["NC1 at initialisation"] > 100 * s["NC1 at T"]


@pytest.mark.slow
def test_cross_entropy_on_the_same_budget_does_not_collapse():
    """Cross-entropy's gradients vanish once the margins are large: NC1 barely moves and the means stay far from
    the ETF (measured 1.6× and 0.32)."""
    law = get_law("neural-collapse")
    result = law.run(law.config("quick", loss="ce", steps=3000))
    checks = {c.name: c for c in result.checks}
    nc1 = next(c for name, c in checks.items() if name.startswith("NC1(t₀)"))
    angle = next(c for name, c in checks.items() if name.startswith("equiangularity"))
    assert not nc1.passed and nc1.measured < 3
    assert not angle.passed and angle.measured > 0.15


def test_a_run_stopped_early_has_no_terminal_phase_to_check():
    """Zero training error comes after tens of steps; 60 steps cannot be 11·t₀, so the NC1 check must fail (NaN),
    not pass on a phase that was never run; so must every other check."""
    law = get_law("neural-collapse")
    result = law.run(law.config("quick", per_class=10, widths=(64, 64), steps=60, measurements=5))
    assert all(not c.passed and math.isnan(c.measured) for c in result.checks)
    assert len(result.metrics) > 0


def test_divergence_names_the_learning_rate():
    law = get_law("neural-collapse")
    with pytest.raises(NonFiniteError, match=r"training diverged at step \d+ .*lower lr \(got 5.0\)"):
        law.run(law.config("quick", per_class=10, widths=(64, 64), lr=5.0, steps=60, measurements=5))


def test_balanced_digits_and_grid():
    x, y = balanced_digits(7, seed=3)
    assert x.shape == (70, 64) and sorted(y.bincount().tolist()) == [7] * 10
    grid = measurement_steps(1000, 10)
    assert {0, 1, 1000} <= grid and len(grid) <= 12


@pytest.mark.parametrize(("field", "value", "message"), [
    ("per_class", 171, "per_class must be an integer in 2..170"),
    ("widths", (256, 5), "widths must be hidden widths >= 10"),
    ("loss", "hinge", "loss"),
    ("momentum", 1.0, "momentum must be in"),
    ("steps", 5, "steps must be an integer >= 10"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        NeuralCollapseConfig(**{field: value})
