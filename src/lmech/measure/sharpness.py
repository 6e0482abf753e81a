"""Top Hessian eigenvalues and the sharpness of a model's loss.

The *sharpness* is the largest eigenvalue of the Hessian of the training loss,
``λ_max(∇²L(θ))``; under gradient descent with step ``lr`` it is stable only while
``λ_max < 2 / lr`` (Cohen et al. 2021, *Gradient Descent on Neural Networks Typically Occurs at
the Edge of Stability*, arXiv:2103.00065, §2).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ..errors import ConfigError, LmechWarning
from .hessian import Data, HessianOperator, LossFn
from .lanczos import EigenResult, lanczos, power_iteration

METHODS = ("lanczos", "power")
FLOAT32_TOL = 1e-5  # below this, float32 rounding in the products dominates the residual


def hessian_eigenpairs(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    k: int = 1,
    *,
    method: str = "lanczos",
    num_matvecs: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    v0: Tensor | None = None,
    allow_train_mode: bool = False,
) -> EigenResult:
    """Like :func:`hessian_eigenvalues`, but returns the :class:`~lmech.measure.lanczos.EigenResult`
    with the eigenvectors (shape ``(k, num_params)``, flattened in ``model.named_parameters()``
    order), the number of products spent and whether the tolerance was met. ``v0`` warm-starts the
    solver (Lanczos only)."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if not tol > 0:
        raise ConfigError(f"tol must be > 0, got {tol}")
    op = HessianOperator(model, loss_fn, data, allow_train_mode=allow_train_mode)
    if op.dtype in (torch.float32, torch.float16, torch.bfloat16) and tol < FLOAT32_TOL:
        warnings.warn(
            f"tol={tol:g} is below what {op.dtype} products can resolve (about {FLOAT32_TOL:g}); "
            "the solver may spend all of num_matvecs; use model.double() or a larger tol",
            LmechWarning, stacklevel=2,
        )
    kwargs = dict(num_matvecs=num_matvecs, tol=tol, seed=seed, dtype=op.dtype, device=op.device,
                  return_eigenvectors=True)
    with torch.no_grad():
        if method == "lanczos":
            result = lanczos(op.matvec, op.num_params, k, v0=v0, **kwargs)
        else:
            result = power_iteration(op.matvec, op.num_params, k, **kwargs)
    if not result.converged:
        warnings.warn(
            f"{method} did not reach tol={tol:g} within num_matvecs={num_matvecs}; "
            "the eigenvalues may be inaccurate; raise num_matvecs or tol",
            LmechWarning, stacklevel=2,
        )
    return result


def hessian_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    k: int = 1,
    *,
    method: str = "lanczos",
    num_matvecs: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    allow_train_mode: bool = False,
) -> Tensor:
    """The ``k`` largest (algebraic) eigenvalues of the Hessian of the mean loss over ``data``.

    .. math::  \\lambda_1 \\ge \\dots \\ge \\lambda_k \\text{ of }
               \\nabla^2_\\theta \\tfrac1N\\textstyle\\sum_i \\ell(f_\\theta(x_i), y_i)

    Args:
        model: the network; the Hessian is over its parameters that require grad.
        loss_fn: ``loss_fn(outputs, targets)`` → mean loss over the batch (scalar).
        data: an ``(inputs, targets)`` pair or a re-iterable of pairs; the Hessian is that of the
            mean loss over all examples, accumulated chunk by chunk.
        k: how many eigenvalues.
        method: ``"lanczos"`` (default; largest algebraic) or ``"power"`` (PyHessian's power
            iteration with deflation; largest magnitude).
        num_matvecs: the most Hessian-vector products to spend.
        tol: Lanczos: relative residual bound per Ritz pair; power: relative change per step.
        seed: seeds the random start vector (the result is deterministic given the seed).
        allow_train_mode: see :func:`lmech.measure.hessian.check_eval_mode`.

    Returns:
        Tensor of shape ``(k,)``, descending, float64, in the loss's units per parameter².

    Raises:
        ConfigError: unknown ``method``, or ``k``/``num_matvecs``/``tol`` out of range.
        TrainModeError: dropout or BatchNorm in training mode.
        NonFiniteError: a Hessian-vector product is NaN or infinite (non-finite parameters or loss).
        LmechWarning (warning): the tolerance was not met within ``num_matvecs``, or is below what
            float32 can resolve.
    """
    return hessian_eigenpairs(
        model, loss_fn, data, k, method=method, num_matvecs=num_matvecs, tol=tol, seed=seed,
        allow_train_mode=allow_train_mode,
    ).eigenvalues


def sharpness(model: nn.Module, loss_fn: LossFn, data: Data, **kwargs) -> float:
    """The top Hessian eigenvalue ``λ_max`` of the mean loss; keyword arguments as for
    :func:`hessian_eigenvalues`.

    >>> import torch
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> loss = lambda out, y: 0.5 * ((out - y) ** 2).mean()
    >>> round(sharpness(model, loss, (X, torch.zeros(2, 1, dtype=torch.float64))), 6)  # λ_max(XᵀX/2)
    2.618034
    """
    return float(hessian_eigenvalues(model, loss_fn, data, 1, **kwargs)[0])
