"""Ensembles: many small models of one architecture trained at once, one batched step for all.

The members' parameters are stacked into one ``(members, parameters)`` tensor; each step runs one
batched forward pass (``torch.func.vmap`` over ``functional_call``, or batched matrix products for an
``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations), one backward pass and one
optimizer update written out on the stacked tensor, so that a sweep over seeds, learning rates or
initial scales of a small model pays Python's per-step overhead once instead of once per member.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from ..errors import ConfigError, NonFiniteError
from ..progress import NO_PROGRESS, Progress
from .loop import Monitor, TrainConfig
from .records import Records

#: Fields every member's :class:`TrainConfig` must share (``seed`` too when minibatching: it orders
#: the minibatches, which all members see in the same order).
SHARED_FIELDS = ("optimizer", "steps", "batch_size", "monitor_every")

#: Parameter-free modules applied elementwise, so that the batched fast path can call them on a
#: ``(members, batch, features)`` tensor as they are.
ELEMENTWISE = (nn.Tanh, nn.ReLU, nn.GELU, nn.Identity, nn.Sigmoid, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Softplus)

ADAM_EPS = 1e-8  # torch.optim.AdamW's default, which lmech.train.make_optimizer keeps


def train_ensemble(
    models: Sequence[nn.Module],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data: tuple[Tensor, Tensor],
    config: TrainConfig | Sequence[TrainConfig],
    monitors: Sequence[Monitor] = (),
    *,
    index: Sequence[Mapping[str, Any]] | None = None,
    progress: Progress = NO_PROGRESS,
) -> Records:
    """Train every model in ``models`` in place, all at once, as :func:`lmech.train.train` trains one.

    Each member ends with the parameters, and records the rows, that ``train(models[i], loss_fn,
    data, configs[i], monitors, index=index[i])`` gives alone, up to floating-point rounding (the
    batched products sum in another order): the same optimizer update rules as ``torch.optim.SGD``
    (dampening 0, the momentum buffer starting at the first gradient) and ``torch.optim.AdamW``
    (bias corrections, ε = 10⁻⁸ added to the corrected root), and the same minibatches in the same
    order for every member (drawn from ``config.seed``, as each member alone would draw them).

    Members may differ in their parameter values (seeds, initial scales) and in ``lr``,
    ``momentum``, ``betas`` and ``weight_decay``; they share the architecture, the data and
    ``optimizer``, ``steps``, ``batch_size``, ``monitor_every`` (and ``seed`` when minibatching).
    Every member runs member 0's ``forward``: members must differ only in their parameter values,
    and their modules must print alike (``repr``), which catches different activations or
    multipliers. Modules that draw random numbers (dropout) or update buffers in ``forward``
    (BatchNorm in training mode) cannot be batched.

    A member whose loss becomes non-finite records ``diverged`` = 1 at that step and is frozen
    there, as ``train`` stops; the others go on unaffected. Monitors are called per member, as
    ``monitor(models[i], step)`` with ``models[i]`` holding that member's current parameters.

    Args:
        models: the members, of one architecture (same module type, parameter names, shapes,
            dtypes and devices).
        loss_fn: ``loss_fn(outputs, targets)``, a scalar; it is batched over members with
            ``vmap``, so it must not call ``.item()`` or branch on values.
        data: ``(inputs, targets)`` of shapes ``(n, ...)`` and ``(n, ...)``, shared by all members.
        config: one :class:`TrainConfig` for all, or one per member.
        monitors: called per member at ``0, monitor_every, …`` and at ``steps``.
        index: one mapping of index columns per member (for example ``{"lr": 0.1, "seed": 3}``),
            distinct across members; ``None`` gives ``{"member": i}``.
        progress: advanced by the number of members at every step.

    Returns:
        The members' records in long form, each row carrying its member's ``index``.

    Raises:
        ConfigError: no models, members of different architectures (naming the first parameter that
            differs), configs that differ in a shared field, ``index`` of the wrong length or with
            repeated entries, or a ``loss_fn`` that does not return a scalar.

    Example: gradient descent on ``½ (w·1 − 1)²`` from ``w = 0`` gives ``w_t = 1 − (1 − η)^t``.

    >>> import torch
    >>> from torch import nn
    >>> models = [nn.Linear(1, 1, bias=False) for _ in range(3)]
    >>> _ = [nn.init.zeros_(m.weight) for m in models]
    >>> configs = [TrainConfig(lr=lr, steps=3) for lr in (0.1, 0.5, 1.0)]
    >>> def loss_fn(out, y):
    ...     return 0.5 * ((out - y) ** 2).mean()
    >>> records = train_ensemble(models, loss_fn, (torch.ones(1, 1), torch.ones(1, 1)), configs,
    ...                          index=[{"lr": c.lr} for c in configs])
    >>> [round(m.weight.item(), 4) for m in models]
    [0.271, 0.875, 1.0]
    >>> records.series("loss", lr=0.5)[1].tolist()  # ½ (1 − η)^(2t)
    [0.5, 0.125, 0.03125, 0.0078125]
    """
    models = list(models)
    if not models:
        raise ConfigError("train_ensemble needs at least one model, got none")
    inputs, targets = data
    n = len(inputs)
    shared, hyper = _resolve_configs(config, len(models), n)
    indices = _resolve_index(index, len(models))
    layout = _Layout.of(models)
    flat = layout.stack(models)
    forward = _batched_forward(models[0], layout, inputs)
    batched_loss = vmap(loss_fn, in_dims=(0, None))
    update = _Optimizer(shared.optimizer, hyper, flat)
    members = len(models)

    losses: Tensor | None = None  # (steps + 1, members), in the loss's dtype
    grad = torch.empty_like(flat)
    stopped: dict[int, int] = {}  # member → the step at which it diverged, where it stays
    frozen: dict[int, Tensor] = {}  # member → its parameters at that step
    restore: tuple[Tensor, Tensor] | None = None  # (members, parameters) to write back after updates
    observed: list[dict[int, list[tuple[str, float]]]] = [{} for _ in models]

    def stop(i: int, step: int) -> None:
        nonlocal restore
        stopped[i], frozen[i] = step, flat[i].clone()
        restore = torch.tensor(list(frozen), device=flat.device), torch.stack(list(frozen.values()))

    for step, (x, y) in enumerate(_batches(inputs, targets, shared)):
        last = step == shared.steps
        leaves = layout.views(flat.detach().requires_grad_(not last))
        with torch.set_grad_enabled(not last):
            loss = batched_loss(forward(leaves, x), y)
        if losses is None:
            if loss.shape != (members,):
                raise ConfigError(f"loss_fn must return a scalar, got shape {tuple(loss.shape[1:])} per member")
            losses = loss.new_empty(shared.steps + 1, members)
        losses[step] = loss.detach()
        finite = torch.isfinite(losses[step])
        if not bool(finite.all()):  # one sync a step; on a CPU, free
            for i in (~finite).nonzero().flatten().tolist():
                if i not in stopped:
                    stop(i, step)
        if monitors and (step % shared.monitor_every == 0 or last):
            for i, model in enumerate(models):  # as train() observes, for every member still running
                if i in stopped:
                    continue
                layout.unstack(flat[i], model)
                rows = observed[i].setdefault(step, [])
                try:
                    for monitor in monitors:
                        rows.extend(monitor(model, step).items())
                except NonFiniteError:  # finite loss, but curvature overflowed: diverging all the same
                    stop(i, step)
        if last or len(stopped) == members:
            break
        grads = torch.autograd.grad(loss.sum(), leaves)
        with torch.no_grad():
            torch.cat([g.reshape(members, -1) for g in grads], dim=1, out=grad)
            update(flat, grad)
            if restore is not None:
                flat.index_copy_(0, *restore)
        progress.advance(members)

    for i, model in enumerate(models):
        layout.unstack(flat[i], model)
    assert losses is not None
    return _records(losses.tolist(), step, stopped, observed, indices)


def _resolve_configs(config: TrainConfig | Sequence[TrainConfig], members: int, n: int) -> tuple[TrainConfig, dict]:
    """The shared config and the per-member hyperparameters as float64 arrays of shape (members,)."""
    configs = [config] * members if isinstance(config, TrainConfig) else list(config)
    if len(configs) != members:
        raise ConfigError(f"config must be one TrainConfig or one per model ({members}), got {len(configs)}")
    first = configs[0]
    minibatch = first.batch_size is not None and first.batch_size < n
    fields = SHARED_FIELDS + (("seed",) if minibatch else ())
    for i, c in enumerate(configs[1:], start=1):
        for field in fields:
            if getattr(c, field) != getattr(first, field):
                why = " (it orders the minibatches, which all members share)" if field == "seed" else ""
                raise ConfigError(
                    f"every member must share {field}{why}: member {i} has {getattr(c, field)!r}, member 0 "
                    f"{getattr(first, field)!r}; only lr, momentum, betas and weight_decay may differ"
                )
    hyper = {
        "lr": np.array([c.lr for c in configs], dtype=np.float64),
        "momentum": np.array([c.momentum if c.optimizer == "momentum" else 0.0 for c in configs]),
        "beta1": np.array([c.betas[0] for c in configs], dtype=np.float64),
        "beta2": np.array([c.betas[1] for c in configs], dtype=np.float64),
        "weight_decay": np.array([c.weight_decay for c in configs], dtype=np.float64),
    }
    return first, hyper


def _resolve_index(index: Sequence[Mapping[str, Any]] | None, members: int) -> list[dict[str, Any]]:
    if index is None:
        return [{"member": i} for i in range(members)]
    indices = [dict(ix) for ix in index]
    if len(indices) != members:
        raise ConfigError(f"index must have one mapping per model ({members}), got {len(indices)}")
    for i, ix in enumerate(indices):
        if ix in indices[:i]:
            raise ConfigError(
                f"index must tell the members apart: members {indices.index(ix)} and {i} both have {ix}; "
                "add a column such as 'seed' or 'member'"
            )
    return indices


@dataclass(frozen=True)
class _Layout:
    """Where each trainable parameter lives in a member's row of the stacked ``(members, P)`` tensor,
    and the frozen parameters and buffers, stacked, that the generic forward pass also needs."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]  # len(names) + 1 boundaries
    constants: dict[str, Tensor]  # frozen parameters and buffers, each of shape (members, ...)

    @classmethod
    def of(cls, models: Sequence[nn.Module]) -> _Layout:
        first = models[0]
        reference = {**dict(first.named_parameters()), **dict(first.named_buffers())}
        for i, model in enumerate(models[1:], start=1):
            if type(model) is not type(first):
                raise ConfigError(f"every member must share one architecture: member {i} is a "
                                  f"{type(model).__name__}, member 0 a {type(first).__name__}")
            tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
            for name in [*reference, *(k for k in tensors if k not in reference)]:
                if name not in tensors or name not in reference:
                    where = f"member {i} lacks it" if name not in tensors else "member 0 lacks it"
                    raise ConfigError(f"every member must share one architecture: parameter {name!r}: {where}")
                a, b = reference[name], tensors[name]
                if (a.shape, a.dtype, a.device, a.requires_grad) != (b.shape, b.dtype, b.device, b.requires_grad):
                    raise ConfigError(
                        f"every member must share one architecture: parameter {name!r} is "
                        f"{_describe(b)} in member {i}, {_describe(a)} in member 0"
                    )
            if repr(model) != repr(first):
                raise ConfigError(f"every member must share one architecture: member {i} prints as {model!r}, "
                                  f"member 0 as {first!r}")
        trainable = [(name, p) for name, p in first.named_parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError("the models have no parameters that require grad; nothing to train")
        sizes = [p.numel() for _, p in trainable]
        frozen = [name for name, p in first.named_parameters() if not p.requires_grad]
        frozen += [name for name, _ in first.named_buffers()]
        constants = {}
        for name in frozen:
            constants[name] = torch.stack([_get(model, name).detach() for model in models])
        return cls(
            names=tuple(name for name, _ in trainable),
            shapes=tuple(p.shape for _, p in trainable),
            offsets=tuple(int(o) for o in np.cumsum([0, *sizes])),
            constants=constants,
        )

    def stack(self, models: Sequence[nn.Module]) -> Tensor:
        """The trainable parameters, of shape (members, P)."""
        rows = [torch.cat([_get(m, name).detach().reshape(-1) for name in self.names]) for m in models]
        return torch.stack(rows)

    def views(self, flat: Tensor) -> list[Tensor]:
        """Each parameter as a view of ``flat`` of shape (members, *shape)."""
        return [flat[:, a:b].view(len(flat), *shape) for a, b, shape in zip(self.offsets, self.offsets[1:], self.shapes)]

    def unstack(self, row: Tensor, model: nn.Module) -> None:
        """Copy one member's row of shape (P,) into ``model``'s parameters."""
        with torch.no_grad():
            for name, a, b, shape in zip(self.names, self.offsets, self.offsets[1:], self.shapes):
                _get(model, name).copy_(row[a:b].view(shape))


def _get(model: nn.Module, name: str) -> Tensor:
    owner, _, attr = name.rpartition(".")
    return getattr(model.get_submodule(owner) if owner else model, attr)


def _describe(t: Tensor) -> str:
    return f"of shape {tuple(t.shape)}, {t.dtype}, on {t.device}, requires_grad={t.requires_grad}"


def _batched_forward(model: nn.Module, layout: _Layout, inputs: Tensor) -> Callable[[list[Tensor], Tensor], Tensor]:
    """``forward(params, x)`` with ``params`` as from :meth:`_Layout.views`, returning outputs of
    shape (members, batch, ...): batched matrix products for a plain stack of ``nn.Linear`` layers
    and elementwise activations (several times faster at small widths), ``vmap`` otherwise."""
    layers = list(model) if type(model) is nn.Sequential else []
    plain = (
        layers and not layout.constants and inputs.dim() == 2
        and all(type(layer) is nn.Linear or type(layer) in ELEMENTWISE for layer in layers)
    )
    if plain:
        return _linear_stack_forward(layers)
    template = copy.deepcopy(model).to("meta")

    def one(params: dict[str, Tensor], constants: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(template, {**params, **constants}, (x,))

    batched = vmap(one, in_dims=(0, 0, None))
    return lambda params, x: batched(dict(zip(layout.names, params)), layout.constants, x)


def _linear_stack_forward(layers: list[nn.Module]) -> Callable[[list[Tensor], Tensor], Tensor]:
    def forward(params: list[Tensor], x: Tensor) -> Tensor:
        it = iter(params)
        h = x.expand(len(params[0]), *x.shape)  # every member sees the same batch
        for layer in layers:
            if type(layer) is nn.Linear:
                weight = next(it).transpose(1, 2)
                h = torch.baddbmm(next(it).unsqueeze(1), h, weight) if layer.bias is not None else torch.bmm(h, weight)
            else:
                h = layer(h)
        return h

    return forward


def _batches(inputs: Tensor, targets: Tensor, config: TrainConfig):
    """The batches of steps ``0, …, steps``, exactly as :func:`lmech.train.train` draws them."""
    n = len(inputs)
    gen = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(n, generator=gen)
    cursor = 0
    for _ in range(config.steps + 1):
        if config.batch_size is None or config.batch_size >= n:
            yield inputs, targets
            continue
        if cursor + config.batch_size > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        batch = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        yield inputs[batch], targets[batch]


class _Optimizer:
    """``torch.optim.SGD`` (momentum, dampening 0) and ``torch.optim.AdamW`` on a stacked
    ``(members, P)`` tensor, with per-member hyperparameters. A hyperparameter that all members
    share is applied as a Python number, exactly as ``torch.optim`` applies it; one that differs is
    a column of shape (members, 1)."""

    def __init__(self, optimizer: str, hyper: Mapping[str, np.ndarray], flat: Tensor):
        self.optimizer, self.hyper = optimizer, hyper
        self.dtype, self.device = flat.dtype, flat.device
        self.step = 0
        self.buf: Tensor | None = None
        self.exp_avg = torch.zeros_like(flat) if optimizer == "adam" else None
        self.exp_avg_sq = torch.zeros_like(flat) if optimizer == "adam" else None

    def column(self, values: np.ndarray) -> float | Tensor:
        if np.all(values == values[0]):
            return float(values[0])
        return torch.as_tensor(values, dtype=self.dtype, device=self.device).unsqueeze(1)

    def __call__(self, param: Tensor, grad: Tensor) -> None:
        """One step: ``param`` and the optimizer state change in place; ``grad`` may be overwritten."""
        self.step += 1
        h = self.hyper
        lr, wd = h["lr"], h["weight_decay"]
        if self.optimizer == "adam":
            assert self.exp_avg is not None and self.exp_avg_sq is not None
            if np.any(wd != 0):
                param.mul_(self.column(1 - lr * wd))
            self.exp_avg.lerp_(grad, self.column(1 - h["beta1"]))
            beta2 = self.column(h["beta2"])
            if isinstance(beta2, float):
                self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            else:
                self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad * (1 - beta2))
            step_size = self.column(lr / (1 - h["beta1"] ** self.step))
            denom = (self.exp_avg_sq.sqrt() / self.column((1 - h["beta2"] ** self.step) ** 0.5)).add_(ADAM_EPS)
            if isinstance(step_size, float):
                param.addcdiv_(self.exp_avg, denom, value=-step_size)
            else:
                param.addcdiv_(self.exp_avg * -step_size, denom)
            return
        if np.any(wd != 0):
            decay = self.column(wd)
            if isinstance(decay, float):
                grad.add_(param, alpha=decay)
            else:
                grad.addcmul_(param, decay)
        if self.optimizer == "momentum":
            if self.buf is None:
                self.buf = grad.clone()
            else:
                self.buf.mul_(self.column(h["momentum"])).add_(grad)
            grad = self.buf
        rate = self.column(lr)
        if isinstance(rate, float):
            param.add_(grad, alpha=-rate)
        else:
            param.addcmul_(grad, -rate)


def _records(
    losses: list[list[float]],
    last: int,
    stopped: Mapping[int, int],
    observed: Sequence[Mapping[int, list[tuple[str, float]]]],
    indices: Sequence[Mapping[str, Any]],
) -> Records:
    """The rows :func:`lmech.train.train` would have written for each member, member after member."""
    records = Records()
    for i, index in enumerate(indices):
        for step in range(last + 1):
            value = losses[step][i]
            records.add(step, "loss", value, **index)
            if not np.isfinite(value):
                records.add(step, "diverged", 1.0, **index)
                break
            for name, observable in observed[i].get(step, ()):
                records.add(step, name, observable, **index)
            if stopped.get(i) == step:
                records.add(step, "diverged", 1.0, **index)
                break
    return records
