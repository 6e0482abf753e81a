"""The gradient noise scale: how large a batch is worth using.

McCandlish, Kaplan, Amodei et al. (2018, *An Empirical Model of Large-Batch Training*, arXiv:1812.06162)
model one SGD step on a batch of ``B`` examples drawn from the data. With ``G`` the gradient of the mean
loss, ``Σ`` the covariance of one example's gradient and ``H`` the Hessian, the best step improves the loss
by ``ΔL_max / (1 + B_noise/B)`` (their eq. (2.7)–(2.8)), with

.. math::

    B_{noise} = \\frac{\\operatorname{tr}(H\\Sigma)}{G^\\top H G}, \\qquad
    B_{simple} = \\frac{\\operatorname{tr}(\\Sigma)}{|G|^2}
    \\quad\\text{(} H \\propto I\\text{; their eq. (2.9))}.

Batches much smaller than the noise scale waste nothing (steps scale linearly with ``B``); batches much
larger waste examples. Here the data are a finite set of ``N`` examples and batches are drawn from it
uniformly *with replacement*, so ``G = (1/N) Σ_i g_i`` and ``Σ = (1/N) Σ_i (g_i − G)(g_i − G)ᵀ`` exactly,
and a batch mean ``G_B`` has ``E|G_B|² = |G|² + tr(Σ)/B``.

:func:`gradient_noise_scale` computes both from per-example gradients (``torch.func.vmap`` of
``torch.func.grad``), exactly for ``B_simple`` and with Hessian-vector products for ``B_noise``;
:func:`two_batch_noise_scale` is McCandlish et al.'s estimator from gradient norms at two batch sizes
(their Appendix A), which needs no per-example gradients and suits large models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from ..config import require
from ..errors import ConfigError
from .hessian import HessianOperator, LossFn, check_eval_mode

__all__ = ["NoiseScale", "TwoBatchEstimate", "gradient_noise_scale", "per_example_gradients",
           "two_batch_estimate", "two_batch_noise_scale"]


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    require(bool(params), "the model has no parameters with requires_grad=True; nothing to differentiate")
    return params


def _check_pair(inputs: Tensor, targets: Tensor) -> None:
    require(isinstance(inputs, Tensor) and isinstance(targets, Tensor),
            f"inputs and targets must be tensors, got {type(inputs).__name__} and {type(targets).__name__}")
    require(len(inputs) == len(targets) and len(inputs) >= 1,
            f"inputs and targets must hold the same number (>= 1) of examples, got {len(inputs)} and {len(targets)}")


def per_example_gradients(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                          chunk_size: int | None = 256, allow_train_mode: bool = False) -> Tensor:
    """The gradient of each example's loss, ``g_i = ∇_θ ℓ(f_θ(x_i), y_i)``, flattened.

    One ``torch.func.vmap`` of ``torch.func.grad`` over the examples (``chunk_size`` at a time), with
    ``loss_fn`` called on a batch of one, so ``loss_fn(outputs, targets)`` is the same mean-over-batch loss
    the rest of :mod:`lmech.measure` takes.

    Args:
        model: any ``nn.Module`` whose forward treats examples independently (no BatchNorm in training mode).
        loss_fn: ``loss_fn(outputs, targets)`` → the mean loss over the batch, a scalar.
        inputs: shape ``(N, ...)``; targets: shape ``(N, ...)``.
        chunk_size: examples per vectorised chunk (``None``: all at once).
        allow_train_mode: allow dropout/BatchNorm in training mode.

    Returns:
        Shape ``(N, P)`` with ``P`` the number of trainable parameters, in the order of
        ``model.named_parameters()``; the parameters' dtype.

    Raises:
        ConfigError: for mismatched or empty inputs and targets, a model without trainable parameters, or a
            model or loss that ``vmap`` cannot batch (``.item()``, value-dependent branches, ``F.one_hot``).
        TrainModeError: for dropout or BatchNorm in training mode (unless allowed).
    """
    check_eval_mode(model, allow_train_mode)
    _check_pair(inputs, targets)
    params = _trainable(model)
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def one(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (p, buffers), (x.unsqueeze(0),)), y.unsqueeze(0))

    try:
        grads = vmap(grad(one), in_dims=(None, 0, 0), chunk_size=chunk_size)(params, inputs, targets)
    except RuntimeError as exc:
        if "vmap" not in str(exc):
            raise
        raise ConfigError(
            "the model or loss_fn cannot be vectorised over examples with torch.func.vmap (it calls .item(), "
            "branches on values, or uses an op such as F.one_hot that vmap does not batch); rewrite it without "
            f"them, e.g. pass one-hot targets instead of class indices ({str(exc).splitlines()[0][:120]})") from exc
    return torch.cat([grads[n].reshape(len(inputs), -1) for n in params], dim=1)


@dataclass(frozen=True)
class NoiseScale:
    """The noise scales of McCandlish et al. (2018) at one point in training.

    Attributes:
        b_simple: ``tr(Σ)/|G|²`` in examples.
        b_noise: ``tr(HΣ)/(GᵀHG)`` in examples; NaN when not computed or when ``GᵀHG ≤ 0`` (the loss is not
            convex along the gradient, where the model of one step breaks down).
        grad_sq_norm: ``|G|²``; trace_cov: ``tr(Σ)``.
        trace_h_cov: ``tr(HΣ)`` (NaN when not computed); g_h_g: ``GᵀHG`` (NaN when not computed).
        num_examples: ``N``; num_probes: Rademacher probes behind ``tr(HΣ)`` (0: exact).
    """

    b_simple: float
    b_noise: float
    grad_sq_norm: float
    trace_cov: float
    trace_h_cov: float
    g_h_g: float
    num_examples: int
    num_probes: int


def gradient_noise_scale(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                         hessian: bool = False, num_probes: int | None = 64, seed: int = 0,
                         chunk_size: int | None = 256, allow_train_mode: bool = False) -> NoiseScale:
    """``B_simple`` exactly and, with ``hessian=True``, ``B_noise``, over the ``N`` examples given.

    .. math::

        G = \\frac1N \\sum_i g_i, \\quad
        \\operatorname{tr}\\Sigma = \\frac1N \\sum_i |g_i - G|^2, \\quad
        \\operatorname{tr}(H\\Sigma) = \\frac1N \\sum_i (g_i - G)^\\top H (g_i - G)
        = \\mathbb{E}_\\varepsilon\\, z^\\top H z, \\quad z = \\tfrac{1}{\\sqrt N}\\sum_i \\varepsilon_i (g_i - G),

    with ``H`` the Hessian of the mean loss over the same examples (:class:`HessianOperator`) and
    ``ε_i = ±1`` independent Rademacher signs: ``E[z zᵀ] = Σ``, so each probe costs one Hessian-vector
    product and the estimate of ``tr(HΣ)`` is unbiased. ``num_probes=None`` computes it exactly with one
    product per example.

    Args:
        model, loss_fn: as for :func:`per_example_gradients`.
        inputs, targets: the ``N`` examples batches are drawn from, shapes ``(N, ...)``.
        hessian: also compute ``B_noise`` (Hessian-vector products).
        num_probes: Rademacher probes for ``tr(HΣ)`` (``None``: exact, ``N`` products).
        seed: seeds the probes (a private generator).
        chunk_size: examples per vectorised chunk for the per-example gradients.
        allow_train_mode: allow dropout/BatchNorm in training mode.

    Returns:
        A :class:`NoiseScale`.

    Raises:
        ConfigError: fewer than 2 examples, ``num_probes < 1``, a zero gradient (``|G| = 0``: at a critical
            point the noise scale is infinite), or the errors of :func:`per_example_gradients`.

    Source:
        McCandlish, Kaplan, Amodei et al. (2018), arXiv:1812.06162, §2.2, eqs. (2.7)–(2.9).
    """
    _check_pair(inputs, targets)
    require(len(inputs) >= 2, f"the noise scale needs at least 2 examples for a covariance, got {len(inputs)}")
    require(num_probes is None or (isinstance(num_probes, int) and num_probes >= 1),
            f"num_probes must be an integer >= 1 or None (exact), got {num_probes!r}")
    g = per_example_gradients(model, loss_fn, inputs, targets, chunk_size=chunk_size, allow_train_mode=allow_train_mode)
    if not bool(torch.isfinite(g).all()):
        row = int((~torch.isfinite(g)).any(dim=1).nonzero()[0])
        raise ConfigError(f"example {row}'s gradient is not finite (NaN or infinite inputs, targets or parameters?); "
                          "drop that example or fix the model")
    n = len(g)
    mean = g.mean(dim=0)
    centred = g - mean
    grad_sq = float(mean @ mean)
    trace = float((centred * centred).sum() / n)
    require(grad_sq > 0, "the mean gradient is zero, so the noise scale is infinite; measure away from a critical point")
    trace_h, ghg, probes = math.nan, math.nan, 0
    if hessian:
        op = HessianOperator(model, loss_fn, (inputs, targets), allow_train_mode=allow_train_mode)
        ghg = float(mean @ op.matvec(mean))
        if num_probes is None:
            trace_h = math.fsum(float(c @ op.matvec(c)) for c in centred) / n
        else:
            gen = torch.Generator(device=g.device).manual_seed(seed)
            signs = torch.randint(0, 2, (num_probes, n), generator=gen, device=g.device).to(g.dtype) * 2 - 1
            z = signs @ centred / math.sqrt(n)
            trace_h = math.fsum(float(v @ op.matvec(v)) for v in z) / num_probes
            probes = num_probes
    b_noise = trace_h / ghg if hessian and ghg > 0 else math.nan
    return NoiseScale(b_simple=trace / grad_sq, b_noise=b_noise, grad_sq_norm=grad_sq, trace_cov=trace,
                      trace_h_cov=trace_h, g_h_g=ghg, num_examples=n, num_probes=probes)


@dataclass(frozen=True)
class TwoBatchEstimate:
    """Two-batch estimates of ``|G|²`` and ``tr(Σ)`` (each unbiased), per pair of batches, and their ratio.

    Attributes:
        grad_sq_norm, trace_cov: one estimate per pair, shape ``(pairs,)``.
        b_simple: ``mean(trace_cov) / mean(grad_sq_norm)``, the ratio of the averages (McCandlish et al.
            average numerator and denominator separately; the ratio of one pair is biased and noisy).
    """

    grad_sq_norm: Tensor
    trace_cov: Tensor
    b_simple: float


def two_batch_estimate(small_sq_norm, big_sq_norm, b_small: int, b_big: int) -> TwoBatchEstimate:
    """McCandlish et al.'s unbiased estimates from the squared norms of batch-mean gradients at two sizes.

    .. math::

        |\\mathcal G|^2 = \\frac{B_{big}|G_{B_{big}}|^2 - B_{small}|G_{B_{small}}|^2}{B_{big} - B_{small}}, \\qquad
        \\mathcal S = \\frac{|G_{B_{small}}|^2 - |G_{B_{big}}|^2}{1/B_{small} - 1/B_{big}},

    unbiased for ``|G|²`` and ``tr(Σ)`` because ``E|G_B|² = |G|² + tr(Σ)/B``.

    Args:
        small_sq_norm, big_sq_norm: ``|G_B|²`` at ``B_small`` and ``B_big``, shape ``(pairs,)``.
        b_small, b_big: the batch sizes, ``1 ≤ b_small < b_big``.

    Returns:
        A :class:`TwoBatchEstimate`.

    Raises:
        ConfigError: for batch sizes out of order or arrays of different lengths.

    Source:
        McCandlish, Kaplan, Amodei et al. (2018), arXiv:1812.06162, Appendix A, eqs. (A.1)–(A.2).

    >>> est = two_batch_estimate([3.0], [1.5], 1, 4)   # |G|² + tr Σ = 3, |G|² + tr Σ/4 = 1.5
    >>> float(est.grad_sq_norm[0]), float(est.trace_cov[0]), est.b_simple
    (1.0, 2.0, 2.0)
    """
    small = torch.as_tensor(small_sq_norm, dtype=torch.float64).reshape(-1)
    big = torch.as_tensor(big_sq_norm, dtype=torch.float64).reshape(-1)
    require(isinstance(b_small, int) and isinstance(b_big, int) and 1 <= b_small < b_big,
            f"need integer batch sizes 1 <= b_small < b_big, got b_small={b_small!r}, b_big={b_big!r}")
    require(small.shape == big.shape and small.numel() >= 1,
            f"small_sq_norm and big_sq_norm must have the same length >= 1, got {small.numel()} and {big.numel()}")
    g2 = (b_big * big - b_small * small) / (b_big - b_small)
    tr = (small - big) / (1.0 / b_small - 1.0 / b_big)
    mean_g2 = float(g2.mean())
    return TwoBatchEstimate(g2, tr, float(tr.mean()) / mean_g2 if mean_g2 != 0 else math.nan)


def two_batch_noise_scale(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *, b_small: int,
                          b_big: int, num_pairs: int = 32, seed: int = 0,
                          sample: Callable[[torch.Generator, int], Tensor] | None = None,
                          allow_train_mode: bool = False) -> TwoBatchEstimate:
    """``B_simple`` from gradients of batch means only: ``num_pairs`` independent pairs of batches of
    ``b_small`` and ``b_big`` examples drawn uniformly with replacement from ``(inputs, targets)``.

    Each batch costs one ordinary backward pass of its mean loss; no per-example gradients are formed,
    which is what makes the estimator usable on large models (in data-parallel training the small batch is
    one worker's and the big one the all-reduced mean).

    Args:
        model, loss_fn: as for :func:`per_example_gradients`.
        inputs, targets: the examples, shapes ``(N, ...)``.
        b_small, b_big: batch sizes, ``1 ≤ b_small < b_big``.
        num_pairs: independent pairs of batches.
        seed: seeds the draws (a private generator).
        sample: ``sample(generator, size)`` → indices of shape ``(size,)``; default uniform with replacement.
        allow_train_mode: allow dropout/BatchNorm in training mode.

    Returns:
        A :class:`TwoBatchEstimate`.

    Raises:
        ConfigError: as :func:`two_batch_estimate`, or ``num_pairs < 1``.
    """
    check_eval_mode(model, allow_train_mode)
    _check_pair(inputs, targets)
    require(isinstance(num_pairs, int) and num_pairs >= 1, f"num_pairs must be an integer >= 1, got {num_pairs!r}")
    two_batch_estimate([0.0], [0.0], b_small, b_big)  # validates the sizes before any work
    params = list(_trainable(model).keys())
    named = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(seed)
    draw = sample or (lambda g, size: torch.randint(0, len(inputs), (size,), generator=g))

    def sq_norm(size: int) -> float:
        idx = draw(gen, size)
        loss = loss_fn(model(inputs[idx]), targets[idx])
        grads = torch.autograd.grad(loss, [named[n] for n in params], allow_unused=True)
        value = math.fsum(float((g * g).sum()) for g in grads if g is not None)
        if not math.isfinite(value):
            raise ConfigError(f"a batch of {size} gave a non-finite gradient (NaN or infinite inputs, targets or "
                              "parameters?); fix the data or the model")
        return value

    small, big = [], []
    for _ in range(num_pairs):
        small.append(sq_norm(b_small))
        big.append(sq_norm(b_big))
    return two_batch_estimate(small, big, b_small, b_big)
