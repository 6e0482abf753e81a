"""Monitors: observables from :mod:`lmech.measure` called by :func:`lmech.train.train` at a cadence."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..measure.hessian import Data, LossFn
from ..measure.sharpness import hessian_eigenpairs


class SharpnessMonitor:
    """Records ``sharpness`` (the top Hessian eigenvalue of the mean loss over ``data``) and
    ``sharpness_matvecs`` (the Hessian-vector products it cost).

    Each call warm-starts Lanczos from the previous call's top eigenvector, which changes little
    between nearby steps, so a call typically costs a handful of products instead of dozens. The
    start vector is mixed with a random direction of relative size ``warm_noise``: without it, a
    start vector that has become the eigenvector of the *second* eigenvalue (top eigenvalues cross
    at the edge of stability) would satisfy the residual test at once and report the wrong one.
    """

    def __init__(self, loss_fn: LossFn, data: Data, *, num_matvecs: int = 60, tol: float = 1e-3,
                 warm_noise: float = 0.1):
        self.loss_fn, self.data = loss_fn, data
        self.num_matvecs, self.tol, self.warm_noise = num_matvecs, tol, warm_noise
        self._previous: Tensor | None = None

    def __call__(self, model: nn.Module, step: int) -> Mapping[str, float]:
        v0 = None
        if self._previous is not None:
            gen = torch.Generator().manual_seed(step)
            noise = torch.randn(self._previous.shape, generator=gen, dtype=torch.float64).to(self._previous)
            v0 = self._previous / self._previous.norm() + self.warm_noise * noise / noise.norm()
        result = hessian_eigenpairs(
            model, self.loss_fn, self.data, 1, num_matvecs=self.num_matvecs, tol=self.tol, seed=step, v0=v0,
        )
        assert result.eigenvectors is not None
        self._previous = result.eigenvectors[0]
        return {"sharpness": float(result.eigenvalues[0]), "sharpness_matvecs": float(result.num_matvecs)}


class LossMonitor:
    """Records the mean loss over ``data`` (an ``(inputs, targets)`` pair) as ``name``."""

    def __init__(self, loss_fn: LossFn, data: tuple[Tensor, Tensor], name: str = "full_loss"):
        self.loss_fn, self.data, self.name = loss_fn, data, name

    def __call__(self, model: nn.Module, step: int) -> Mapping[str, float]:
        with torch.no_grad():
            return {self.name: float(self.loss_fn(model(self.data[0]), self.data[1]))}
