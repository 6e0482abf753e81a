"""The small transformer: causality, attention against PyTorch's own, the block formula, seeding and errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmech.errors import ConfigError
from lmech.models import CausalSelfAttention, Transformer


def small(**kwargs):
    config = dict(vocab=17, context=10, d_model=24, n_layers=2, n_heads=3, dtype=torch.float64) | kwargs
    return Transformer(**config)


def test_output_at_t_ignores_later_tokens(generator):
    model = small(seed=2)
    tokens = torch.randint(0, 17, (4, 10), generator=generator)
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1 + torch.randint(0, 15, (4, 4), generator=generator)) % 17
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :6], after[:, :6])
    assert (before[:, 6:] - after[:, 6:]).abs().amax() > 1e-3  # and later positions do see the change


@pytest.mark.parametrize("scale", [None, 0.05], ids=["default", "custom"])
def test_attention_equals_pytorch_sdpa(scale, generator):
    attn = CausalSelfAttention(12, 3, 4, scale=1 / math.sqrt(4) if scale is None else scale, bias=True, dtype=torch.float64)
    x = torch.randn(2, 7, 12, generator=generator, dtype=torch.float64)

    def heads(t):
        return t.view(2, 7, 3, 4).transpose(1, 2)

    with torch.no_grad():
        ref = F.scaled_dot_product_attention(heads(attn.q(x)), heads(attn.k(x)), heads(attn.v(x)), is_causal=True,
                                             scale=attn.scale)
        expected = attn.out(ref.transpose(1, 2).reshape(2, 7, 12))
        torch.testing.assert_close(attn(x), expected, rtol=1e-12, atol=1e-12)
    twin = CausalSelfAttention(12, 3, 4, scale=1.0, dtype=torch.float64)  # no generator: a fresh one seeded with 0
    assert torch.equal(twin.q.weight, attn.q.weight) and twin.q.weight.std().item() == pytest.approx(0.29, abs=0.1)


def test_forward_equals_the_written_blocks(generator):
    model = small(n_layers=1, activation="relu", attn_scale=0.3)
    tokens = torch.randint(0, 17, (3, 8), generator=generator)
    block = model.blocks[0]
    with torch.no_grad():
        x = model.tok_emb.weight[tokens] + model.pos_emb.weight[:8]
        x = x + block.attn(F.layer_norm(x, (24,), block.ln1.weight, block.ln1.bias))
        x = x + block.down(torch.relu(block.up(F.layer_norm(x, (24,), block.ln2.weight, block.ln2.bias))))
        torch.testing.assert_close(model(tokens), F.layer_norm(x, (24,)) @ model.unembed.weight.T, rtol=1e-12, atol=1e-12)
    assert block.attn.scale == 0.3 and block.up.out_features == 96


def test_initialisation_is_standard_and_private():
    state = torch.random.get_rng_state()
    model = Transformer(vocab=50, context=16, d_model=256, n_layers=1, n_heads=4, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state), "the transformer must not touch the global RNG"
    assert model.blocks[0].attn.q.weight.std().item() == pytest.approx(1 / 16, rel=0.02)  # 65,536 draws of N(0, 1/256)
    assert model.tok_emb.weight.std().item() == pytest.approx(1.0, rel=0.03)
    assert model.blocks[0].up.bias.abs().sum() == 0 and model.unembed.bias is None
    twin = Transformer(vocab=50, context=16, d_model=256, n_layers=1, n_heads=4, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
    assert model.width == 256 and model.tok_emb.weight.dtype == torch.float32


def test_width_roles_cover_every_linear_layer():
    model = small(n_layers=3)
    linears = {name for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert set(model.width_roles()) == linears
    assert model.width_roles()["unembed"] == "output" and model.width_roles()["blocks.2.attn.out"] == "hidden"


def test_explicit_head_dimension():
    model = small(n_heads=2, d_head=5, d_mlp=7)
    assert model.blocks[0].attn.q.out_features == 10 and model.blocks[0].attn.scale == pytest.approx(1 / math.sqrt(5))
    assert model(torch.zeros(1, 3, dtype=torch.long)).shape == (1, 3, 17)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(n_heads=5), r"d_model \(24\) must be divisible by n_heads \(5\), or pass d_head"),
     (dict(vocab=0), r"sizes must be integers >= 1, got \{'vocab': 0\}"),
     (dict(attn_scale=0.0), "attn_scale must be finite and > 0, got 0.0"),
     (dict(activation="swish"), "activation must be one of"),
     (dict(seed=-3), "seed")],
    ids=["heads", "vocab", "scale", "activation", "seed"],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        small(**kwargs)


def test_bad_tokens():
    model = small()
    with pytest.raises(ConfigError, match="sequence length 11 exceeds context 10"):
        model(torch.zeros(1, 11, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"tokens must be an integer tensor of shape \(batch, length\), got \(4,\)"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="torch.float32"):
        model(torch.zeros(1, 4))
