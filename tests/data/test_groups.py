"""Finite groups against brute force: group axioms, the dihedral relations, irreps as homomorphisms with Schur
orthogonality and completeness, S3 as permutations, templates with the asked-for Fourier power, and the
composition dataset."""

import itertools
import math

import numpy as np
import pytest
import torch

from lmech.data.groups import (
    composition_dataset,
    cyclic,
    dihedral,
    fourier_template,
    group_from_name,
    regular_encoding,
    symmetric3,
)
from lmech.errors import ConfigError
from lmech.measure.fourier import group_fourier_power

GROUPS = {"Z1": lambda: cyclic(1), "Z5": lambda: cyclic(5), "Z6": lambda: cyclic(6), "D2": lambda: dihedral(2),
          "D3": lambda: dihedral(3), "D4": lambda: dihedral(4), "D5": lambda: dihedral(5), "D6": lambda: dihedral(6),
          "S3": symmetric3}


@pytest.fixture(params=list(GROUPS), ids=list(GROUPS))
def group(request):
    return GROUPS[request.param]()


def test_group_axioms_by_brute_force(group):
    n, t = group.order, group.table
    for a, b, c in itertools.product(range(n), repeat=3):
        assert t[t[a, b], c] == t[a, t[b, c]], f"({a}·{b})·{c} ≠ {a}·({b}·{c})"
    assert torch.equal(t[0], torch.arange(n)) and torch.equal(t[:, 0], torch.arange(n)), "0 is not the identity"
    for a in range(n):
        inverses = [b for b in range(n) if t[a, b] == 0]
        assert len(inverses) == 1 and t[inverses[0], a] == 0
        assert int(group.inverse[a]) == inverses[0]
        assert sorted(t[a].tolist()) == list(range(n)), "a row of the table is not a permutation"


def test_dihedral_relations_and_non_commutativity():
    for n in (3, 4, 5, 6):
        g = dihedral(n)
        r, s = torch.tensor(1), torch.tensor(n)  # r and s by the index convention a + n·b
        assert g.order == 2 * n
        power = torch.tensor(0)
        for _ in range(n):
            power = g.multiply(power, r)
        assert int(power) == 0, "r^n ≠ e"
        assert int(g.multiply(s, s)) == 0
        assert int(g.multiply(g.multiply(s, r), s)) == int(g.inverse[1]), "s r s ≠ r⁻¹"
        assert not torch.equal(g.table, g.table.T), "D_n (n ≥ 3) must not be abelian"
    assert torch.equal(cyclic(7).table, cyclic(7).table.T)


def test_cyclic_table_is_addition_mod_n():
    g = cyclic(9)
    for a, b in itertools.product(range(9), repeat=2):
        assert int(g.table[a, b]) == (a + b) % 9


def test_irreps_are_unitary_homomorphisms(group):
    t = group.table
    for rho in group.irreps:
        m = rho.matrices
        lhs = m[:, None] @ m[None, :]  # ρ(a)ρ(b), shape (n, n, d, d)
        torch.testing.assert_close(lhs, m[t], atol=1e-12, rtol=0)
        eye = torch.eye(rho.dim, dtype=m.dtype).expand_as(m)
        torch.testing.assert_close(m @ m.conj().transpose(-1, -2), eye, atol=1e-12, rtol=0)


def test_schur_orthogonality_and_completeness(group):
    """The |G| × |G| matrix of scaled irrep entries √(d/|G|) ρ_ij(g) is unitary: Schur orthogonality (columns
    orthonormal, irreps distinct and irreducible) and completeness (Σ d² = |G|, square)."""
    n = group.order
    assert sum(r.dim**2 for r in group.irreps) == n
    cols = [math.sqrt(r.dim / n) * r.matrices.reshape(n, -1) for r in group.irreps]
    u = torch.cat(cols, dim=1)
    torch.testing.assert_close(u.conj().T @ u, torch.eye(n, dtype=u.dtype), atol=1e-12, rtol=0)


def test_number_of_irreps_equals_number_of_conjugacy_classes(group):
    n, t, inv = group.order, group.table, group.inverse
    classes = {frozenset(int(t[t[h, g], inv[h]]) for h in range(n)) for g in range(n)}
    assert len(group.irreps) == len(classes)


def test_conjugate_irreps_share_a_frequency(group):
    for i, j in itertools.combinations(range(len(group.irreps)), 2):
        same = bool(group.frequency[i] == group.frequency[j])
        conj = torch.allclose(group.irreps[i].matrices, group.irreps[j].matrices.conj())
        assert same == conj
    assert group.num_frequencies == len(set(group.frequency.tolist()))


def test_s3_is_the_permutation_group_of_three_points():
    perms = list(itertools.permutations(range(3)))

    def compose(p, q):  # (p∘q)(i) = p(q(i))
        return tuple(p[q[i]] for i in range(3))

    r, s, e = (1, 2, 0), (0, 2, 1), (0, 1, 2)

    def image(index):
        a, b = index % 3, index // 3
        out = e
        for _ in range(a):
            out = compose(out, r)
        return compose(out, s) if b else out

    g = symmetric3()
    phi = [image(i) for i in range(6)]
    assert sorted(phi) == sorted(perms), "the map is not a bijection onto S3"
    for x, y in itertools.product(range(6), repeat=2):
        assert phi[int(g.table[x, y])] == compose(phi[x], phi[y])


@pytest.mark.parametrize("seed", [None, 3], ids=["identity-unitaries", "random-unitaries"])
def test_template_has_the_requested_power(group, seed):
    power = torch.arange(1, group.num_frequencies + 1, dtype=torch.float64)
    x = fourier_template(group, power, seed=seed)
    assert x.dtype == torch.float64 and x.shape == (group.order,)
    torch.testing.assert_close(group_fourier_power(x, group), power, atol=1e-12, rtol=1e-12)
    assert float(x.square().sum()) == pytest.approx(float(power.sum()), rel=1e-12)


def test_cyclic_template_power_matches_numpy_fft():
    p = 11
    power = np.array([0.0, 3.0, 0.0, 1.5, 0.2, 0.0])
    x = fourier_template(cyclic(p), power, seed=7).numpy()
    f = np.abs(np.fft.fft(x)) ** 2 / p
    by_freq = [f[0]] + [f[k] + f[p - k] for k in range(1, p // 2 + 1)]
    np.testing.assert_allclose(by_freq, power, atol=1e-12)


def test_template_symmetry_and_seed_dependence():
    g = dihedral(5)
    power = [0.0, 1.0, 2.0, 0.5]
    x0 = fourier_template(g, power)
    torch.testing.assert_close(x0, x0[g.inverse], atol=1e-12, rtol=0)  # identity unitaries: x(g) = x(g⁻¹)
    torch.testing.assert_close(fourier_template(g, power, seed=1), fourier_template(g, power, seed=1))
    assert not torch.allclose(fourier_template(g, power, seed=1), fourier_template(g, power, seed=2))


def test_regular_encoding_is_the_left_regular_action(group):
    x = fourier_template(group, torch.ones(group.num_frequencies), seed=0)
    enc = regular_encoding(group, x)
    n, t, inv = group.order, group.table, group.inverse
    for g, h in itertools.product(range(n), repeat=2):
        assert float(enc[g, h]) == float(x[t[inv[g], h]])
    for a, b in itertools.product(range(n), repeat=2):  # E[a·b] = λ(a) E[b]
        torch.testing.assert_close(enc[t[a, b]], enc[b][t[inv[a]]])
    power = group_fourier_power(enc, group, dim=1, reduce=False)
    torch.testing.assert_close(power, group_fourier_power(x, group).expand(n, -1), atol=1e-12, rtol=1e-10)


def test_one_hot_encoding_has_flat_irrep_power(group):
    enc = regular_encoding(group)
    torch.testing.assert_close(enc, torch.eye(group.order, dtype=torch.float64))
    expect = torch.tensor([r.dim**2 / group.order for r in group.irreps], dtype=torch.float64)
    torch.testing.assert_close(group_fourier_power(enc[0], group, by="irrep"), expect, atol=1e-12, rtol=0)


def test_exhaustive_composition_matches_a_loop():
    g = dihedral(4)
    data = composition_dataset(g, 3, template=fourier_template(g, [0, 1, 1, 1, 2], seed=0), dtype=torch.float64)
    assert len(data) == 8**3
    assert len({tuple(row) for row in data.elements.tolist()}) == 8**3
    for row, prod in zip(data.elements.tolist(), data.products.tolist()):
        expect = 0
        for el in row:
            expect = int(g.table[expect, el])
        assert prod == expect
    enc = regular_encoding(g, fourier_template(g, [0, 1, 1, 1, 2], seed=0))
    torch.testing.assert_close(data.inputs, enc[data.elements])
    torch.testing.assert_close(data.targets, enc[data.products])


def test_sampled_cyclic_composition_is_a_sum_and_seeded():
    g = cyclic(7)
    a = composition_dataset(g, 5, num_samples=300, seed=1)
    assert torch.equal(a.products, a.elements.sum(1) % 7)
    assert a.inputs.shape == (300, 5, 7) and a.inputs.dtype == torch.float32
    assert torch.equal(a.elements, composition_dataset(g, 5, num_samples=300, seed=1).elements)
    assert not torch.equal(a.elements, composition_dataset(g, 5, num_samples=300, seed=2).elements)


def test_group_from_name():
    assert group_from_name("Z7").order == 7 and group_from_name("C_7").name == "Z7"
    assert group_from_name("d5").order == 10 and group_from_name("S3").name == "S3"
    for bad in ("S4", "Q8", "Z"):
        with pytest.raises(ConfigError, match="unknown group"):
            group_from_name(bad)


def test_bad_input_raises_config_error():
    with pytest.raises(ConfigError, match="n must be an integer"):
        dihedral(1)
    with pytest.raises(ConfigError, match="one entry per frequency"):
        fourier_template(cyclic(5), [1.0, 1.0])
    with pytest.raises(ConfigError, match="≥ 0"):
        fourier_template(cyclic(5), [0.0, -1.0, 1.0])
    with pytest.raises(ConfigError, match="template must have shape"):
        regular_encoding(cyclic(5), torch.zeros(4))
    with pytest.raises(ConfigError, match="num_samples"):
        composition_dataset(cyclic(113), 4)
