"""The plain MLP: seeded, and the global random generator untouched."""

import torch

from lmech.models import mlp


def test_same_seed_same_weights_and_the_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b = mlp(5, [7], 2, seed=4), mlp(5, [7], 2, seed=4)
    assert torch.equal(torch.rand(3), expected)  # building models drew nothing from the global generator
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(mlp(5, [7], 2, seed=5)[0].weight, a[0].weight)
