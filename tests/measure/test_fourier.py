"""Fourier observables: Parseval, pure tones, key frequencies, restricted/excluded loss against logits of known
frequency content and a brute-force least-squares projection, and the group Fourier power."""

import math

import numpy as np
import pytest
import torch

from lmech.data.groups import cyclic, dihedral, regular_encoding
from lmech.errors import ConfigError
from lmech.measure.fourier import (
    excluded_loss,
    fourier_basis,
    fourier_power,
    frequency_projector,
    group_fourier_power,
    group_fourier_transform,
    key_frequencies,
    restricted_logits,
    restricted_loss,
)


@pytest.mark.parametrize("p", [1, 2, 7, 8, 113])
def test_basis_is_orthonormal(p):
    basis, freqs = fourier_basis(p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64), atol=1e-12, rtol=0)
    assert freqs.tolist() == sorted(freqs.tolist()) and int(freqs.max()) == p // 2


@pytest.mark.parametrize("p", [7, 8, 113])
def test_power_obeys_parseval_and_matches_the_basis(p, generator):
    w = torch.randn(p, 5, generator=generator, dtype=torch.float64)
    power = fourier_power(w)
    assert power.shape == (p // 2 + 1,)
    assert float(power.sum()) == pytest.approx(float(w.square().sum()), rel=1e-12)
    basis, freqs = fourier_basis(p)
    coef_sq = (basis @ w).square().sum(1)
    by_basis = torch.zeros(p // 2 + 1, dtype=torch.float64).index_add_(0, freqs, coef_sq)
    torch.testing.assert_close(power, by_basis, atol=1e-10, rtol=1e-10)
    per_column = fourier_power(w, reduce=False)
    assert per_column.shape == (p // 2 + 1, 5)
    torch.testing.assert_close(per_column.sum(0), w.square().sum(0))
    torch.testing.assert_close(fourier_power(w.T, dim=1), power)


@pytest.mark.parametrize("k", [1, 5, 56])
def test_pure_cosine_has_all_its_power_at_its_frequency(k):
    p, amp = 113, 1.7
    x = torch.arange(p, dtype=torch.float64)
    power = fourier_power(amp * torch.cos(2 * math.pi * k * x / p + 0.4))
    assert float(power[k]) == pytest.approx(amp**2 * p / 2, rel=1e-12)
    assert float(power.sum() - power[k]) == pytest.approx(0.0, abs=1e-9)


def test_nyquist_and_constant_power():
    x = torch.tensor([1.0, -1.0] * 4, dtype=torch.float64) + 2.0
    power = fourier_power(x)
    assert float(power[0]) == pytest.approx(4.0 * 8) and float(power[4]) == pytest.approx(8.0)
    assert float(power[1:4].sum()) == pytest.approx(0.0, abs=1e-12)


def test_key_frequencies():
    power = torch.tensor([50.0, 1.0, 9.0, 0.5, 30.0, 0.5, 9.0])
    assert key_frequencies(power, num=2).tolist() == [4, 2]
    assert key_frequencies(power, num=1, include_zero=True).tolist() == [0]
    assert key_frequencies(power, coverage=0.6).tolist() == [4]  # 30 / 50 = 0.6 of the non-constant power
    assert key_frequencies(power, coverage=0.9).tolist() == [4, 2, 6]
    assert key_frequencies(power, coverage=1.0).tolist() == [4, 2, 6, 1, 3, 5]
    with pytest.raises(ConfigError, match="exactly one"):
        key_frequencies(power)
    with pytest.raises(ConfigError, match="num must be"):
        key_frequencies(power, num=7)


def grokked_logits(p, freqs, gen):
    """logits[a, b, c] = Σ_k α_k cos(ω_k(a + b − c)) + β_c: what a network using only ``freqs`` outputs."""
    a = torch.arange(p, dtype=torch.float64)
    s = (a[:, None, None] + a[None, :, None] - a[None, None, :])
    logits = sum(float(1 + torch.rand(1, generator=gen)) * 3 * torch.cos(2 * math.pi * k * s / p) for k in freqs)
    return logits + torch.randn(p, generator=gen, dtype=torch.float64)[None, None, :]


def full_loss(logits):
    p = logits.shape[0]
    labels = ((torch.arange(p)[:, None] + torch.arange(p)[None, :]) % p).flatten()
    return float(torch.nn.functional.cross_entropy(logits.reshape(p * p, -1), labels))


def test_restricted_loss_equals_full_loss_on_logits_of_key_frequencies(generator):
    p, key = 31, [3, 7, 12]
    logits = grokked_logits(p, key, generator)
    torch.testing.assert_close(restricted_logits(logits, key), logits, atol=1e-10, rtol=0)
    assert restricted_loss(logits, key) == pytest.approx(full_loss(logits), rel=1e-10)
    assert restricted_loss(logits.reshape(p * p, p), key) == pytest.approx(full_loss(logits), rel=1e-10)
    assert full_loss(logits) < 0.5 * math.log(p), "the constructed logits should solve the task"


def test_restricted_logits_remove_other_frequencies_and_excluded_keeps_the_rest(generator):
    p, key = 23, [2, 5]
    clean = grokked_logits(p, key, generator)
    a = torch.arange(p, dtype=torch.float64)
    other = 2.0 * torch.cos(2 * math.pi * 4 * (a[:, None] + a[None, :]) / p)[:, :, None].expand(p, p, p)
    diff = torch.sin(2 * math.pi * 3 * (a[:, None] - a[None, :]) / p)[:, :, None] * torch.randn(p, generator=generator,
                                                                                                 dtype=torch.float64)
    noisy = clean + other + diff
    torch.testing.assert_close(restricted_logits(noisy, key), clean, atol=1e-10, rtol=0)
    assert restricted_loss(noisy, key) == pytest.approx(full_loss(clean), rel=1e-10)
    # excluding the key frequencies leaves the class bias β_c, the other frequency and the (a − b) part
    bias = clean.mean(dim=(0, 1), keepdim=True).expand(p, p, p)
    torch.testing.assert_close(restricted_logits(noisy, key, exclude=True), bias + other + diff, atol=1e-10, rtol=0)
    assert excluded_loss(clean, key) == pytest.approx(full_loss(bias), rel=1e-10)
    assert excluded_loss(clean, key) > full_loss(clean) + 1.0


def test_restriction_is_the_least_squares_projection(generator):
    """Brute force: project each class's logits in R^{p²} on [1, cos ω_k(a+b), sin ω_k(a+b)] by lstsq."""
    p, key = 7, [1, 3]
    logits = torch.randn(p, p, p + 1, generator=generator, dtype=torch.float64)
    a = torch.arange(p, dtype=torch.float64)
    s = (a[:, None] + a[None, :]).flatten()
    cols = [torch.ones(p * p, dtype=torch.float64)]
    for k in key:
        cols += [torch.cos(2 * math.pi * k * s / p), torch.sin(2 * math.pi * k * s / p)]
    design = torch.stack(cols, 1).numpy()
    y = logits.reshape(p * p, -1).numpy()
    proj = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(restricted_logits(logits, key).reshape(p * p, -1).numpy(), proj, atol=1e-12)
    projector = frequency_projector(p, key)
    torch.testing.assert_close(projector @ projector, projector)


def test_group_power_parseval_and_translation_invariance(generator):
    for g in (dihedral(4), dihedral(5), cyclic(6)):
        f = torch.randn(g.order, 3, generator=generator, dtype=torch.float64)
        assert float(group_fourier_power(f, g, by="irrep").sum()) == pytest.approx(float(f.square().sum()), rel=1e-12)
        fz = torch.complex(f, torch.randn(g.order, 3, generator=generator, dtype=torch.float64))
        assert float(group_fourier_power(fz, g).sum()) == pytest.approx(float(fz.abs().square().sum()), rel=1e-12)
        enc = regular_encoding(g, f[:, 0])  # every translate λ(h) f has the same power
        power = group_fourier_power(enc, g, dim=1, reduce=False, by="irrep")
        torch.testing.assert_close(power, power[:1].expand_as(power), atol=1e-12, rtol=0)


def test_group_transform_of_a_delta_and_of_characters():
    g = dihedral(5)
    delta = torch.zeros(g.order, dtype=torch.float64)
    delta[0] = 1.0
    for rho, coef in zip(g.irreps, group_fourier_transform(delta, g)):
        torch.testing.assert_close(coef, torch.eye(rho.dim, dtype=torch.complex128))
    # a character's conjugate lives on its own irrep only: Σ_g conj(χ_σ(g)) ρ(g) = (|G|/d) δ_ρσ I
    chi = torch.diagonal(g.irreps[2].matrices, dim1=1, dim2=2).sum(1).conj()
    power = group_fourier_power(chi, g, by="irrep")
    assert int((power > 1e-12).sum()) == 1 and float(power[2]) == pytest.approx(g.order, rel=1e-12)


def test_cyclic_group_power_by_frequency_equals_fourier_power(generator):
    for p in (9, 10):
        f = torch.randn(p, 4, generator=generator, dtype=torch.float64)
        torch.testing.assert_close(group_fourier_power(f, cyclic(p)), fourier_power(f), atol=1e-10, rtol=1e-10)


def test_bad_input_raises_config_error():
    with pytest.raises(ConfigError, match="complex"):
        fourier_power(torch.ones(5, dtype=torch.complex64))
    with pytest.raises(ConfigError, match="dim"):
        fourier_power(torch.ones(5), dim=2)
    with pytest.raises(ConfigError, match="p² rows"):
        restricted_loss(torch.zeros(10, 5), [1])
    with pytest.raises(ConfigError, match="frequencies must lie"):
        restricted_loss(torch.zeros(5, 5, 5), [3])
    with pytest.raises(ConfigError, match="elements"):
        group_fourier_power(torch.ones(7), dihedral(3))
    with pytest.raises(ConfigError, match="by must be"):
        group_fourier_power(torch.ones(6), dihedral(3), by="class")
    with pytest.raises(ConfigError, match="group must be a FiniteGroup, got 'Z8'; for a name use"):
        group_fourier_power(torch.ones(8), "Z8")
    with pytest.raises(ConfigError, match="no entries along dim 0"):
        fourier_power(torch.zeros(0, 4))
    with pytest.raises(ConfigError, match=r"frequencies must be integers, got \[1.5\]"):
        restricted_loss(torch.zeros(5, 5, 5), [1.5])
