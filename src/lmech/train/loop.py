"""The training loop: full-batch GD, minibatch SGD, heavy-ball momentum or Adam, with Monitors.

Time is counted in steps; the continuous time of gradient flow that a run approximates is
``t = lr × step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..config import non_negative, one_of, positive, require, valid_seed
from ..errors import NonFiniteError
from ..progress import NO_PROGRESS, Progress
from .records import Records

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")


class Monitor(Protocol):
    """Anything called as ``monitor(model, step)`` that returns observables by name."""

    def __call__(self, model: nn.Module, step: int) -> Mapping[str, float]: ...


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train.

    Attributes:
        optimizer: ``"gd"`` (full batch, plain steps), ``"sgd"`` (minibatches of ``batch_size``),
            ``"momentum"`` (heavy ball, ``momentum`` β, full batch unless ``batch_size`` is set) or
            ``"adam"``.
        lr: the step size η (> 0).
        steps: number of optimizer steps (≥ 1).
        batch_size: minibatch size; ``None`` means the full batch (required for ``"sgd"``).
        momentum: β for ``"momentum"``; Adam's β₁ is ``betas[0]``.
        betas: Adam's (β₁, β₂).
        weight_decay: L2 coefficient added to the gradient (AdamW-style decoupled for Adam).
        monitor_every: call the monitors every this many steps, and at the last step.
        seed: seeds the minibatch order (a private generator); 0 ≤ seed < 2**32.
    """

    optimizer: str = "gd"
    lr: float
    steps: int
    batch_size: int | None = None
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    monitor_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        positive("lr", self.lr)
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.monitor_every >= 1, f"monitor_every must be >= 1, got {self.monitor_every}")
        require(self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.optimizer != "sgd" or self.batch_size is not None, "optimizer 'sgd' needs a batch_size")
        require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        non_negative("weight_decay", self.weight_decay)
        valid_seed(self.seed)


def make_optimizer(params: Sequence[Tensor] | Any, config: TrainConfig) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer that implements ``config.optimizer``."""
    if config.optimizer == "adam":
        return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    beta = config.momentum if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=config.lr, momentum=beta, weight_decay=config.weight_decay)


def train(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data: tuple[Tensor, Tensor],
    config: TrainConfig,
    monitors: Sequence[Monitor] = (),
    *,
    index: Mapping[str, Any] | None = None,
    progress: Progress = NO_PROGRESS,
) -> Records:
    """Train ``model`` in place and return what was recorded.

    Recorded in long form with ``index`` columns on every row:

    * ``loss`` at every step: the loss of the batch the step used, before the update (for full
      batch methods this is the training loss at that step), and at ``steps`` after the last update;
    * every monitor's observables at steps ``0, monitor_every, 2·monitor_every, …`` and at ``steps``;
    * ``diverged`` = 1 at the step where the loss (or a monitor's product) became non-finite, after
      which training stops; monitors never see non-finite parameters.

    Args:
        data: ``(inputs, targets)`` of shapes ``(n, ...)`` and ``(n, ...)``.

    Same config, same initial model, same data → the same numbers (CPU, deterministic kernels).
    """
    index = dict(index or {})
    inputs, targets = data
    n = len(inputs)
    records = Records()
    optimizer = make_optimizer(model.parameters(), config)
    gen = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(n, generator=gen)
    cursor = 0

    def observe(step: int) -> None:
        for monitor in monitors:
            for name, value in monitor(model, step).items():
                records.add(step, name, value, **index)

    for step in range(config.steps + 1):
        if config.batch_size is None or config.batch_size >= n:
            x, y = inputs, targets
        else:
            if cursor + config.batch_size > n:
                order, cursor = torch.randperm(n, generator=gen), 0
            batch = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            x, y = inputs[batch], targets[batch]
        loss = loss_fn(model(x), y)
        value = float(loss.detach())
        records.add(step, "loss", value, **index)
        if not math.isfinite(value):
            records.add(step, "diverged", 1.0, **index)
            break
        if step % config.monitor_every == 0 or step == config.steps:
            try:
                observe(step)
            except NonFiniteError:  # finite loss, but curvature overflowed: diverging all the same
                records.add(step, "diverged", 1.0, **index)
                break
        if step == config.steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        progress.advance()
    return records
