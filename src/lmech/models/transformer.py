"""A small decoder-only transformer: token and position embeddings, pre-LayerNorm blocks of causal
self-attention and an MLP, a final LayerNorm and an unembedding (GPT-2's layout: Radford et al. 2019;
attention from Vaswani et al. 2017, arXiv:1706.03762, eq. (1)).

Block ``l`` maps the residual stream ``x`` of shape (batch, length, d_model) to

.. math::  x \\leftarrow x + \\mathrm{Attn}(\\mathrm{LN}_1(x)), \\qquad
           x \\leftarrow x + W_\\text{down}\\, \\phi(W_\\text{up}\\, \\mathrm{LN}_2(x)),

with per-head logits ``τ q_t·k_s`` for ``s ≤ t`` (``-∞`` above the diagonal). The logit scale ``τ``
is a constructor argument: ``1/√d_head`` by default, ``1/d_head`` in muP (Yang et al. 2022, TP V,
arXiv:2203.03466, §4), which :func:`lmech.models.parametrize` sets relative to the base width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from ..config import require, valid_seed
from .mlp import ACTIVATIONS

__all__ = ["CausalSelfAttention", "Transformer"]


def _linear(fan_in: int, fan_out: int, bias: bool, dtype: torch.dtype, gen: torch.Generator) -> nn.Linear:
    """``nn.Linear`` with weights ``N(0, 1/fan_in)`` from ``gen`` and zero bias (the global RNG untouched)."""
    layer = skip_init(nn.Linear, fan_in, fan_out, bias=bias, dtype=dtype)
    with torch.no_grad():
        layer.weight.normal_(0.0, 1 / math.sqrt(fan_in), generator=gen)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with projections ``q, k, v`` (d_model → n_heads·d_head) and
    ``out`` (n_heads·d_head → d_model), and logit scale ``scale`` (a float attribute). Weights are drawn
    ``N(0, 1/fan_in)`` from ``generator`` (``None``: a fresh one seeded with 0), biases are 0."""

    def __init__(self, d_model: int, n_heads: int, d_head: int, *, scale: float, bias: bool = True,
                 dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0) if generator is None else generator
        self.n_heads, self.d_head, self.scale = n_heads, d_head, float(scale)
        inner = n_heads * d_head
        self.q, self.k, self.v = (_linear(d_model, inner, bias, dtype, gen) for _ in range(3))
        self.out = _linear(inner, d_model, bias, dtype, gen)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape

        def heads(t: Tensor) -> Tensor:  # (batch, n_heads, length, d_head)
            return t.view(batch, length, self.n_heads, self.d_head).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        logits = self.scale * (q @ k.transpose(-2, -1))
        future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = logits.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(batch, length, -1))


class Block(nn.Module):
    """``x + Attn(LN₁ x)`` then ``x + down(φ(up(LN₂ x)))``."""

    def __init__(self, d_model: int, n_heads: int, d_head: int, d_mlp: int, *, scale: float, activation: str,
                 bias: bool, dtype: torch.dtype, generator: torch.Generator) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model, dtype=dtype), nn.LayerNorm(d_model, dtype=dtype)
        self.attn = CausalSelfAttention(d_model, n_heads, d_head, scale=scale, bias=bias, dtype=dtype, generator=generator)
        self.up, self.act = _linear(d_model, d_mlp, bias, dtype, generator), ACTIVATIONS[activation]()
        self.down = _linear(d_mlp, d_model, bias, dtype, generator)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.down(self.act(self.up(self.ln2(x))))


class Transformer(nn.Module):
    """Decoder-only transformer mapping tokens of shape (batch, length) to logits (batch, length, vocab).

    Initialisation (standard parametrisation), from a private generator seeded by ``seed``: linear
    weights ``N(0, 1/fan_in)``, embeddings ``N(0, 1)``, biases 0, LayerNorm gains 1 and shifts 0.

    Args:
        vocab: vocabulary size (≥ 1).
        context: the longest sequence (≥ 1); position embeddings have this many rows.
        d_model: the residual width (≥ 1); ``width`` for :func:`lmech.models.parametrize`.
        n_layers: number of blocks (≥ 1).
        n_heads: attention heads per block (≥ 1).
        d_head: per-head dimension; ``None`` gives ``d_model // n_heads`` (``d_model`` must divide).
        d_mlp: MLP hidden width; ``None`` gives ``4 · d_model``.
        attn_scale: the logit scale ``τ > 0``; ``None`` gives ``1/√d_head``.
        activation: the MLP's ``φ``: ``"gelu"``, ``"relu"``, ``"tanh"`` or ``"identity"``.
        bias: whether the linear layers inside blocks have biases (the unembedding has none).
        seed: 0 ≤ seed < 2**32.
        dtype: of the parameters.

    Raises:
        ConfigError: a size below 1, ``d_model`` not divisible by ``n_heads`` when ``d_head`` is None, a
            non-positive ``attn_scale``, an unknown activation or an invalid seed; at call time,
            tokens that are not a 2-D integer tensor or longer than ``context``.

    >>> model = Transformer(vocab=11, context=8, d_model=16, n_layers=2, n_heads=2)
    >>> tuple(model(torch.zeros(3, 5, dtype=torch.long)).shape), round(model.blocks[0].attn.scale, 6)
    ((3, 5, 11), 0.353553)
    """

    def __init__(self, *, vocab: int, context: int, d_model: int, n_layers: int, n_heads: int, d_head: int | None = None,
                 d_mlp: int | None = None, attn_scale: float | None = None, activation: str = "gelu", bias: bool = True,
                 seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        require(d_head is not None or (n_heads >= 1 and d_model % n_heads == 0),
                f"d_model ({d_model}) must be divisible by n_heads ({n_heads}), or pass d_head")
        d_head = d_model // n_heads if d_head is None else d_head
        d_mlp = 4 * d_model if d_mlp is None else d_mlp
        sizes = dict(vocab=vocab, context=context, d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_head=d_head,
                     d_mlp=d_mlp)
        bad = {k: v for k, v in sizes.items() if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1)}
        require(not bad, f"sizes must be integers >= 1, got {bad}")
        attn_scale = 1 / math.sqrt(d_head) if attn_scale is None else attn_scale
        require(isinstance(attn_scale, (int, float)) and math.isfinite(attn_scale) and attn_scale > 0,
                f"attn_scale must be finite and > 0, got {attn_scale!r}")
        require(activation in ACTIVATIONS, f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        require(isinstance(seed, int), f"seed must be an integer, got {seed!r}")
        valid_seed(seed)
        self.vocab, self.context, self.d_model = vocab, context, d_model
        gen = torch.Generator().manual_seed(seed)
        self.tok_emb = skip_init(nn.Embedding, vocab, d_model, dtype=dtype)  # skip_init: no draws from the global RNG
        self.pos_emb = skip_init(nn.Embedding, context, d_model, dtype=dtype)
        with torch.no_grad():
            self.tok_emb.weight.normal_(0.0, 1.0, generator=gen)
            self.pos_emb.weight.normal_(0.0, 1.0, generator=gen)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_head, d_mlp, scale=attn_scale, activation=activation, bias=bias, dtype=dtype,
                  generator=gen)
            for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model, dtype=dtype)
        self.unembed = _linear(d_model, vocab, False, dtype, gen)

    @property
    def width(self) -> int:
        """``d_model``: the dimension :func:`lmech.models.parametrize` scales."""
        return self.d_model

    def width_roles(self) -> dict[str, str]:
        """Width roles of the linear layers (embeddings and LayerNorms are vector-like, ``"input"``)."""
        roles = {"unembed": "output"}
        for i in range(len(self.blocks)):
            roles.update({f"blocks.{i}.{name}": "hidden" for name in ("attn.q", "attn.k", "attn.v", "attn.out", "up", "down")})
        return roles

    def forward(self, tokens: Tensor) -> Tensor:
        require(tokens.ndim == 2 and not tokens.is_floating_point() and not tokens.is_complex(),
                f"tokens must be an integer tensor of shape (batch, length), got {tuple(tokens.shape)} {tokens.dtype}")
        require(tokens.shape[1] <= self.context, f"sequence length {tokens.shape[1]} exceeds context {self.context}")
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tok_emb(tokens) + self.pos_emb(positions)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_f(x))
