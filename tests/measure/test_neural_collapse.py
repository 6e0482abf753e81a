"""Neural-collapse observables against loops over classes and examples, on collapsed and uncollapsed data."""

import numpy as np
import pytest
import torch

from lmech.errors import ConfigError
from lmech.measure.neural_collapse import neural_collapse


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    c, d, per = 4, 6, 30
    means = rng.standard_normal((c, d)) * 3
    h = np.concatenate([means[k] + rng.standard_normal((per, d)) for k in range(c)])
    y = np.repeat(np.arange(c), per)
    w, b = rng.standard_normal((c, d)), rng.standard_normal(c)
    return h, y, w, b


def test_against_loops(data):
    h, y, w, b = data
    c, n = w.shape[0], len(h)
    mu = np.array([h[y == k].mean(0) for k in range(c)])
    mg = mu.mean(0)
    sw = sum(np.outer(h[i] - mu[y[i]], h[i] - mu[y[i]]) for i in range(n)) / n
    sb = sum(np.outer(mu[k] - mg, mu[k] - mg) for k in range(c)) / c
    nc1 = np.trace(sw @ np.linalg.pinv(sb)) / c
    cent = mu - mg
    cosines = [cent[i] @ cent[j] / np.linalg.norm(cent[i]) / np.linalg.norm(cent[j])
               for i in range(c) for j in range(c) if i != j]
    nc3 = np.linalg.norm(w / np.linalg.norm(w) - cent / np.linalg.norm(cent))
    decision = (h @ w.T + b).argmax(1)
    nearest = np.array([np.argmin([np.linalg.norm(hi - m) for m in mu]) for hi in h])
    got = neural_collapse(torch.from_numpy(h), torch.from_numpy(y), torch.from_numpy(w), torch.from_numpy(b))
    assert got.nc1 == pytest.approx(nc1, rel=1e-9)
    assert got.equiangular_means == pytest.approx(np.mean(np.abs(np.array(cosines) + 1 / (c - 1))), rel=1e-12)
    norms = np.linalg.norm(cent, axis=1)
    assert got.equinorm_means == pytest.approx(norms.std(ddof=1) / norms.mean(), rel=1e-12)
    assert got.nc3 == pytest.approx(nc3, rel=1e-12)
    assert got.nc4 == pytest.approx(np.mean(decision != nearest))
    assert got.accuracy == pytest.approx(np.mean(decision == y))


def test_a_simplex_etf_is_collapsed_and_rotations_do_not_matter():
    c, d = 5, 8
    etf = np.eye(c) - 1.0 / c
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((d, d)))
    means = np.pad(etf, ((0, 0), (0, d - c))) @ q * 7.0
    h = np.repeat(means, 3, axis=0)
    y = np.repeat(np.arange(c), 3)
    nc = neural_collapse(torch.from_numpy(h), torch.from_numpy(y), torch.from_numpy(means))
    assert nc.nc1 == pytest.approx(0.0, abs=1e-12) and nc.equiangular_means == pytest.approx(0.0, abs=1e-12)
    assert nc.equinorm_means == pytest.approx(0.0, abs=1e-12) and nc.nc3 == pytest.approx(0.0, abs=1e-12)
    assert nc.nc4 == 0.0 and nc.accuracy == 1.0


def test_bad_input_is_named(data):
    h, y, w, _ = data
    h, y, w = torch.from_numpy(h), torch.from_numpy(y), torch.from_numpy(w)
    with pytest.raises(ConfigError, match="classes \\[3\\] have no example"):
        neural_collapse(h[y < 3], y[y < 3], w)
    with pytest.raises(ConfigError, match="labels must lie in 0..3"):
        neural_collapse(h, y + 1, w)
    with pytest.raises(ConfigError, match="weight must be"):
        neural_collapse(h, y, w[:, :3])


def test_numpy_inputs_and_label_and_bias_errors(data):
    h, y, w, b = data
    assert neural_collapse(h, y, w, b).nc1 == neural_collapse(*(torch.from_numpy(a) for a in (h, y, w, b))).nc1
    with pytest.raises(ConfigError, match="labels must be integers"):
        neural_collapse(h, y + 0.7, w)
    with pytest.raises(ConfigError, match="bias must have shape \\(4,\\)"):
        neural_collapse(h, y, w, b[:1])
    with pytest.raises(ConfigError, match="NaN"):
        neural_collapse(h, y, w * np.nan)
