"""Hessian-vector products of a mean loss over a dataset.

The Hessian is that of the *mean* loss over every example in ``data``:

.. math::

    L(\\theta) = \\frac{1}{N} \\sum_{c} n_c \\, \\ell_c(\\theta), \\qquad
    H v = \\nabla^2_\\theta L(\\theta) \\, v = \\frac{1}{N} \\sum_c n_c \\, \\nabla^2_\\theta \\ell_c(\\theta)\\, v,

where chunk ``c`` holds ``n_c`` examples and ``loss_fn`` returns their mean loss ``ℓ_c``. Products
use double backward (reverse-over-reverse; Pearlmutter 1994, *Fast exact multiplication by the
Hessian*) one chunk at a time, so no graph spanning the whole dataset is ever held. With a single
chunk, the first-order graph is built once and reused by every product: a product then costs about
1.8 gradients, against about 3.6–4.7 when the data is split into chunks (float64/float32 on the
edge-of-stability network; ``benchmarks/bench_sharpness.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Union

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..errors import ConfigError, TrainModeError

Batch = tuple[Tensor, Tensor]
Data = Union[Batch, Iterable[Batch]]
LossFn = Callable[[Tensor, Tensor], Tensor]

# Layers whose output depends on train/eval mode (GroupNorm and LayerNorm do not, so they are allowed).
_TRAIN_MODE_SENSITIVE = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


def as_batches(data: Data) -> Sequence[Batch] | Iterable[Batch]:
    """Return ``data`` as a re-iterable collection of ``(inputs, targets)`` pairs.

    Raises:
        TypeError: if ``data`` is a one-shot iterator (it would be exhausted after one product) or
            a pair whose members are not tensors.
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        return [tuple(data)]  # type: ignore[list-item]
    if iter(data) is data:  # type: ignore[arg-type]
        raise TypeError(
            "data is a one-shot iterator, but every Hessian-vector product passes over it again; "
            "pass a list of (inputs, targets) pairs or a DataLoader instead (e.g. list(data))"
        )
    return data  # type: ignore[return-value]


def check_eval_mode(model: nn.Module, allow_train_mode: bool) -> None:
    """Refuse curvature of a model whose dropout or normalisation layers are in training mode.

    Raises:
        TrainModeError: naming the first offending layer, unless ``allow_train_mode`` is true.
    """
    if allow_train_mode:
        return
    for name, module in model.named_modules():
        if module.training and isinstance(module, _TRAIN_MODE_SENSITIVE):
            raise TrainModeError(
                f"layer {name!r} ({type(module).__name__}) is in training mode, so the loss is random "
                "or batch-dependent and its Hessian is not well defined; call model.eval() first, or "
                "pass allow_train_mode=True if you mean it"
            )


class HessianOperator:
    """The Hessian of a mean loss as a linear operator on flat parameter vectors.

    Args:
        model: any ``nn.Module``; the Hessian is with respect to its parameters that require grad.
        loss_fn: ``loss_fn(outputs, targets)`` returning the *mean* loss over the batch (a scalar).
        data: an ``(inputs, targets)`` pair, or a re-iterable of such pairs (chunks).
        allow_train_mode: allow dropout/BatchNorm in training mode (see :func:`check_eval_mode`).

    Vectors are 1-D tensors of shape ``(num_params,)`` in the parameters' dtype and device, in the
    order of ``model.named_parameters()``.

    Raises:
        TrainModeError: see :func:`check_eval_mode`.
        ValueError: if the model has no trainable parameters or the data holds no examples.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data, *, allow_train_mode: bool = False):
        check_eval_mode(model, allow_train_mode)
        self.model = model
        self.loss_fn = loss_fn
        self.batches = as_batches(data)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ConfigError("the model has no parameters with requires_grad=True; nothing to differentiate")
        self.names = [n for n, _ in named]
        # A snapshot: later in-place updates of the model do not reach this operator.
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in named}
        # Buffers too (copies, not views): BatchNorm running statistics updated by later training, or
        # by a forward pass in train mode inside a product, must not leak in either direction.
        self.buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.num_params = sum(self.numels)
        self.dtype = named[0][1].dtype
        self.device = named[0][1].device
        self.num_examples = sum(len(x) for x, _ in self.batches)
        if self.num_examples == 0:
            raise ConfigError("data holds no examples; pass at least one (inputs, targets) pair")
        self._single_chunk = isinstance(self.batches, (list, tuple)) and len(self.batches) == 1
        self._cached_grad: list[Tensor] | None = None

    # -- flat <-> dict ---------------------------------------------------------------------------
    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Split a vector of shape ``(num_params,)`` into a name → tensor dict."""
        if flat.shape != (self.num_params,):
            raise ConfigError(f"vector must have shape ({self.num_params},), got {tuple(flat.shape)}")
        parts = torch.split(flat, self.numels)
        return {n: t.view(s) for n, t, s in zip(self.names, parts, self.shapes)}

    def flatten(self, tensors: dict[str, Tensor] | Sequence[Tensor]) -> Tensor:
        """Concatenate per-parameter tensors into one vector of shape ``(num_params,)``."""
        items = [tensors[n] for n in self.names] if isinstance(tensors, dict) else list(tensors)
        return torch.cat([t.reshape(-1) for t in items])

    # -- the loss and its derivatives --------------------------------------------------------------
    def _chunk_loss(self, params: dict[str, Tensor], inputs: Tensor, targets: Tensor) -> Tensor:
        outputs = functional_call(self.model, (params, self.buffers), (inputs,))
        loss = self.loss_fn(outputs, targets)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ConfigError(
                f"loss_fn must return the mean loss over the batch as a scalar tensor, got {shape}; "
                "use reduction='mean' (or .mean() the per-example losses)"
            )
        return loss

    def _weight(self, inputs: Tensor) -> float:
        return len(inputs) / self.num_examples

    def loss(self) -> float:
        """The mean loss over all examples."""
        with torch.no_grad():
            return math.fsum(
                self._weight(x) * float(self._chunk_loss(self.params, x, y)) for x, y in self.batches
            )

    def _chunk_grad(self, inputs: Tensor, targets: Tensor, create_graph: bool) -> list[Tensor]:
        params = list(self.params.values())
        with torch.enable_grad():
            loss = self._chunk_loss(self.params, inputs, targets)
            grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
        # A parameter the loss does not depend on has zero gradient; autograd reports it as None.
        return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]

    def gradient(self) -> Tensor:
        """The gradient of the mean loss, shape ``(num_params,)``."""
        total = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        for x, y in self.batches:
            total.add_(self.flatten(self._chunk_grad(x, y, create_graph=False)), alpha=self._weight(x))
        return total

    def _second_backward(self, grads: list[Tensor], tangent: list[Tensor], retain_graph: bool) -> Tensor:
        """``∂(gᵀv)/∂θ`` for the first-order ``grads`` of one chunk."""
        live = [i for i, g in enumerate(grads) if g.requires_grad]  # the others are constant in θ
        params = list(self.params.values())
        out = [torch.zeros_like(p) for p in params]
        if live:
            with torch.enable_grad():
                hv = torch.autograd.grad(
                    [grads[i] for i in live], params, [tangent[i] for i in live],
                    retain_graph=retain_graph, allow_unused=True,
                )
            out = [o if h is None else h for o, h in zip(out, hv)]
        return self.flatten(out)

    def matvec(self, v: Tensor) -> Tensor:
        """``H v`` for ``v`` of shape ``(num_params,)``; one double-backward pass per chunk."""
        tangent = list(self.unflatten(v.to(dtype=self.dtype, device=self.device)).values())
        if self._single_chunk:
            if self._cached_grad is None:
                self._cached_grad = self._chunk_grad(*self.batches[0], create_graph=True)  # type: ignore[index]
            return self._second_backward(self._cached_grad, tangent, retain_graph=True)
        total = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        for x, y in self.batches:
            grads = self._chunk_grad(x, y, create_graph=True)
            total.add_(self._second_backward(grads, tangent, retain_graph=False), alpha=self._weight(x))
        return total

    __matmul__ = matvec


def hvp(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    v: Tensor | Sequence[Tensor],
    *,
    allow_train_mode: bool = False,
) -> Tensor | list[Tensor]:
    """Hessian-vector product ``H v`` of the mean loss over ``data`` at the model's parameters.

    .. math::  H v = \\nabla^2_\\theta \\Big(\\tfrac{1}{N}\\sum_i \\ell(f_\\theta(x_i), y_i)\\Big) v

    Args:
        model, loss_fn, data: as for :class:`HessianOperator`.
        v: a flat vector of shape ``(num_params,)``, or a sequence of tensors shaped like the
            model's trainable parameters.

    Returns:
        ``H v`` in the same form as ``v``.

    Example (least squares, whose Hessian is ``XᵀX / n``):

    >>> import torch
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> loss = lambda out, y: 0.5 * ((out - y) ** 2).mean()
    >>> hvp(model, loss, (X, torch.zeros(2, 1, dtype=torch.float64)), torch.tensor([1.0, 0.0], dtype=torch.float64))
    tensor([1., 1.], dtype=torch.float64)
    """
    op = HessianOperator(model, loss_fn, data, allow_train_mode=allow_train_mode)
    if isinstance(v, Tensor):
        return op.matvec(v)
    hv = op.matvec(op.flatten(list(v)))
    return list(op.unflatten(hv).values())
