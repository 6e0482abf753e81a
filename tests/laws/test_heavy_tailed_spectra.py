"""The heavy-tailed-spectra law: a reduced setting passes every check, an untrained network fails the α check (and
the batch check), the quick preset end to end (slow), and config errors."""

import numpy as np
import pytest

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws import heavy_tailed_spectra as _heavy_tailed_spectra  # noqa: F401 - registers the law
from lmech.laws.heavy_tailed_spectra import HeavyTailedSpectraConfig, init_variance, pareto_samples, record_steps

# One square layer (64 → 512 → 512 → 10), 1,000 steps, batch 1 against batch 64: the batch contrast is larger at
# batch 1 than at the preset's batch 2 (z ≈ 5 against 1.5 at 1,000 steps), which lets the fast test be short.
SMALL = dict(depth=2, steps=1000, small_batch=1, large_batch=64, shuffles=9, num_records=4, pareto_alphas=(2.0, 3.0),
             pareto_samples=5000)


@pytest.fixture(scope="module")
def law():
    return get_law("heavy-tailed-spectra")


@pytest.fixture(scope="module")
def small_result(law):
    return law.run(law.config(**SMALL))


def test_small_setting_passes(small_result):
    failed = [(c.name, c.measured, c.predicted) for c in small_result.checks if not c.passed]
    assert not failed
    assert len(small_result.checks) == 5


def test_alpha_falls_and_ranks_move_as_expected(small_result):
    s = small_result.summary
    assert s["layer 1: α at initialisation"] > 5  # a random matrix's fitted "tail" is steep
    assert s["layer 1: α after training, batch 1"] < 2.6 < s["layer 1: α after training, batch 64"] < 4
    # the shuffled trained matrix is random again; its entries are heavier-tailed than at init, so its α is lower
    assert s["layer 1: shuffled-null α, median"] > s["layer 1: α after training, batch 1"] + 1.5
    # the change is dominated by a few strong directions: stable rank collapses, effective rank barely moves
    assert s["layer 1, batch 1: stable_rank"] < 0.5 * s["layer 1: stable rank at initialisation"]
    assert s["layer 1, batch 1: effective_rank"] > 0.8 * s["layer 1: effective rank at initialisation"]
    steps, alpha = small_result.metrics.series("alpha", batch_size=1, layer=1)
    assert steps[0] == 0 and steps[-1] == 1000 and alpha[-1] < alpha[0] - 3
    assert "heavy_tailed_spectra" in small_result.figures


def test_an_untrained_network_fails(law):
    """lr = 1e-4 for 100 steps leaves W at its initialisation: its α is one more random-matrix value, above the
    smallest of the shuffles, and the two batch sizes give the same α."""
    result = law.run(law.config(**{**SMALL, "lr": 1e-4, "steps": 100, "num_records": 1}))
    verdict = {c.name.split(":")[0].split(" after")[0]: c for c in result.checks}
    alpha_check = verdict["layer 1, batch 1"]
    assert not alpha_check.passed and alpha_check.measured > 1.0
    batch_check = next(c for c in result.checks if c.name.startswith("α with batch"))
    assert not batch_check.passed and abs(batch_check.measured) < 0.5
    assert next(c for c in result.checks if c.name.startswith("at initialisation")).passed


@pytest.mark.slow
def test_quick_preset_passes(law):
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    for layer in (1, 2):
        assert result.summary[f"layer {layer}: α after training, batch 2"] < 3.5


def test_helpers():
    assert sorted(record_steps(1000, 3)) == [0, 10, 100, 1000]
    assert sorted(record_steps(5, 4)) == [0, 5]
    assert init_variance(512) == pytest.approx(1 / 1536)
    x = pareto_samples(3.0, 100_000, np.random.default_rng(0))
    assert x.min() >= 1.0 and np.mean(x) == pytest.approx(2.0, rel=0.02)  # mean (α − 1)/(α − 2) = 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(depth=1), "depth must be an integer >= 2"),
        (dict(small_batch=64, large_batch=8), "small_batch must be < large_batch, got 64 and 8"),
        (dict(width=16), "width must be an integer >= 4 × min_tail = 40"),
        (dict(pareto_alphas=(0.5,)), r"pareto_alphas must be exponents > 1"),
        (dict(lr=-0.1), "lr must be finite and > 0, got -0.1"),
        (dict(large_batch=5000), "large_batch must be an integer in 1..n_train = 1500, got 5000"),
    ],
    ids=["depth", "batch-order", "width", "pareto", "lr", "batch-size"],
)
def test_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        HeavyTailedSpectraConfig(**overrides)


def test_presets(law):
    assert law.config("quick").steps < law.config().steps < law.config("full").steps
