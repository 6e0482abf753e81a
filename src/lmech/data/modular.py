"""Binary operations on ``Z_p`` (modular addition and friends) over all pairs, split into train and test.

Every pair ``(a, b) ∈ Z_p × Z_p`` (for division, ``b ≠ 0``) is one example with label ``a ∘ b mod p``. A seeded
permutation puts a fraction ``train_frac`` of the pairs in the training split and the rest in the test split,
as in the grokking experiments. Inputs are the token sequence ``[a, b, =]`` with ``=`` the extra token ``p``
(Nanda et al.'s one-layer transformer); :meth:`ModularSplit.onehot` gives the concatenated one-hot ``(e_a, e_b)``
that two-layer networks take (Gromov 2023; Kunin et al. 2025).

Sources: Power, Burda, Edwards, Babuschkin, Misra (2022), arXiv:2201.02177 (operations, train fractions);
Nanda, Chan, Lieberum, Smith, Steinhardt (2023), arXiv:2301.05217, §3 (p = 113, 30% train, ``[a, b, =]``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["ModularSplit", "OPERATIONS", "modular_arithmetic"]

OPERATIONS = ("add", "sub", "mul", "div", "square_add")


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % d for d in range(2, int(p**0.5) + 1))


@dataclass(frozen=True)
class ModularSplit:
    """One split of a modular-arithmetic task.

    Attributes:
        inputs: tokens ``[a, b, p]`` of shape ``(n, 3)`` (or ``[a, b]``, ``(n, 2)``, without the ``=`` token), int64.
        labels: ``a ∘ b mod p``, shape ``(n,)``, int64.
        p: the modulus (the ``=`` token's index; the vocabulary has ``p + 1`` tokens).
    """

    inputs: Tensor
    labels: Tensor
    p: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def pairs(self) -> Tensor:
        """``(a, b)`` of shape ``(n, 2)``."""
        return self.inputs[:, :2]

    def onehot(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Concatenated one-hot encodings ``(e_a, e_b)``, shape ``(n, 2p)``."""
        return torch.nn.functional.one_hot(self.pairs, self.p).flatten(1).to(dtype)


def _apply(op: str, a: Tensor, b: Tensor, p: int) -> Tensor:
    if op == "add":
        return (a + b) % p
    if op == "sub":
        return (a - b) % p
    if op == "mul":
        return (a * b) % p
    if op == "div":  # a · b^{p−2} = a / b by Fermat's little theorem
        inv = torch.tensor([pow(int(v), p - 2, p) for v in range(p)], dtype=torch.int64)
        return (a * inv[b]) % p
    return (a * a + b * b) % p


def modular_arithmetic(p: int = 113, *, op: str = "add", train_frac: float = 0.3, seed: int = 0,
                       equals_token: bool = True) -> tuple[ModularSplit, ModularSplit]:
    """All pairs of ``Z_p`` labelled by ``a ∘ b mod p``, randomly split into train and test.

    Operations: ``add`` ``a + b``, ``sub`` ``a − b``, ``mul`` ``a·b``, ``div`` ``a·b⁻¹`` (``b ≠ 0``, ``p`` prime),
    ``square_add`` ``a² + b²`` (all mod ``p``).

    Args:
        p: the modulus, ≥ 2 (prime for ``div``).
        op: one of :data:`OPERATIONS`.
        train_frac: fraction of pairs in the training split, in ``(0, 1)``; the split sizes are
            ``round(train_frac · N)`` and the rest, with ``N = p²`` (``p(p − 1)`` for ``div``).
        seed: seeds the permutation (a private generator).
        equals_token: append the ``=`` token ``p`` to each input.

    Returns:
        ``(train, test)`` :class:`ModularSplit` s; together they hold every pair once.

    Raises:
        ConfigError: an unknown ``op``, ``p < 2``, a composite ``p`` with ``div``, ``train_frac`` outside
            ``(0, 1)`` or leaving a split empty.

    >>> train, test = modular_arithmetic(5, train_frac=0.4)
    >>> len(train), len(test), bool(((train.inputs[:, 0] + train.inputs[:, 1]) % 5 == train.labels).all())
    (10, 15, True)
    """
    if op not in OPERATIONS:
        raise ConfigError(f"op must be one of {', '.join(OPERATIONS)}, got {op!r}")
    if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 2:
        raise ConfigError(f"p must be an integer ≥ 2, got {p!r}")
    p = int(p)
    if op == "div" and not _is_prime(p):
        raise ConfigError(f"op='div' needs a prime p (every b ≠ 0 invertible), got p = {p}")
    if not isinstance(train_frac, numbers.Real) or not 0 < train_frac < 1:
        raise ConfigError(f"train_frac must be in (0, 1), got {train_frac!r}")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    if op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
    n = len(a)
    n_train = round(train_frac * n)
    if not 0 < n_train < n:
        raise ConfigError(f"train_frac = {train_frac} leaves a split empty ({n_train} of {n} pairs); "
                          "move it away from 0 and 1")
    labels = _apply(op, a, b, p)
    cols = [a, b] + ([torch.full_like(a, p)] if equals_token else [])
    inputs = torch.stack(cols, dim=1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, te = order[:n_train], order[n_train:]
    return ModularSplit(inputs[tr], labels[tr], p), ModularSplit(inputs[te], labels[te], p)
