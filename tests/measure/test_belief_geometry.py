"""Belief-geometry instruments against closed forms and brute force: simplex coordinates are an isometry, factor
encodings recover planted subspaces, explained dimension separates factored from joint representations, and the
chance of orthogonality matches the known distributions of angles between random lines."""

import math

import numpy as np
import pytest
import torch

from lmech.data.hmm import ProductProcess, mess3
from lmech.errors import ConfigError
from lmech.measure import principal_angles
from lmech.measure.belief_geometry import (
    chance_of_orthogonality,
    explained_dimension,
    factor_encodings,
    simplex_coordinates,
    variance_dimension,
)


def beliefs(n=2000, length=8, seed=0):
    proc = ProductProcess((mess3(), mess3()))
    tokens, _ = proc.sample(n, length, seed=seed)
    b1, b2 = (b[:, 1:].reshape(-1, 3) for b in proc.factor_beliefs(tokens))
    return b1, b2, proc.beliefs(tokens)[:, 1:].reshape(-1, 9)


def test_simplex_coordinates_are_an_isometry_of_the_simplex():
    p = torch.distributions.Dirichlet(torch.ones(5, dtype=torch.float64)).sample((200,))
    c = simplex_coordinates(p)
    assert c.shape == (200, 4)
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.allclose(torch.cdist(c, c, compute_mode=exact), torch.cdist(p, p, compute_mode=exact), atol=1e-12)
    centre = simplex_coordinates(torch.full((3,), 1 / 3, dtype=torch.float64))
    assert torch.allclose(centre, torch.zeros(2, dtype=torch.float64), atol=1e-15)
    with pytest.raises(ConfigError, match="at least 2 entries"):
        simplex_coordinates(torch.ones(4, 1))


def test_factor_encodings_recover_planted_subspaces():
    b1, b2, _ = beliefs()
    gen = torch.Generator().manual_seed(1)
    a1 = torch.randn(2, 32, generator=gen, dtype=torch.float64)
    a2 = torch.randn(2, 32, generator=gen, dtype=torch.float64)
    c1, c2 = simplex_coordinates(b1), simplex_coordinates(b2)
    x = 3.0 + c1 @ a1 + c2 @ a2 + 1e-3 * torch.randn(len(c1), 32, generator=gen, dtype=torch.float64)
    e1, e2 = factor_encodings(x, [c1, c2])
    assert e1.shape == (32, 2) and e2.shape == (32, 2)
    assert principal_angles(e1, a1.T).max() < 1e-3 and principal_angles(e2, a2.T).max() < 1e-3
    # the measured angles between the factors are those between the planted planes
    assert torch.allclose(principal_angles(e1, e2), principal_angles(a1.T, a2.T), atol=1e-3)
    with pytest.raises(ConfigError, match="every factor must have"):
        factor_encodings(x, [c1[:10], c2])


def test_explained_dimension_separates_factored_from_joint():
    b1, b2, joint = beliefs()
    gen = torch.Generator().manual_seed(2)
    noise = 0.01 * torch.randn(len(joint), 64, generator=gen, dtype=torch.float64)
    factored = torch.cat([b1, b2], 1) @ torch.randn(6, 64, generator=gen, dtype=torch.float64) + noise
    joint_rep = joint @ torch.randn(9, 64, generator=gen, dtype=torch.float64) + noise
    target = simplex_coordinates(joint)
    d_fac, frac_fac, r2_fac = explained_dimension(factored, target, 0.95)
    d_joint, frac_joint, r2_joint = explained_dimension(joint_rep, target, 0.95)
    assert d_fac == 4 and float(frac_fac[3]) > 0.999  # exactly Σ(s − 1) components
    assert d_joint == 8  # Π s − 1
    assert r2_fac > 0.99 and r2_joint > 0.99
    # brute force: PCA of the least-squares fit
    t = target - target.mean(0)
    fit = t @ torch.linalg.pinv(t) @ (factored - factored.mean(0))
    var = torch.linalg.svdvals(fit).square()
    assert torch.allclose(frac_fac, var.cumsum(0) / var.sum(), atol=1e-10)


def test_variance_dimension_counts_planted_components():
    gen = torch.Generator().manual_seed(3)
    scales = torch.tensor([10.0, 5.0, 2.0, 0.01, 0.01], dtype=torch.float64)
    x = torch.randn(5000, 5, generator=gen, dtype=torch.float64) * scales
    d, fractions = variance_dimension(x, 0.99)
    assert d == 3 and fractions.shape == (5,)
    assert variance_dimension(x, 0.5)[0] == 1
    with pytest.raises(ConfigError, match="frac must be"):
        variance_dimension(x, 1.5)
    with pytest.raises(ConfigError, match="do not vary"):
        variance_dimension(torch.ones(10, 3), 0.9)


@pytest.mark.parametrize("degrees", [10.0, 45.0, 75.0, 85.0])
def test_chance_of_orthogonality_matches_random_lines(degrees):
    theta = math.radians(degrees)
    in_plane = chance_of_orthogonality((1, 1), 2, theta, num_draws=40_000)
    in_space = chance_of_orthogonality((1, 1), 3, theta, num_draws=40_000)
    assert in_plane == pytest.approx(1 - 2 * theta / math.pi, abs=0.01)  # angle uniform on [0, π/2]
    assert in_space == pytest.approx(math.cos(theta), abs=0.01)  # |cos| uniform on [0, 1]


def test_chance_of_orthogonality_planes():
    # two planes in R^3 always share a line; in R^64 they are nearly orthogonal
    assert chance_of_orthogonality((2, 2), 3, math.radians(1.0)) == 0.0
    high = chance_of_orthogonality((2, 2), 64, math.radians(75.0))
    assert 0.6 < high < 0.8
    low = chance_of_orthogonality((2, 2), 8, math.radians(75.0))
    assert low < 0.05
    with pytest.raises(ConfigError, match="angle must be in"):
        chance_of_orthogonality((2, 2), 8, 2.0)
    with pytest.raises(ConfigError, match="must be integers ≥ 1"):
        chance_of_orthogonality((2, 9), 8, 0.5)
    assert np.isfinite(chance_of_orthogonality((2, 2), 4, 0.0)) and chance_of_orthogonality((2, 2), 4, 0.0) == 1.0
