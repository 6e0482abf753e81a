"""Hidden Markov processes that emit token sequences, with the exact belief state after every prefix.

An edge-emitting HMM (a "generator" in computational mechanics) is a stack of token-labelled substochastic
matrices ``T^{(x)}_{ij} = P(emit x, next state j | state i)``, shape ``(num_tokens, num_states, num_states)``,
with ``Σ_x Σ_j T^{(x)}_{ij} = 1``. The state chain is ``T = Σ_x T^{(x)}``; its stationary distribution ``π``
solves ``π T = π``. The *belief state* after a prefix ``x_{1:t}`` is the posterior over the current hidden
state, updated by the Bayes filter

.. math::

    \\eta_0 = \\pi, \\qquad \\eta_{t} = \\frac{\\eta_{t-1} T^{(x_t)}}{\\eta_{t-1} T^{(x_t)} \\mathbf 1}, \\qquad
    P(x_{t+1} = x \\mid x_{1:t}) = \\eta_t T^{(x)} \\mathbf 1 .

Sources: Shai, Marzen, Teixeira, Gietelink Oldenziel, Riechers (2024), "Transformers represent belief state
geometry in their residual stream", arXiv:2405.15943, §2 and App. (Mess3); Shai, Riechers et al. (2026),
"Transformers learn factored representations", arXiv:2602.02385 (products of independent processes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["HMM", "ProductProcess", "mess3"]

SUM_TOL = 1e-6  # how far from 1 a probability row may sum (float32 input); rows are then renormalised


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None and seed is not None:
        raise ConfigError("pass either seed or generator, not both")
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else seed)


def _check_sizes(num_sequences, length) -> None:
    ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in (num_sequences, length))
    if not ok:
        raise ConfigError(f"num_sequences and length must be integers ≥ 1, got {num_sequences!r} and {length!r}")


def _check_tokens(tokens: Tensor, num_tokens: int) -> Tensor:
    tokens = torch.as_tensor(tokens)
    if tokens.ndim != 2 or tokens.dtype.is_floating_point or tokens.is_complex():
        raise ConfigError(f"tokens must be an integer tensor of shape (num_sequences, length), got "
                          f"{tuple(tokens.shape)} {tokens.dtype}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= num_tokens):
        raise ConfigError(f"tokens must lie in 0..{num_tokens - 1}, got values in "
                          f"{int(tokens.min())}..{int(tokens.max())}")
    return tokens.long()


@dataclass(frozen=True, eq=False)
class HMM:
    """A hidden Markov process with token-labelled transition matrices.

    Attributes:
        transitions: ``T[x, i, j] = P(emit x, go to j | in i)``, shape ``(num_tokens, num_states, num_states)``,
            float64, non-negative, each row ``i`` summing to 1 over ``(x, j)``.
        initial: distribution of the first hidden state, shape ``(num_states,)``; ``None`` is the stationary one.
        name: for messages and reports.

    Raises:
        ConfigError: (on construction) a wrong shape, negative or non-finite entries, rows not summing to 1
            within :data:`SUM_TOL` (they are then renormalised in float64), an initial distribution that is not one.
    """

    transitions: Tensor
    initial: Tensor | None = None
    name: str = "hmm"

    def __post_init__(self) -> None:
        t = torch.as_tensor(self.transitions, dtype=torch.float64)
        if t.ndim != 3 or t.shape[1] != t.shape[2]:
            raise ConfigError(f"transitions must have shape (num_tokens, num_states, num_states), got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
            raise ConfigError(f"{self.name}: transition probabilities must be finite and ≥ 0")
        rows = t.sum(dim=(0, 2))
        if not torch.allclose(rows, torch.ones_like(rows), atol=SUM_TOL, rtol=0):
            raise ConfigError(f"{self.name}: Σ_x Σ_j T[x, i, j] must be 1 for every state i, got {rows.tolist()}")
        object.__setattr__(self, "transitions", t / rows[None, :, None])  # exact in float64 (inputs may be float32)
        if self.initial is not None:
            p = torch.as_tensor(self.initial, dtype=torch.float64)
            if p.shape != (t.shape[1],) or bool((p < 0).any()) or abs(float(p.sum()) - 1) > SUM_TOL:
                raise ConfigError(f"{self.name}: initial must be a probability vector of length {t.shape[1]}, got "
                                  f"{p.tolist()}")
            object.__setattr__(self, "initial", p / p.sum())

    @property
    def num_tokens(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[1])

    @property
    def state_transition(self) -> Tensor:
        """``T = Σ_x T^{(x)}``, the hidden chain's transition matrix, shape ``(num_states, num_states)``."""
        return self.transitions.sum(0)

    def stationary(self) -> Tensor:
        """The stationary distribution ``π = π T`` (least squares with ``Σπ = 1``), shape ``(num_states,)``.

        Raises:
            ConfigError: the chain has no unique stationary distribution (it is reducible).
        """
        s = self.num_states
        a = torch.cat([self.state_transition.T - torch.eye(s, dtype=torch.float64), torch.ones(1, s, dtype=torch.float64)])
        if int(torch.linalg.matrix_rank(a)) < s:
            raise ConfigError(f"{self.name}: the hidden chain has no unique stationary distribution (it is reducible)")
        b = torch.zeros(s + 1, dtype=torch.float64)
        b[-1] = 1.0
        pi = torch.linalg.lstsq(a, b.unsqueeze(1)).solution.squeeze(1)
        return pi.clamp_min(0) / pi.clamp_min(0).sum()

    def start(self) -> Tensor:
        """``η_0``: ``initial`` if given, else the stationary distribution."""
        return self.stationary() if self.initial is None else self.initial

    def sample(self, num_sequences: int, length: int, *, seed: int | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Sample token sequences and the hidden states that produced them.

        ``s_0 ~ η_0``; then for ``t = 1 … length``: ``(x_t, s_t) ~ T[·, s_{t−1}, ·]``. All sequences advance
        together (one inverse-CDF draw per step), so the cost is ``O(length · num_sequences)``.

        Args:
            num_sequences, length: ≥ 1.
            seed or generator: randomness (a private generator; ``seed=0`` when neither is given).

        Returns:
            ``(tokens, states)`` of shapes ``(num_sequences, length)`` and ``(num_sequences, length + 1)``, int64.
        """
        _check_sizes(num_sequences, length)
        gen = _generator(seed, generator)
        x, s = self.num_tokens, self.num_states
        # inverse CDF with u scaled by the row total and right=True: a zero-probability entry is never drawn
        cdf = self.transitions.permute(1, 0, 2).reshape(s, x * s).cumsum(1)  # row i: P(x, j | i) at column x·s + j
        start_cdf = self.start().cumsum(0)
        states = torch.empty(num_sequences, length + 1, dtype=torch.int64)
        tokens = torch.empty(num_sequences, length, dtype=torch.int64)
        u0 = torch.rand(num_sequences, generator=gen, dtype=torch.float64) * start_cdf[-1]
        states[:, 0] = torch.searchsorted(start_cdf, u0, right=True)
        for t in range(length):
            rows = cdf[states[:, t]]
            u = torch.rand(num_sequences, 1, generator=gen, dtype=torch.float64) * rows[:, -1:]
            idx = torch.searchsorted(rows, u, right=True).squeeze(1)
            tokens[:, t], states[:, t + 1] = idx // s, idx % s
        return tokens, states

    def beliefs(self, tokens: Tensor) -> Tensor:
        """Exact belief states ``η_t`` after every prefix ``x_{1:t}``, ``t = 0 … length`` (Bayes filter above).

        Args:
            tokens: shape ``(num_sequences, length)``, int.

        Returns:
            Beliefs of shape ``(num_sequences, length + 1, num_states)``, float64; ``[:, 0]`` is ``η_0``.

        Raises:
            ConfigError: tokens out of range, or a sequence the process cannot emit (zero probability).
        """
        return self._filter(tokens)[0]

    def log_prob(self, tokens: Tensor) -> Tensor:
        """``log P(x_{1:L}) = Σ_t log η_{t−1} T^{(x_t)} 1`` per sequence, shape ``(num_sequences,)``, nats."""
        return self._filter(tokens)[1]

    def next_token_probs(self, beliefs: Tensor) -> Tensor:
        """``P(next token = x | η) = η T^{(x)} 1`` for beliefs of shape ``(..., num_states)``; shape ``(..., num_tokens)``."""
        return beliefs.to(torch.float64) @ self.transitions.sum(2).T

    def _filter(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        tokens = _check_tokens(tokens, self.num_tokens)
        n, length = tokens.shape
        eta = self.start().expand(n, -1).clone()
        out = torch.empty(n, length + 1, self.num_states, dtype=torch.float64)
        out[:, 0] = eta
        logp = torch.zeros(n, dtype=torch.float64)
        for t in range(length):
            eta = torch.einsum("ni,nij->nj", eta, self.transitions[tokens[:, t]])
            norm = eta.sum(1)
            if bool((norm <= 0).any()):
                bad = int((norm <= 0).nonzero()[0])
                raise ConfigError(f"{self.name}: sequence {bad} has probability 0 at position {t} (token "
                                  f"{int(tokens[bad, t])}); it cannot come from this process")
            eta = eta / norm[:, None]
            logp += norm.log()
            out[:, t + 1] = eta
        return out, logp


def mess3(x: float = 0.05, alpha: float = 0.85) -> HMM:
    """The Mess3 process: 3 hidden states, 3 tokens; state ``i`` favours emitting token ``i``.

    With ``β = (1 − α)/2`` and ``y = 1 − 2x``,

    .. math::

        T^{(A)} = \\begin{pmatrix} \\alpha y & \\beta x & \\beta x \\\\ \\alpha x & \\beta y & \\beta x \\\\
        \\alpha x & \\beta x & \\beta y \\end{pmatrix},

    and ``T^{(B)}, T^{(C)}`` the same with the roles of the states permuted cyclically (``α`` sits on column
    ``x`` for token ``x``). ``T = Σ_x T^{(x)}`` is doubly stochastic (stay with probability ``1 − 2x``), so ``π`` is
    uniform and each token has stationary probability 1/3; the beliefs after a prefix form a fractal in the
    2-simplex. Shai et al. use ``x = 0.05, α = 0.85``.

    Raises:
        ConfigError: ``x ∉ (0, 1/2)`` or ``α ∉ (0, 1)``.

    Source:
        Marzen & Crutchfield (2017), arXiv:1702.08565 (the Mess3 family); Shai et al. (2024), arXiv:2405.15943,
        App. (parameters); matrices as in the authors' code (Astera-org/simplexity, ``transition_matrices.mess3``).
    """
    if not (0 < x < 0.5 and math.isfinite(x)):
        raise ConfigError(f"x must be in (0, 0.5), got {x!r}")
    if not (0 < alpha < 1 and math.isfinite(alpha)):
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
    beta, y = (1 - alpha) / 2, 1 - 2 * x
    t = torch.empty(3, 3, 3, dtype=torch.float64)
    for tok in range(3):
        emit = torch.full((3,), beta, dtype=torch.float64)
        emit[tok] = alpha  # weight of landing in state j while emitting tok
        stay = torch.full((3, 3), x, dtype=torch.float64).fill_diagonal_(y)  # from i to j
        t[tok] = stay * emit[None, :]
    return HMM(t, name=f"mess3(x={x}, alpha={alpha})")


@dataclass(frozen=True, eq=False)
class ProductProcess:
    """Independent HMMs run side by side; each step emits one joint token ``(x^{(1)}, …, x^{(F)})``.

    The joint token index is the mixed-radix number of the factor tokens, first factor most significant
    (``numpy.ravel_multi_index`` order). Because the factors are independent, the joint belief is the outer
    product of the factor beliefs, ``η_t = η^{(1)}_t ⊗ ⋯ ⊗ η^{(F)}_t`` — a product of simplices whose dimension
    grows linearly in ``F``, while the joint state space grows exponentially.

    Source:
        Shai, Amdahl-Culleton, Christensen, Bigelow, Rosas, Boyd, Alt, Ray, Riechers (2026), arXiv:2602.02385, §2.
    """

    factors: tuple[HMM, ...]

    def __post_init__(self) -> None:
        if len(self.factors) < 1 or not all(isinstance(f, HMM) for f in self.factors):
            raise ConfigError("factors must be a non-empty tuple of HMM")
        object.__setattr__(self, "factors", tuple(self.factors))

    @property
    def token_sizes(self) -> tuple[int, ...]:
        return tuple(f.num_tokens for f in self.factors)

    @property
    def num_tokens(self) -> int:
        return math.prod(self.token_sizes)

    def join_tokens(self, factor_tokens: Tensor) -> Tensor:
        """Joint token indices from factor tokens of shape ``(..., F)``; shape ``(...)``."""
        out = torch.zeros(factor_tokens.shape[:-1], dtype=torch.int64)
        for f, size in enumerate(self.token_sizes):
            out = out * size + factor_tokens[..., f]
        return out

    def split_tokens(self, tokens: Tensor) -> Tensor:
        """Factor tokens of shape ``(..., F)`` from joint token indices of shape ``(...)``."""
        parts, rest = [], torch.as_tensor(tokens).long()
        for size in reversed(self.token_sizes):
            parts.append(rest % size)
            rest = rest // size
        return torch.stack(parts[::-1], dim=-1)

    def sample(self, num_sequences: int, length: int, *, seed: int | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Joint tokens ``(num_sequences, length)`` and factor states ``(num_sequences, length + 1, F)``; each
        factor is sampled by :meth:`HMM.sample` in turn from one private generator."""
        gen = _generator(seed, generator)
        draws = [f.sample(num_sequences, length, generator=gen) for f in self.factors]
        tokens = self.join_tokens(torch.stack([d[0] for d in draws], dim=-1))
        return tokens, torch.stack([d[1] for d in draws], dim=-1)

    def factor_beliefs(self, tokens: Tensor) -> tuple[Tensor, ...]:
        """Each factor's exact belief after every prefix, shapes ``(num_sequences, length + 1, num_states_f)``."""
        tokens = _check_tokens(tokens, self.num_tokens)
        parts = self.split_tokens(tokens)
        return tuple(f.beliefs(parts[..., i]) for i, f in enumerate(self.factors))

    def beliefs(self, tokens: Tensor) -> Tensor:
        """The joint belief ``η^{(1)} ⊗ ⋯ ⊗ η^{(F)}`` flattened (first factor most significant), shape
        ``(num_sequences, length + 1, Π_f num_states_f)``."""
        out = None
        for b in self.factor_beliefs(tokens):
            out = b if out is None else (out[..., :, None] * b[..., None, :]).flatten(-2)
        return out

    def as_hmm(self) -> HMM:
        """The same process as one HMM on the product state space: ``T[(x_1…x_F)] = T_1[x_1] ⊗ ⋯ ⊗ T_F[x_F]``."""
        t = self.factors[0].transitions
        init = self.factors[0].start()
        for f in self.factors[1:]:
            t = torch.einsum("aij,bkl->abikjl", t, f.transitions)
            x, s1, s2 = t.shape[0] * t.shape[1], t.shape[2] * t.shape[3], t.shape[4] * t.shape[5]
            t = t.reshape(x, s1, s2)
            init = torch.kron(init, f.start())
        return HMM(t, init, name=" x ".join(f.name for f in self.factors))
