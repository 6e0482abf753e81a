"""Nanda et al.'s one-layer transformer: the last position equals a causal transformer written out in full,
initialisation scales, seeding, the attention-only variant, and errors."""

import math

import pytest
import torch

from lmech.errors import ConfigError
from lmech.models.grokking import GrokkingTransformer


def small(**kwargs):
    config = dict(d_vocab=12, context=4, d_model=16, n_heads=2, d_head=8, d_mlp=24, dtype=torch.float64) | kwargs
    return GrokkingTransformer(**config)


def causal_reference(model: GrokkingTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Every position of the causal transformer (masked attention over all queries, MLP at every position),
    read at the last one: the function Nanda et al. train."""
    length = tokens.shape[1]
    x = model.W_E[tokens] + model.W_pos[:length]
    q = torch.einsum("hed,bid->bhie", model.W_Q, x)
    k = torch.einsum("hed,bid->bhie", model.W_K, x)
    v = torch.einsum("hed,bid->bhie", model.W_V, x)
    scores = q @ k.transpose(-2, -1) / math.sqrt(model.d_head)
    scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
    z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(len(tokens), length, -1)
    x = x + z @ model.W_O.T
    if model.d_mlp:
        x = x + torch.relu(x @ model.W_in.T + model.b_in) @ model.W_out.T + model.b_out
    return (x @ model.W_U)[:, -1]


@pytest.mark.parametrize("d_mlp", [24, 0], ids=["with-mlp", "attention-only"])
def test_last_position_equals_the_causal_transformer(d_mlp, generator):
    model = small(d_mlp=d_mlp, seed=3)
    with torch.no_grad():  # non-zero biases so that they are exercised
        for name in ("b_in", "b_out"):
            if hasattr(model, name):
                getattr(model, name).normal_(0.0, 0.5, generator=generator)
    tokens = torch.randint(0, 12, (5, 4), generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), causal_reference(model, tokens), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(model(tokens[:, :3]), causal_reference(model, tokens[:, :3]), rtol=1e-12, atol=1e-12)
    assert hasattr(model, "W_in") == bool(d_mlp)


def test_initialisation_scales_and_private_seeding():
    state = torch.random.get_rng_state()
    model = GrokkingTransformer(d_vocab=114, d_model=128, n_heads=4, d_head=32, d_mlp=512, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    twin = GrokkingTransformer(d_vocab=114, d_model=128, n_heads=4, d_head=32, d_mlp=512, seed=5)
    other = GrokkingTransformer(d_vocab=114, d_model=128, n_heads=4, d_head=32, d_mlp=512, seed=6)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))
    assert not torch.equal(model.W_E, other.W_E)
    for name in ("W_E", "W_Q", "W_O", "W_in", "W_out"):
        assert getattr(model, name).std().item() == pytest.approx(1 / math.sqrt(128), rel=0.05)
    assert model.W_U.std().item() == pytest.approx(1 / math.sqrt(114), rel=0.05)
    assert model.b_in.abs().sum() == 0 and model.b_out.abs().sum() == 0
    assert sum(p.numel() for p in model.parameters()) == 114 * 128 * 2 + 3 * 128 + 4 * 128 * 128 + 2 * 128 * 512 + 512 + 128


def test_errors():
    with pytest.raises(ConfigError, match="sizes must be integers >= 1"):
        small(d_model=0)
    with pytest.raises(ConfigError, match="d_mlp must be an integer >= 0"):
        small(d_mlp=-1)
    with pytest.raises(ConfigError, match="seed must be"):
        small(seed=-1)
    model = small()
    with pytest.raises(ConfigError, match="integer tensor of shape"):
        model(torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="must be in 1..4"):
        model(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ConfigError, match="tokens must lie in 0..11"):
        model(torch.full((2, 3), 12))
