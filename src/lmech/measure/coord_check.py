"""Coordinate checks: how big each layer's activations and updates are, step by step, across widths.

For every layer ``l`` with parameters and every step ``t = 0, …, T`` (before the ``t``-th update), on a
fixed batch ``X``:

.. math::

    \\text{activation}_l(t) = \\operatorname{mean} |h_l(t)|, \\qquad
    \\text{update}_l(t) = \\operatorname{mean} |\\alpha_l (W_l(t) - W_l(0))\\, x_l(t)|,

where ``h_l`` is the layer's output, ``x_l`` its input, ``α_l`` its multiplier (``weight_multiplier``,
1 for a plain layer) and the mean runs over every coordinate (examples × positions × features). In a
parametrisation with a well-defined feature-learning limit (muP) both are ``Θ(1)`` in width at every
``t``; in SP with a fixed learning rate the updates grow like a power of width, which
:func:`width_slopes` fits (Yang et al. 2022, *Tensor Programs V*, arXiv:2203.03466, check a muP
implementation this way; so does the mup package's ``mup/coord_check.py``).

:func:`spectral_norms` gives the spectral view (Yang, Simon, Bernstein 2023, arXiv:2310.17813,
Condition 1): ``‖αW_l‖₂`` and ``‖α ΔW_l‖₂`` should both scale like ``√(fan_out/fan_in)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..models.parametrization import param_groups, parametrization_of
from ..train.records import Records

__all__ = ["coord_check", "spectral_norms", "width_slopes"]

OPTIMIZERS = ("sgd", "adam")


def coord_check(
    make_model: Callable[[int, int], nn.Module],
    widths: Sequence[int],
    data: tuple[Tensor, Tensor],
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    lr: float,
    optimizer: str = "adam",
    steps: int = 4,
    seeds: Iterable[int] = (0,),
    spectral: bool | Iterable[int] = False,
) -> Records:
    """Train one model per (width, seed) for ``steps`` full-batch steps and record coordinate sizes.

    Args:
        make_model: ``make_model(width, seed)`` builds the model at ``width``; if it is parametrised
            (:func:`lmech.models.parametrize`) the optimizer gets :func:`lmech.models.param_groups`,
            otherwise one learning rate for every parameter (SP as PyTorch builds it).
        widths: the widths, each ≥ 1.
        data: ``(inputs, targets)``, used whole at every step; shapes ``(n, ...)``.
        loss_fn: ``loss_fn(model(inputs), targets)``, a scalar (a mean over examples).
        lr: the base learning rate ``η`` (> 0).
        optimizer: ``"sgd"`` (plain gradient descent) or ``"adam"`` (``torch.optim.Adam`` defaults).
        steps: number of updates ``T`` (≥ 1); rows are recorded at steps ``0, …, T``.
        seeds: the seeds passed to ``make_model``.
        spectral: also record :func:`spectral_norms` (an SVD per layer and step; slower): ``True`` at
            every step, or an iterable of the steps to record them at.

    Returns:
        :class:`~lmech.train.Records` with index columns ``width``, ``seed``, ``layer`` (qualified module
        name) and observables ``"activation"``, ``"update"`` (layers with a weight matrix: linear and
        embedding layers), ``"loss"`` (``layer`` = ``""``) and, if ``spectral``, ``"spectral_norm"`` and
        ``"update_spectral_norm"``. Training of a (width, seed) stops after a non-finite loss.

    Raises:
        ConfigError: an empty ``widths`` or ``seeds``, a width below 1, ``lr`` not finite and > 0,
            ``steps < 1`` or an unknown optimizer.
    """
    widths, seeds = list(widths), list(seeds)
    if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ConfigError(f"widths must be a non-empty list of integers >= 1, got {widths}")
    if not seeds:
        raise ConfigError("seeds must not be empty")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be finite and > 0, got {lr!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    records = Records()
    for width in widths:
        for seed in seeds:
            model = make_model(width, seed)
            records.extend(_run(model, data, loss_fn, lr, optimizer, steps, spectral, width=width, seed=seed))
    return records


def _run(model: nn.Module, data: tuple[Tensor, Tensor], loss_fn: Callable[[Tensor, Tensor], Tensor], lr: float,
         optimizer: str, steps: int, spectral: bool | Iterable[int], **index: int) -> Records:
    inputs, targets = data
    spectral_steps = set(range(steps + 1)) if spectral is True else set(spectral or ())
    if parametrization_of(model) is not None:
        groups = param_groups(model, lr, optimizer)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    opt = torch.optim.Adam(groups, lr=lr) if optimizer == "adam" else torch.optim.SGD(groups, lr=lr)
    layers = {name: m for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    initial = {name: m.weight.detach().clone() for name, m in layers.items() if _is_matrix_layer(m)}
    seen: dict[str, dict[str, list[float]]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: tuple, output: object) -> None:
            if not isinstance(output, Tensor):
                return
            sizes = seen.setdefault(name, {"activation": [], "update": []})
            sizes["activation"].append(_mean_abs(output))
            if name in initial:
                delta = _multiplier(module) * (module.weight.detach() - initial[name])
                moved = F.embedding(args[0], delta) if isinstance(module, nn.Embedding) else F.linear(args[0].detach(), delta)
                sizes["update"].append(_mean_abs(moved))

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    records = Records()
    try:
        for step in range(steps + 1):
            seen.clear()
            loss = loss_fn(model(inputs), targets)
            records.add(step, "loss", float(loss.detach()), layer="", **index)
            for name, sizes in seen.items():
                for observable, values in sizes.items():
                    if values:
                        records.add(step, observable, float(np.mean(values)), layer=name, **index)
            if step in spectral_steps:
                for name, norms in spectral_norms(model, initial).items():
                    for observable in ("spectral_norm", "update_spectral_norm"):
                        records.add(step, observable, norms[observable], layer=name, **index)
            if step == steps or not math.isfinite(float(loss.detach())):
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        for handle in handles:
            handle.remove()
    return records


def spectral_norms(model: nn.Module, initial: Mapping[str, Tensor] | None = None) -> dict[str, dict[str, float]]:
    """Spectral norms of every linear or embedding layer's effective weight, and of its change.

    .. math::  \\|\\alpha W_l\\|_2, \\qquad \\|\\alpha (W_l - W_l^{(0)})\\|_2, \\qquad \\sqrt{\\text{fan\\_out}/\\text{fan\\_in}}

    (``torch.linalg.matrix_norm(ord=2)``; ``α`` the layer's ``weight_multiplier``). An embedding table
    of shape (vocab, d) is the linear map from one-hot tokens, fan_in = vocab, fan_out = d.

    Args:
        model: the model.
        initial: the weights at the reference time by qualified module name, of the same shapes (e.g.
            ``{name: layer.weight.detach().clone()}``); ``None`` reports no update norms.

    Returns:
        ``{layer: {"spectral_norm", "update_spectral_norm" (NaN without ``initial``), "fan_in",
        "fan_out", "spectral_scale" = √(fan_out/fan_in)}}``, the target scale of both norms under the
        spectral condition (Yang, Simon, Bernstein 2023, arXiv:2310.17813, Condition 1).

    >>> layer = nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]))
    >>> spectral_norms(nn.Sequential(layer))["0"]["spectral_norm"]
    4.0
    """
    out = {}
    for name, module in model.named_modules():
        if not _is_matrix_layer(module):
            continue
        alpha = _multiplier(module)
        weight = module.weight.detach()
        fan_out, fan_in = weight.shape if isinstance(module, nn.Linear) else weight.shape[::-1]
        update = float("nan")
        if initial is not None and name in initial:
            update = float(torch.linalg.matrix_norm(alpha * (weight - initial[name]), ord=2))
        out[name] = {
            "spectral_norm": float(torch.linalg.matrix_norm(alpha * weight, ord=2)),
            "update_spectral_norm": update,
            "fan_in": float(fan_in),
            "fan_out": float(fan_out),
            "spectral_scale": math.sqrt(fan_out / fan_in),
        }
    return out


def width_slopes(records: Records, observable: str = "update", *, step: int | None = None) -> dict[str, float]:
    """Least-squares slope of ``log(value)`` against ``log(width)`` per layer, after averaging the
    seeds at each width: the exponent ``k`` in ``value ∝ width^k`` (0 for width-independent sizes).

    Args:
        records: rows from :func:`coord_check`.
        observable: which observable (``"activation"``, ``"update"``, ...).
        step: the step to read; ``None`` takes the last step recorded.

    Returns:
        ``{layer: slope}`` for layers with at least two widths of finite, positive values.

    >>> r = Records()
    >>> for w in (64, 256):
    ...     r.add(3, "update", 0.01 * w ** 0.5, width=w, seed=0, layer="2")
    >>> round(width_slopes(r)["2"], 6)
    0.5
    """
    rows = [row for row in records.rows if row["observable"] == observable]
    if step is None and rows:
        step = max(row["step"] for row in rows)
    by_layer: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        if row["step"] == step:
            by_layer.setdefault(row["layer"], {}).setdefault(row["width"], []).append(row["value"])
    slopes = {}
    for layer, per_width in by_layer.items():
        points = [(math.log(w), math.log(np.mean(v))) for w, v in sorted(per_width.items())
                  if np.all(np.isfinite(v)) and np.mean(v) > 0]
        if len(points) >= 2:
            x, y = np.array(points).T
            slopes[layer] = float(np.polyfit(x, y, 1)[0])
    return slopes


def _is_matrix_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Embedding)) and module.weight.ndim == 2


def _multiplier(module: nn.Module) -> float:
    return float(getattr(module, "weight_multiplier", 1.0))


def _mean_abs(t: Tensor) -> float:
    return float(t.detach().abs().mean(dtype=torch.float64))
