"""The one-layer transformer of Nanda et al.'s grokking study: embeddings, one attention layer, one ReLU MLP,
an unembedding — no LayerNorm, no attention biases.

For tokens ``t_1 … t_n`` the residual stream is ``x_i = W_E[t_i] + W_pos[i]``; the model reads off the *last*
position only (the one that predicts ``a + b`` after ``a b =``):

.. math::

    h = x_n + \\sum_{j} W_O^{j} \\sum_{i \\le n} A^{j}_{i}\\, W_V^{j} x_i, \\qquad
    A^{j} = \\mathrm{softmax}_i\\big( (W_Q^{j} x_n)\\cdot(W_K^{j} x_i) / \\sqrt{d_\\text{head}} \\big),

    \\text{logits} = \\big(h + W_\\text{out}\\,\\mathrm{ReLU}(W_\\text{in} h + b_\\text{in}) + b_\\text{out}\\big)\\, W_U .

With one layer, the last position's output depends on the other positions only through their keys and values,
so computing only the last query is the same function as Nanda et al.'s causal transformer read at position
``n`` (and a third of the MLP's cost).

Initialisation (theirs): ``W_E, W_pos, W_Q, W_K, W_V, W_O, W_in, W_out ~ N(0, 1/d_model)``,
``W_U ~ N(0, 1/d_vocab)``, biases 0, from a private generator.

Source: Nanda, Chan, Lieberum, Smith, Steinhardt (2023), *Progress measures for grokking via mechanistic
interpretability*, arXiv:2301.05217, §3 and App. A (d_model 128, 4 heads of 32, d_mlp 512, vocab p + 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import require, valid_seed

__all__ = ["GrokkingTransformer"]


class GrokkingTransformer(nn.Module):
    """One-layer, LayerNorm-free transformer mapping tokens of shape (batch, length) to the logits at the last
    position, shape (batch, d_vocab).

    Parameters (names as in Nanda et al.): ``W_E`` (d_vocab, d_model), ``W_pos`` (context, d_model),
    ``W_Q, W_K, W_V`` (n_heads, d_head, d_model), ``W_O`` (d_model, n_heads·d_head), ``W_in`` (d_mlp, d_model),
    ``b_in`` (d_mlp,), ``W_out`` (d_model, d_mlp), ``b_out`` (d_model,), ``W_U`` (d_model, d_vocab).

    Args:
        d_vocab: tokens in and classes out (``p + 1`` for ``a b =``).
        context: the longest sequence (3 for ``a b =``).
        d_model, n_heads, d_head: sizes, ≥ 1.
        d_mlp: the MLP's hidden width, ≥ 0; 0 drops the MLP (attention only).
        seed: 0 ≤ seed < 2**32; seeds a private generator (the global RNG is untouched).
        dtype: of the parameters.

    Raises:
        ConfigError: a size out of range or an invalid seed; at call time, tokens that are not a 2-D integer
            tensor, longer than ``context`` or outside ``0 … d_vocab − 1``.

    >>> model = GrokkingTransformer(d_vocab=8, context=3, d_model=16, n_heads=2, d_head=8, d_mlp=32)
    >>> tuple(model(torch.tensor([[1, 2, 7], [3, 4, 7]])).shape)
    (2, 8)
    """

    def __init__(self, *, d_vocab: int, context: int = 3, d_model: int = 128, n_heads: int = 4, d_head: int = 32,
                 d_mlp: int = 512, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        sizes = dict(d_vocab=d_vocab, context=context, d_model=d_model, n_heads=n_heads, d_head=d_head)
        bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
        require(not bad, f"sizes must be integers >= 1, got {bad}")
        require(isinstance(d_mlp, int) and not isinstance(d_mlp, bool) and d_mlp >= 0,
                f"d_mlp must be an integer >= 0 (0: no MLP), got {d_mlp!r}")
        require(isinstance(seed, int), f"seed must be an integer, got {seed!r}")
        valid_seed(seed)
        self.d_vocab, self.context, self.d_model, self.n_heads, self.d_head, self.d_mlp = \
            d_vocab, context, d_model, n_heads, d_head, d_mlp
        gen = torch.Generator().manual_seed(seed)

        def normal(*shape: int, std: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(std).to(dtype))

        s = 1 / math.sqrt(d_model)
        self.W_E = normal(d_vocab, d_model, std=s)
        self.W_pos = normal(context, d_model, std=s)
        self.W_Q, self.W_K, self.W_V = (normal(n_heads, d_head, d_model, std=s) for _ in range(3))
        self.W_O = normal(d_model, n_heads * d_head, std=s)
        if d_mlp:
            self.W_in = normal(d_mlp, d_model, std=s)
            self.b_in = nn.Parameter(torch.zeros(d_mlp, dtype=dtype))
            self.W_out = normal(d_model, d_mlp, std=s)
            self.b_out = nn.Parameter(torch.zeros(d_model, dtype=dtype))
        self.W_U = normal(d_model, d_vocab, std=1 / math.sqrt(d_vocab))

    def forward(self, tokens: Tensor) -> Tensor:
        require(tokens.ndim == 2 and not tokens.is_floating_point() and not tokens.is_complex(),
                f"tokens must be an integer tensor of shape (batch, length), got {tuple(tokens.shape)} {tokens.dtype}")
        length = tokens.shape[1]
        require(1 <= length <= self.context, f"sequence length {length} must be in 1..{self.context} (the context)")
        require(bool(((tokens >= 0) & (tokens < self.d_vocab)).all()),
                f"tokens must lie in 0..{self.d_vocab - 1} (d_vocab = {self.d_vocab})")
        x = self.W_E[tokens] + self.W_pos[:length]  # (batch, length, d_model)
        batch, inner = len(tokens), self.n_heads * self.d_head
        # one matrix product per projection; the per-head products with the single query are elementwise
        q = (x[:, -1] @ self.W_Q.reshape(inner, -1).T).view(batch, 1, self.n_heads, self.d_head)  # the last query
        k = (x @ self.W_K.reshape(inner, -1).T).view(batch, length, self.n_heads, self.d_head)
        v = (x @ self.W_V.reshape(inner, -1).T).view(batch, length, self.n_heads, self.d_head)
        attn = ((q * k).sum(-1) / math.sqrt(self.d_head)).softmax(dim=1)  # (batch, length, n_heads)
        z = (attn.unsqueeze(-1) * v).sum(1).reshape(batch, inner)
        h = x[:, -1] + z @ self.W_O.T
        if self.d_mlp:
            h = h + torch.relu(h @ self.W_in.T + self.b_in) @ self.W_out.T + self.b_out
        return h @ self.W_U
