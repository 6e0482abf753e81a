"""The hand-set composition networks against the multiplication table, by brute force: real irreps are
representations and invert to one-hot vectors; the pairwise block, the tree MLP and the RNN are exact on every
sequence of small groups; a corrupted weight breaks them; errors."""

import itertools

import pytest
import torch
from torch import nn

from lmech.data.groups import cyclic, dihedral, symmetric3
from lmech.errors import ConfigError
from lmech.models.composition import (
    CompositionRNN,
    Square,
    composition_mlp,
    composition_tree,
    hidden_layers,
    pair_block,
    real_irreps,
    tree_depth,
)

GROUPS = {"Z5": cyclic(5), "Z6": cyclic(6), "S3": symmetric3(), "D4": dihedral(4), "D5": dihedral(5)}


def all_sequences(order: int, k: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(order), repeat=k)), dtype=torch.int64)


def table_product(group, elements: torch.Tensor) -> torch.Tensor:
    """Left-to-right products straight from the table, one sequence at a time (independent of ``group.product``)."""
    out = []
    for row in elements.tolist():
        acc = row[0]
        for g in row[1:]:
            acc = int(group.table[acc, g])
        out.append(acc)
    return torch.tensor(out)


@pytest.mark.parametrize("name", GROUPS)
def test_real_irreps_are_orthogonal_representations_that_invert_to_one_hot(name):
    group = GROUPS[name]
    n = group.order
    mats, weights = real_irreps(group)
    for r in mats:
        torch.testing.assert_close(r[group.table], r[:, None] @ r[None, :], rtol=0, atol=1e-12)  # R(a)R(b) = R(ab)
        eye = torch.eye(r.shape[-1], dtype=torch.float64).expand_as(r)
        torch.testing.assert_close(r @ r.transpose(-1, -2), eye, rtol=0, atol=1e-12)
    gram = sum(w * torch.einsum("gij,hij->gh", r, r) for r, w in zip(mats, weights)) / n
    torch.testing.assert_close(gram, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)
    assert sum(r.shape[-1] ** 2 for r in mats) >= n


@pytest.mark.parametrize("activation", ["square", "relu"])
@pytest.mark.parametrize("name", GROUPS)
def test_pair_block_is_the_multiplication_table(name, activation):
    group = GROUPS[name]
    n = group.order
    block = pair_block(group, activation=activation)
    a, b = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    x = torch.cat([torch.eye(n, dtype=torch.float64)[a], torch.eye(n, dtype=torch.float64)[b]], 1)
    expected = torch.eye(n, dtype=torch.float64)[group.table[a, b]]
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-12)
    hidden = block[0].out_features
    assert hidden == (n * n if activation == "relu" else 2 * sum(r.shape[-1] ** 3 for r in real_irreps(group)[0]))


@pytest.mark.parametrize("activation", ["square", "relu"])
@pytest.mark.parametrize(("name", "k"), [("S3", 1), ("S3", 2), ("S3", 3), ("S3", 4), ("Z5", 5), ("D4", 4)])
def test_tree_is_exact_on_every_sequence_with_log_depth(name, k, activation):
    group = GROUPS[name]
    n = group.order
    elements = all_sequences(n, k)
    tree = composition_tree(group, k, activation=activation)
    out = tree(nn.functional.one_hot(elements, n).double().reshape(len(elements), -1))
    torch.testing.assert_close(out, torch.eye(n, dtype=torch.float64)[table_product(group, elements)], rtol=0, atol=1e-10)
    assert hidden_layers(tree) == tree_depth(k)


@pytest.mark.parametrize("activation", ["square", "relu"])
@pytest.mark.parametrize(("name", "k"), [("S3", 1), ("S3", 2), ("S3", 4), ("Z5", 3), ("D5", 3)])
def test_rnn_is_exact_on_every_sequence_with_fixed_width(name, k, activation):
    group = GROUPS[name]
    n = group.order
    elements = all_sequences(n, k)
    rnn = CompositionRNN(group, activation=activation)
    out = rnn(nn.functional.one_hot(elements, n).double())
    torch.testing.assert_close(out, torch.eye(n, dtype=torch.float64)[table_product(group, elements)], rtol=0, atol=1e-10)


@pytest.mark.parametrize("activation", ["square", "relu"])
def test_long_sequences_stay_exact_and_respect_order(activation):
    """k = 16 on S3 (non-abelian), a seeded sample: the outputs are one-hot to 1e-10 and the reversed sequences, whose
    products differ, are also right."""
    group = GROUPS["S3"]
    elements = torch.randint(0, 6, (2000, 16), generator=torch.Generator().manual_seed(0))
    truth, reverse = table_product(group, elements), table_product(group, elements.flip(1))
    assert (truth != reverse).float().mean() > 0.3
    for seq, target in ((elements, truth), (elements.flip(1), reverse)):
        x = nn.functional.one_hot(seq, 6).double()
        for out in (CompositionRNN(group, activation=activation)(x),
                    composition_tree(group, 16, activation=activation)(x.reshape(len(x), -1))):
            torch.testing.assert_close(out, torch.eye(6, dtype=torch.float64)[target], rtol=0, atol=1e-10)


def test_a_corrupted_weight_breaks_exactness():
    group = GROUPS["Z5"]
    elements = all_sequences(5, 4)
    x = nn.functional.one_hot(elements, 5).double().reshape(len(elements), -1)
    truth = table_product(group, elements)
    tree = composition_tree(group, 4, activation="square")
    with torch.no_grad():
        tree[-1].weight[[0, 1]] = tree[-1].weight[[1, 0]].clone()  # decode swaps the scores of e and g = 1
    assert float((tree(x).argmax(1) == truth).double().mean()) == pytest.approx(3 / 5)
    rnn = CompositionRNN(group, activation="relu")
    with torch.no_grad():
        rnn.drive.weight.zero_()  # the recurrence no longer sees elements 2…k: only g_2 = g_3 = g_4 = e stay right
    out = rnn(nn.functional.one_hot(elements, 5).double())
    assert float((out.argmax(1) == truth).double().mean()) < 0.25


def test_structure_and_the_trainable_mlp():
    assert [tree_depth(k) for k in (1, 2, 3, 4, 8, 16, 17)] == [0, 1, 2, 2, 3, 4, 5]
    tree = composition_tree(GROUPS["Z5"], 16, activation="relu")
    assert [m.out_features for m in tree if isinstance(m, nn.Linear)] == [200, 100, 50, 25, 5]
    assert isinstance(composition_tree(GROUPS["Z5"], 2)[1], Square)
    assert CompositionRNN(GROUPS["S3"]).hidden == 20 and CompositionRNN(GROUPS["S3"], activation="relu").hidden == 36
    net = composition_mlp(6, 8, 3, 32, seed=1)
    assert hidden_layers(net) == 3 and net(torch.zeros(2, 48)).shape == (2, 6)
    assert torch.equal(net[0].weight, composition_mlp(6, 8, 3, 32, seed=1)[0].weight)


def test_errors():
    with pytest.raises(ConfigError, match="activation must be one of"):
        pair_block(GROUPS["Z5"], activation="tanh")
    with pytest.raises(ConfigError, match="k must be an integer >= 1, got 0"):
        composition_tree(GROUPS["Z5"], 0)
    with pytest.raises(ConfigError, match=r"inputs must have shape \(batch, k, 5\)"):
        CompositionRNN(GROUPS["Z5"])(torch.zeros(3, 10, dtype=torch.float64))
    with pytest.raises(ConfigError, match="depth must be an integer >= 1, got 0"):
        composition_mlp(5, 2, 0, 8)
