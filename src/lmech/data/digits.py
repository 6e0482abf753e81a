"""The scikit-learn handwritten digits: 1,797 real 8×8 images, 10 classes, shipped offline.

Source: the UCI ML hand-written digits test set (Alpaydin & Kaynak 1998), as packaged by
``sklearn.datasets.load_digits``. Pixels are integers 0..16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

NUM_EXAMPLES = 1797
NUM_CLASSES = 10
NUM_FEATURES = 64


@dataclass(frozen=True)
class Split:
    """Inputs of shape ``(n, 64)``, integer labels ``(n,)`` and one-hot targets ``(n, 10)``."""

    inputs: Tensor
    labels: Tensor
    onehot: Tensor

    def __len__(self) -> int:
        return len(self.labels)


def load_digits(
    n_train: int = 1000,
    n_test: int | None = None,
    *,
    seed: int = 0,
    standardize: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Split, Split]:
    """A seeded random train/test split of the digits, standardised per pixel.

    Standardisation uses the training split's per-pixel mean and standard deviation; pixels that
    are constant on the training split (std 0) are only centred.

    Args:
        n_train: training examples (1 ≤ n_train < 1797).
        n_test: test examples; ``None`` takes all that remain.
        seed: seeds the permutation (a local ``numpy`` generator; no global state is touched).

    Returns:
        ``(train, test)`` :class:`Split` s.

    Raises:
        ConfigError: if the sizes do not fit in 1,797 examples.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    if not 1 <= n_train < NUM_EXAMPLES:
        raise ConfigError(f"n_train must be between 1 and {NUM_EXAMPLES - 1}, got {n_train}")
    rest = NUM_EXAMPLES - n_train
    n_test = rest if n_test is None else n_test
    if not 0 <= n_test <= rest:
        raise ConfigError(f"n_test must be between 0 and {rest} (1797 - n_train), got {n_test}")
    x, y = _sk_load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(NUM_EXAMPLES)
    x, y = x[order].astype(np.float64), y[order]
    if standardize:
        mean, std = x[:n_train].mean(0), x[:n_train].std(0)
        x = (x - mean) / np.where(std > 0, std, 1.0)

    def split(lo: int, hi: int) -> Split:
        inputs = torch.as_tensor(x[lo:hi], dtype=dtype)
        labels = torch.as_tensor(y[lo:hi], dtype=torch.long)
        onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).to(dtype)
        return Split(inputs, labels, onehot)

    return split(0, n_train), split(n_train, n_train + n_test)
