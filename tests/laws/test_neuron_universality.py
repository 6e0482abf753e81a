"""The neuron-universality law: a small population passes; the papers' fixed threshold (below the null) makes the
count grow linearly and fails the sublinear check; untrained networks fail the checks that need learning; the
quick preset end to end (slow); the helpers against brute force; config errors."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.neuron_universality import (
    NeuronUniversalityConfig,
    WidthResult,
    auc_of,
    bootstrap_exponent,
    least_best_match,
    power_law_exponent,
)
from lmech.measure.neurons import universal_mask

SMALL = dict(widths=(32, 64, 128, 256, 512), seeds=3, steps=500, bootstrap=200)


def checks_by_start(result):
    return {c.name.split(":")[0].split(" (")[0]: c for c in result.checks}


def test_small_population_passes_and_the_null_is_calibrated():
    law = get_law("neuron-universality")
    result = law.run(law.config(**SMALL))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    s = result.summary
    assert 0.7 < s["exponent α"] < 0.95 and s["α, 95% bootstrap low"] < s["exponent α"] < s["α, 95% bootstrap high"]
    counts = [s[f"w={w}: universal count"] for w in SMALL["widths"]]
    assert all(b > a for a, b in zip(counts, counts[1:]))  # grows, but the fraction falls
    assert counts[-1] / 512 < counts[0] / 32 - 0.2
    # the null's threshold rises with width (the max over more candidates), and untrained networks pass it at about
    # the null's own rate (1%) at every width: the per-width threshold does not by itself create sublinear growth
    taus = [s[f"w={w}: threshold τ_w"] for w in SMALL["widths"]]
    assert all(b > a for a, b in zip(taus, taus[1:]))
    assert all(s[f"w={w}: untrained control, fraction universal"] < 0.04 for w in SMALL["widths"])
    assert s["selectivity AUC (universal vs rest)"] > s["selectivity AUC, untrained control"] > 0.55
    rows = [r for r in result.metrics.rows if r["observable"] == "universal_count"]
    assert len(rows) == 15 and {r["width"] for r in rows} == set(SMALL["widths"])


def test_the_papers_fixed_threshold_fails_the_sublinear_check():
    """τ = 0.5 lies below the null at every width on the digits: nearly every neuron is "universal", the count grows
    as fast as the width, and the sublinear check fails — as it should."""
    law = get_law("neuron-universality")
    result = law.run(law.config(widths=(16, 32, 64, 128), seeds=3, steps=300, bootstrap=200, threshold=0.5))
    sublinear = next(c for c in result.checks if c.name.startswith("universal count"))
    assert not sublinear.passed and sublinear.measured > 1.0
    assert result.summary["exponent α"] > 1.0
    assert result.summary["w=128: fraction universal at τ = 0.5"] > 0.95


def test_untrained_networks_fail_the_checks_that_need_learning():
    """With no training the population is exchangeable with the null: about 1% of neurons pass τ_w (none at small
    widths, so no power law), and the selectivity advantage is no larger than the untrained control's. The
    Mann–Whitney test on its own would still pass — the structural effect the control check is there for."""
    law = get_law("neuron-universality")
    result = law.run(law.config(widths=(16, 32, 64, 128, 256), seeds=3, steps=0, bootstrap=200))
    verdict = [c.passed for c in result.checks]
    assert verdict == [False, False, True, False]
    assert max(result.summary[f"w={w}: universal count"] / w for w in (16, 32, 64, 128, 256)) < 0.04


@pytest.mark.slow
def test_quick_preset_passes():
    law = get_law("neuron-universality")
    result = law.run(law.config("quick"))
    assert result.passed, [(c.name, c.measured) for c in result.checks if not c.passed]
    s = result.summary
    assert 0.8 < s["exponent α"] < 0.95 and s["α, 95% bootstrap high"] < 1
    assert s["exponent α at the papers' fixed τ = 0.5"] > 1
    assert s["dead neurons"] == 0 and s["lowest held-out accuracy"] > 0.95
    assert set(result.figures) == {"neuron_universality"}


def test_power_law_exponent_and_bootstrap_on_planted_counts():
    widths = [16, 32, 64, 128]
    assert power_law_exponent(widths, [3 * w**0.7 for w in widths]) == pytest.approx(0.7)
    assert math.isnan(power_law_exponent(widths, [0, 1, 2, 3]))
    # each model's least best match is uniform; the null is uniform too, so τ_w ≈ 0.99 and ≈ 1% of neurons pass:
    # a constant fraction, α ≈ 1 — and replicates with no universal neuron count against sublinearity (+∞)
    rng = np.random.default_rng(0)
    results = [WidthResult(w, rng.random((4, w)), rng.random(4000), *[np.zeros((4, w))] * 4, np.ones(4), np.ones(4),
                           np.zeros((4, w)), 0) for w in (256, 512, 1024, 2048)]
    boot = bootstrap_exponent(results, None, 99.0, 200, rng)
    assert np.median(boot) == pytest.approx(1.0, abs=0.2)
    sparse = [WidthResult(w, rng.random((4, w)), rng.random(4000), *[np.zeros((4, w))] * 4, np.ones(4), np.ones(4),
                          np.zeros((4, w)), 0) for w in (4, 8, 16, 32)]
    assert np.isinf(bootstrap_exponent(sparse, None, 99.0, 50, rng)).any()


def test_auc_matches_mann_whitney_and_a_pair_count():
    rng = np.random.default_rng(1)
    a, b = rng.random(30).round(1), rng.random(50).round(1) - 0.1  # ties on purpose
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    assert auc_of(a, b) == pytest.approx(brute)
    assert auc_of(a, b) == pytest.approx(mannwhitneyu(a, b).statistic / (30 * 50))
    assert math.isnan(auc_of(a[:0], b))


def test_least_best_match_is_the_universal_mask_and_dead_neurons_never_pass():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 60, 5, generator=gen, dtype=torch.float64)
    acts = torch.relu(x @ torch.randn(5, 7, generator=gen, dtype=torch.float64))
    acts[1, :, 3] = 0.0  # dead
    least = least_best_match(acts)
    assert least.shape == (3, 7) and math.isnan(least[1, 3])
    for i in range(3):
        others = [acts[j] for j in range(3) if j != i]
        assert (least[i] >= 0.6).tolist() == universal_mask(acts[i], others, 0.6).tolist()


def test_config_errors():
    with pytest.raises(ConfigError, match="at least 4 distinct"):
        NeuronUniversalityConfig(widths=(16, 32, 64))
    with pytest.raises(ConfigError, match="seeds must be an integer >= 3"):
        NeuronUniversalityConfig(seeds=2)
    with pytest.raises(ConfigError, match="threshold must be None"):
        NeuronUniversalityConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="null_neurons must be an integer >= 1000"):
        NeuronUniversalityConfig(null_neurons=500)
    NeuronUniversalityConfig(null_quantile=99.9, null_neurons=10_000)  # exactly 10 beyond the percentile
    with pytest.raises(ConfigError, match=r"= 10000, so that"):
        NeuronUniversalityConfig(null_quantile=99.9, null_neurons=9_999)
    with pytest.raises(ConfigError, match="n_train must leave at least 100"):
        NeuronUniversalityConfig(n_train=1750)
