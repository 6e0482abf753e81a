"""Fully connected networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "identity": nn.Identity}


def mlp(
    in_features: int,
    widths: Sequence[int],
    out_features: int,
    *,
    activation: str = "tanh",
    bias: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """``Linear → act → … → Linear`` with hidden ``widths``, PyTorch's default (Kaiming-uniform)
    initialisation drawn from a private generator seeded by ``seed`` (global RNG untouched).

    Raises:
        ConfigError: a width below 1 or an unknown activation.
    """
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    sizes = [in_features, *widths, out_features]
    if any(int(s) < 1 for s in sizes):
        raise ConfigError(f"every layer size must be >= 1, got {sizes}")
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):  # nn.Linear draws a throwaway init from the global RNG
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b, bias=bias, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
    model = nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / layer.in_features**0.5  # PyTorch's default for both weight and bias
                layer.weight.uniform_(-bound, bound, generator=gen)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=gen)
    return model
