"""A small convolutional network for 8×8 images (the scikit-learn digits)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import require, valid_seed


def small_cnn(channels: int = 8, hidden: int = 64, classes: int = 10, *, seed: int = 0) -> nn.Sequential:
    """``64 pixels → (1, 8, 8) → conv3×3(c) → ReLU → conv3×3(2c) → ReLU → avg-pool 2 → flatten → linear(hidden)
    → ReLU → linear(classes)``, taking flat inputs of shape ``(n, 64)``. The last module is the classifier, so
    ``model[:-1](x)`` is the penultimate representation, shape ``(n, hidden)``.

    Initialised by PyTorch's defaults drawn under ``seed`` without touching the global random generator.

    Raises:
        ConfigError: ``channels``, ``hidden`` or ``classes`` below 1, or an invalid seed.

    >>> small_cnn(4)(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
    """
    for name, value in (("channels", channels), ("hidden", hidden), ("classes", classes)):
        require(isinstance(value, int) and value >= 1, f"{name} must be an integer >= 1, got {value!r}")
    valid_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(2 * channels * 16, hidden), nn.ReLU(),
            nn.Linear(hidden, classes),
        )
