"""Neuron matching and selectivity against brute force (float64), invariances, dead neurons, the growth of a best
match with the number of candidates (against the exact distribution of Pearson's r), and input errors."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from lmech.errors import ConfigError
from lmech.measure.neurons import (
    activation_correlation,
    best_match,
    best_match_correlations,
    class_selectivity,
    constant_neurons,
    universal_mask,
)


@pytest.fixture
def acts(seed):
    """Two ReLU layers' activations on 80 examples: ``a`` (80, 6) and ``b`` (80, 9), ``b`` partly built from ``a``;
    ``a``'s column 2 is dead (all zero) and ``b``'s column 4 constant (all 3)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(80, 5, generator=gen, dtype=torch.float64)
    a = torch.relu(x @ torch.randn(5, 6, generator=gen, dtype=torch.float64))
    b = torch.relu(torch.cat([a[:, :3] + 0.3 * torch.randn(80, 3, generator=gen, dtype=torch.float64),
                              x @ torch.randn(5, 6, generator=gen, dtype=torch.float64)], 1))
    a[:, 2] = 0.0
    b[:, 4] = 3.0
    return a, b, gen


def test_correlation_matches_numpy_corrcoef(acts):
    a, b, _ = acts
    corr = activation_correlation(a, b)
    assert corr.shape == (6, 9) and corr.dtype == torch.float64
    alive_a, alive_b = [0, 1, 3, 4, 5], [0, 1, 2, 3, 5, 6, 7, 8]
    full = np.corrcoef(a.numpy()[:, alive_a].T, b.numpy()[:, alive_b].T)[:5, 5:]  # brute force on live neurons
    np.testing.assert_allclose(corr[alive_a][:, alive_b].numpy(), full, rtol=1e-10, atol=1e-12)


def test_dead_and_constant_neurons_cannot_match(acts):
    a, b, _ = acts
    assert constant_neurons(a).tolist() == [False, False, True, False, False, False]
    assert constant_neurons(b)[4] and int(constant_neurons(b).sum()) == 1
    corr = activation_correlation(a, b)
    assert torch.isnan(corr[2]).all() and torch.isnan(corr[:, 4]).all()
    assert int(torch.isnan(corr).sum()) == 9 + 6 - 1
    values, indices = best_match(corr)
    assert math.isnan(values[2]) and indices[2] == -1
    assert not (indices == 4).any()  # the constant neuron is nobody's best match
    mask = universal_mask(a, [a], threshold=-0.99)
    assert mask.tolist() == [True, True, False, True, True, True]


def test_best_match_against_a_loop(acts):
    a, b, _ = acts
    corr = activation_correlation(a, b)
    values, indices = best_match(corr)
    for i in range(6):
        finite = [(float(corr[i, j]), j) for j in range(9) if not math.isnan(corr[i, j])]
        if finite:
            assert (float(values[i]), int(indices[i])) == max(finite)


def test_invariances_scaling_shift_and_permutation(acts):
    a, b, gen = acts
    perm = torch.randperm(9, generator=gen)
    scale = torch.rand(9, generator=gen, dtype=torch.float64) + 0.5
    moved = b[:, perm] * scale + 2.0
    torch.testing.assert_close(activation_correlation(a, moved), activation_correlation(a, b)[:, perm], equal_nan=True)
    torch.testing.assert_close(activation_correlation(b, a), activation_correlation(a, b).T, equal_nan=True)


def test_universal_mask_is_the_least_best_match_over_models(acts):
    a, b, gen = acts
    c = torch.relu(a + 0.5 * torch.randn(80, 6, generator=gen, dtype=torch.float64))
    best = best_match_correlations(a, [b, c])
    assert best.shape == (2, 6)
    for tau in (0.3, 0.6, 0.9):
        expected = [bool(not math.isnan(best[0, i]) and min(best[0, i], best[1, i]) >= tau) for i in range(6)]
        assert universal_mask(a, [b, c], tau).tolist() == expected
    # a permuted copy of a model matches every live neuron exactly
    assert universal_mask(a, [a[:, torch.randperm(6, generator=gen)]], 1 - 1e-9).sum() == 5


def exact_expected_max(n: int, d: int) -> float:
    """E[max of d independent Pearson correlations of independent Gaussian samples of size n]: r has density
    ∝ (1 − r²)^((n−4)/2) on (−1, 1) (Fisher 1915), so E[max] = ∫ r d·f(r)·F(r)^(d−1) dr."""
    norm = integrate.quad(lambda r: (1 - r * r) ** ((n - 4) / 2), -1, 1)[0]

    def cdf(r):
        return integrate.quad(lambda s: (1 - s * s) ** ((n - 4) / 2), -1, r)[0] / norm

    return integrate.quad(lambda r: r * d * (1 - r * r) ** ((n - 4) / 2) / norm * cdf(r) ** (d - 1), -1, 1,
                          limit=200)[0]


@pytest.mark.parametrize("d", [1, 16, 256])
def test_best_match_grows_with_candidates_as_the_max_of_independent_correlations(seed, d):
    """The circularity the law's null corrects for: unrelated neurons' best match is the maximum of d chance
    correlations, which grows with d (0, 0.25, 0.39 at n = 50 for d = 1, 16, 256)."""
    n, reps = 50, 400
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, reps, generator=gen, dtype=torch.float64)
    b = torch.randn(n, d, generator=gen, dtype=torch.float64)
    values, _ = best_match(activation_correlation(a, b))
    # independent candidates per row only in expectation; the mean over 400 rows has sd ≈ 0.15/20 at d = 1
    assert float(values.mean()) == pytest.approx(exact_expected_max(n, d), abs=0.03)


def brute_selectivity(a: np.ndarray, y: np.ndarray, c: int) -> np.ndarray:
    out = []
    for i in range(a.shape[1]):
        means = [a[y == k, i].mean() for k in range(c)]
        top = max(means)
        rest = (sum(means) - top) / (c - 1)
        out.append((top - rest) / (top + rest) if top + rest > 0 else math.nan)
    return np.array(out)


def test_class_selectivity_against_brute_force_and_limits(acts):
    a, _, gen = acts
    y = torch.arange(80) % 4
    si = class_selectivity(a, y)
    np.testing.assert_allclose(si.numpy(), brute_selectivity(a.numpy(), y.numpy(), 4), rtol=1e-12)
    assert math.isnan(si[2])  # dead: 0/0
    live = si[~torch.isnan(si)]
    assert bool(((live >= 0) & (live <= 1)).all())
    only_class_1 = (y == 1).double()[:, None] * (1 + torch.rand(80, 1, generator=gen, dtype=torch.float64))
    equal = torch.ones(80, 1, dtype=torch.float64)
    assert class_selectivity(torch.cat([only_class_1, equal], 1), y).tolist() == pytest.approx([1.0, 0.0])
    # a class that exists but has no example here is an error unless it is left out of num_classes
    with pytest.raises(ConfigError, match="class 4 of 0..4 has no example"):
        class_selectivity(a, y, num_classes=5)
    with pytest.raises(ConfigError, match=r"class 1 of 0..3 has no example.*relabel"):
        class_selectivity(a[y != 1], y[y != 1])


def test_errors(acts):
    a, b, _ = acts
    with pytest.raises(ConfigError, match="same examples in the same order: a has 80 rows, b 79"):
        activation_correlation(a, b[:-1])
    with pytest.raises(ConfigError, match="must be 2-D"):
        activation_correlation(a[:, 0], b)
    with pytest.raises(ConfigError, match="at least 3"):
        constant_neurons(a[:2])
    bad = a.clone()
    bad[5, 1] = math.nan
    with pytest.raises(ConfigError, match="non-finite entry .* at example 5, neuron 1"):
        activation_correlation(bad, b)
    with pytest.raises(ConfigError, match="threshold must be a correlation in"):
        universal_mask(a, [b], 1.5)
    with pytest.raises(ConfigError, match="at least one other model"):
        universal_mask(a, [], 0.5)
    with pytest.raises(ConfigError, match="non-negative activations, got a minimum of -1"):
        class_selectivity(a - 1, torch.arange(80) % 4)
    with pytest.raises(ConfigError, match="labels must be integers of shape"):
        class_selectivity(a, torch.zeros(80))
    with pytest.raises(ConfigError, match="num_classes >= 2"):
        class_selectivity(a, torch.zeros(80, dtype=torch.long))
