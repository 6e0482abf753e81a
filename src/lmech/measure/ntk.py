"""The empirical neural tangent kernel and two statistics of it.

.. math::

    \\Theta_{kj}(x, x') = \\sum_p \\frac{\\partial f_k(x)}{\\partial \\theta_p}\\,\\frac{\\partial f_j(x')}{\\partial \\theta_p}
    = J(x) J(x')^\\top

(Jacot, Gabriel, Hongler 2018, *Neural Tangent Kernel*, arXiv:1806.07572, §4). Per-example
Jacobians come from ``torch.func`` (``vmap`` of ``jacrev`` over ``functional_call``) one chunk of
inputs at a time, so memory holds at most ``2 × chunk_size × num_outputs × num_params`` Jacobian
entries whatever the number of inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from ..errors import ConfigError
from .hessian import check_eval_mode

OUTPUTS = ("trace", "full")


def _jacobians(model: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
    """Per-example Jacobians of shape ``(n, num_outputs, num_params)``."""

    def f(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return functional_call(model, (p, buffers), (xi.unsqueeze(0),)).reshape(-1)

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)
    return torch.cat([j.reshape(len(x), j.shape[1], -1) for j in jac.values()], dim=2)


def empirical_ntk(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    output: str = "trace",
    chunk_size: int = 64,
    allow_train_mode: bool = False,
) -> Tensor:
    """The empirical NTK of ``model`` at its current parameters.

    Args:
        model: called as ``model(inputs)``; outputs of shape ``(n, ...)`` are flattened per example
            to ``num_outputs`` values. The kernel is over the parameters that require grad.
        x1: inputs of shape ``(n1, ...)``.
        x2: inputs of shape ``(n2, ...)``; ``None`` means ``x1`` (the Gram matrix).
        output: ``"trace"`` sums over output dimensions, ``Θ(x, x') = Σ_k J_k(x)·J_k(x')``, shape
            ``(n1, n2)``; ``"full"`` keeps them, shape ``(n1, n2, num_outputs, num_outputs)``.
        chunk_size: inputs per Jacobian chunk (bounds memory).

    Returns:
        The kernel, in the parameters' dtype, in units of output² per parameter².

    Raises:
        ConfigError: unknown ``output``, ``chunk_size < 1``, or no trainable parameters.
        TrainModeError: dropout or BatchNorm in training mode (see :func:`check_eval_mode`).

    >>> model = torch.nn.Linear(2, 1, bias=False).double()   # f(x) = w·x, so Θ(x, x') = x·x'
    >>> x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    >>> empirical_ntk(model, x)
    tensor([[ 5.,  1.],
            [ 1., 10.]], dtype=torch.float64)
    """
    if output not in OUTPUTS:
        raise ConfigError(f"output must be one of {OUTPUTS}, got {output!r}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    check_eval_mode(model, allow_train_mode)
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ConfigError("the model has no parameters with requires_grad=True; its NTK is zero-dimensional")
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    same = x2 is None
    x2 = x1 if x2 is None else x2
    starts1, starts2 = range(0, len(x1), chunk_size), range(0, len(x2), chunk_size)
    small_x2 = None if same or len(x2) > chunk_size else _jacobians(model, params, buffers, x2)
    result = None
    for a in starts1:
        j1 = _jacobians(model, params, buffers, x1[a : a + chunk_size])
        for b in starts2:
            if same and b < a:  # the Gram matrix is symmetric: mirror the block computed already
                block = result[b : b + chunk_size, a : a + len(j1)].transpose(0, 1)
                block = block if output == "trace" else block.transpose(2, 3)
                result[a : a + len(j1), b : b + chunk_size] = block
                continue
            j2 = j1 if same and b == a else small_x2 if small_x2 is not None else (
                _jacobians(model, params, buffers, x2[b : b + chunk_size]))
            block = torch.einsum("akp,bkp->ab" if output == "trace" else "akp,bjp->abkj", j1, j2)
            if result is None:
                shape = (len(x1), len(x2)) + (() if output == "trace" else block.shape[2:])
                result = torch.empty(shape, dtype=block.dtype, device=block.device)
            result[a : a + len(j1), b : b + len(j2)] = block
    assert result is not None
    return result


def kernel_target_alignment(kernel: Tensor, targets: Tensor, *, centered: bool = True) -> float:
    """Alignment between a kernel and the targets' kernel ``YYᵀ`` (Cristianini et al. 2002;
    centred as in Cortes, Mohri, Rostamizadeh 2012, arXiv:1203.0550, Def. 4):

    .. math::  A(K, Y) = \\frac{\\langle K_c, (YY^\\top)_c \\rangle_F}{\\|K_c\\|_F\\,\\|(YY^\\top)_c\\|_F},
               \\quad K_c = HKH,\\ H = I - \\tfrac1n \\mathbf{1}\\mathbf{1}^\\top

    Args:
        kernel: shape ``(n, n)``.
        targets: shape ``(n,)`` or ``(n, k)``.

    Returns:
        A number in [−1, 1]; 1 when ``K ∝ YYᵀ``.

    Raises:
        ConfigError: mismatched or non-square shapes, or a kernel or target kernel that is zero.
    """
    n = kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != n or len(targets) != n:
        raise ConfigError(f"kernel must be (n, n) and targets (n, ...); got {tuple(kernel.shape)} and {tuple(targets.shape)}")
    y = targets.reshape(n, -1).to(kernel.dtype)
    ky = y @ y.T
    if centered:
        h = torch.eye(n, dtype=kernel.dtype) - 1.0 / n
        kernel, ky = h @ kernel @ h, h @ ky @ h
    denom = kernel.norm() * ky.norm()
    if float(denom) == 0.0:
        raise ConfigError("the kernel or the targets' kernel is zero (after centring); alignment is undefined")
    return float((kernel * ky).sum() / denom)


def relative_kernel_change(kernel_0: Tensor, kernel_t: Tensor) -> float:
    """``‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F``, the movement of the NTK between two checkpoints (small in the lazy
    regime; Chizat, Oyallon, Bach 2019, arXiv:1812.07956).

    Raises:
        ConfigError: different shapes, or ``Θ_0 = 0``.
    """
    if kernel_0.shape != kernel_t.shape:
        raise ConfigError(f"kernels must have the same shape, got {tuple(kernel_0.shape)} and {tuple(kernel_t.shape)}")
    norm = kernel_0.norm()
    if float(norm) == 0.0:
        raise ConfigError("the initial kernel is zero; the relative change is undefined")
    return float((kernel_t - kernel_0).norm() / norm)
