"""Losses the laws share."""

from __future__ import annotations

import torch


def half_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``½‖f(x) − y‖²`` summed over outputs, mean over examples (the square loss of Cohen et al. 2021,
    arXiv:2103.00065, and of kernel gradient flow, Lee et al. 2019, arXiv:1902.06720).

    Args:
        outputs, targets: of shape (n, k).

    >>> half_mse(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]))
    tensor(2.5000)
    """
    return 0.5 * ((outputs - targets) ** 2).sum(dim=1).mean()
