"""Linear probes and subspace geometry: held-out R² on linear targets and on noise, agreement with scikit-learn,
principal angles in closed form and against SciPy, and belief-state probes on Mess3 and a product process."""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score as sk_r2_score

from lmech.data.hmm import ProductProcess, mess3
from lmech.errors import ConfigError
from lmech.measure.probes import linear_probe, principal_angles, probe_subspace, r2_score, subspace_overlap


def test_probe_recovers_a_linear_target_exactly(generator):
    x = torch.randn(300, 6, generator=generator, dtype=torch.float64)
    w = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    probe = linear_probe(x, x @ w + b, seed=1)
    assert probe.r2 == pytest.approx(1.0, abs=1e-12) and probe.train_r2 == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(probe.weights, w)
    torch.testing.assert_close(probe.bias, b)
    assert (probe.num_train, probe.num_test) == (240, 60)


def test_probe_on_independent_noise_scores_about_zero(generator):
    x = torch.randn(4000, 4, generator=generator, dtype=torch.float64)
    y = torch.randn(4000, 2, generator=generator, dtype=torch.float64)
    probe = linear_probe(x, y, test_frac=0.5)
    assert abs(probe.r2) < 0.01, probe.r2
    assert probe.train_r2 > probe.r2 - 1e-3  # in-sample fit is at least as good, on average


def test_probe_matches_scikit_learn(generator):
    x = torch.randn(200, 5, generator=generator, dtype=torch.float64)
    y = torch.tanh(x[:, :2]) + 0.3 * torch.randn(200, 2, generator=generator, dtype=torch.float64)
    for ridge in (0.0, 0.1):
        probe = linear_probe(x, y, ridge=ridge, seed=3)
        train = np.setdiff1d(np.arange(200), probe.test_index.numpy())
        sk = (Ridge(alpha=len(train) * ridge) if ridge else LinearRegression()).fit(x[train].numpy(), y[train].numpy())
        np.testing.assert_allclose(probe.weights.numpy(), sk.coef_.T, atol=1e-10)
        np.testing.assert_allclose(probe.bias.numpy(), sk.intercept_, atol=1e-10)
        te = probe.test_index.numpy()
        pred = sk.predict(x[te].numpy())
        assert probe.r2 == pytest.approx(sk_r2_score(y[te].numpy(), pred, multioutput="variance_weighted"), rel=1e-10)
        np.testing.assert_allclose(probe.r2_per_target.numpy(), sk_r2_score(y[te].numpy(), pred, multioutput="raw_values"),
                                   rtol=1e-10)


def test_r2_score_against_scikit_learn_and_one_dimensional_targets(generator):
    y = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    yhat = y + 0.5 * torch.randn(50, 3, generator=generator, dtype=torch.float64)
    overall, per = r2_score(yhat, y)
    assert overall == pytest.approx(sk_r2_score(y.numpy(), yhat.numpy(), multioutput="variance_weighted"), rel=1e-12)
    np.testing.assert_allclose(per.numpy(), sk_r2_score(y.numpy(), yhat.numpy(), multioutput="raw_values"), rtol=1e-12)
    assert r2_score(yhat[:, 0], y[:, 0])[0] == pytest.approx(float(per[0]), rel=1e-12)
    assert r2_score(y.mean(0).expand(50, 3), y)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("theta", [0.3, 1.2, 1e-9, math.pi / 2])
def test_principal_angles_closed_form(theta):
    """span{e1, e2} vs span{cos θ e1 + sin θ e3, 3 e2}: angles (0, θ), accurate even for tiny θ."""
    e = torch.eye(5, dtype=torch.float64)
    a = torch.stack([e[0], e[1]], 1)
    b = torch.stack([math.cos(theta) * e[0] + math.sin(theta) * e[2], 3 * e[1]], 1)
    angles = principal_angles(a, b)
    torch.testing.assert_close(angles, torch.tensor([0.0, theta], dtype=torch.float64), atol=1e-15, rtol=1e-8)
    assert subspace_overlap(a, b) == pytest.approx((1 + math.cos(theta) ** 2) / 2, rel=1e-12)


def test_principal_angles_match_scipy_and_are_basis_invariant(generator):
    a = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    b = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    expect = np.sort(subspace_angles(a.numpy(), b.numpy()))
    np.testing.assert_allclose(principal_angles(a, b).numpy(), expect, atol=1e-12)
    mix = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(principal_angles(a @ mix, b), principal_angles(b, a), atol=1e-12, rtol=0)


def test_overlap_of_nested_orthogonal_and_rank_deficient_subspaces():
    e = torch.eye(6, dtype=torch.float64)
    assert subspace_overlap(e[:, :2], e[:, :4]) == pytest.approx(1.0)
    assert subspace_overlap(e[:, :2], e[:, 3:]) == pytest.approx(0.0, abs=1e-15)
    rank_one = torch.stack([e[0], 2 * e[0]], 1)  # spans one direction
    assert principal_angles(rank_one, e[:, :3]).shape == (1,)


def test_probe_subspace_is_the_column_space_of_the_map(generator):
    x = torch.randn(400, 8, generator=generator, dtype=torch.float64)
    a = torch.randn(8, 2, generator=generator, dtype=torch.float64) @ torch.randn(2, 3, generator=generator, dtype=torch.float64)
    probe = linear_probe(x, x @ a)
    basis = probe_subspace(probe)
    assert basis.shape == (8, 2), "a rank-2 map reads a 2-dimensional subspace"
    assert float(principal_angles(basis, a).max()) < 1e-8


def test_belief_states_are_recovered_from_a_linear_embedding(generator):
    """Mess3 beliefs embedded linearly in 16 dimensions plus small noise: the probe's held-out R² ≈ 1."""
    tokens, _ = mess3().sample(200, 10, seed=0)
    beliefs = mess3().beliefs(tokens)[:, 1:].reshape(-1, 3)
    embed = torch.randn(3, 16, generator=generator, dtype=torch.float64)
    acts = beliefs @ embed + 1e-3 * torch.randn(len(beliefs), 16, generator=generator, dtype=torch.float64)
    probe = linear_probe(acts, beliefs)
    assert probe.r2 > 0.999
    shuffled = beliefs[torch.randperm(len(beliefs), generator=generator)]
    assert abs(linear_probe(acts, shuffled).r2) < 0.05  # about −d/n_train = −0.01, give or take 0.02


def test_factored_product_beliefs_live_in_orthogonal_probe_subspaces(generator):
    """Factor beliefs written into orthogonal subspaces: each factor's probe reads its own subspace, and the two
    probes' subspaces are orthogonal (overlap 0), as in a factored representation (Shai, Riechers et al. 2026)."""
    proc = ProductProcess((mess3(), mess3(0.1, 0.6)))
    tokens, _ = proc.sample(150, 8, seed=1)
    b1, b2 = (b[:, 1:].reshape(-1, 3) for b in proc.factor_beliefs(tokens))
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=generator, dtype=torch.float64))
    acts = b1 @ q[:3] + b2 @ q[3:6] + 1e-4 * torch.randn(len(b1), 12, generator=generator, dtype=torch.float64)
    # a little ridge keeps the probes off the 8 directions that hold only noise (variance 1e-8)
    p1, p2 = linear_probe(acts, b1, ridge=1e-6), linear_probe(acts, b2, ridge=1e-6)
    assert p1.r2 > 0.999 and p2.r2 > 0.999
    # beliefs sum to 1, so each probe reads a 2-dimensional subspace of its factor's 3 directions
    s1, s2 = probe_subspace(p1.weights[:, :2]), probe_subspace(p2.weights[:, :2])
    assert subspace_overlap(s1, s2) < 1e-4
    assert float(principal_angles(s1, q[:3].T).max()) < 1e-2


def test_bad_input_raises_config_error(generator):
    x = torch.randn(10, 3, generator=generator)
    with pytest.raises(ConfigError, match="same examples"):
        linear_probe(x, torch.randn(9))
    with pytest.raises(ConfigError, match="test_frac"):
        linear_probe(x, torch.randn(10), test_frac=1.0)
    with pytest.raises(ConfigError, match="fewer than 2"):
        linear_probe(x, torch.randn(10), test_frac=0.05)
    with pytest.raises(ConfigError, match="2-D"):
        linear_probe(torch.randn(10), torch.randn(10))
    with pytest.raises(ConfigError, match="same space"):
        principal_angles(torch.randn(4, 2), torch.randn(5, 2))
    with pytest.raises(ConfigError, match="spans no subspace"):
        subspace_overlap(torch.zeros(4, 2), torch.randn(4, 2))
