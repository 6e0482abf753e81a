"""The empirical neural tangent kernel and two statistics of it.

.. math::

    \\Theta_{kj}(x, x') = \\sum_p \\frac{\\partial f_k(x)}{\\partial \\theta_p}\\,\\frac{\\partial f_j(x')}{\\partial \\theta_p}
    = J(x) J(x')^\\top

(Jacot, Gabriel, Hongler 2018, *Neural Tangent Kernel*, arXiv:1806.07572, §4). Two methods:

* ``"structured"`` — for networks whose trainable parameters all sit in linear layers
  ``z = c_w W a + c_b b`` (``nn.Linear``, or a subclass declaring ``weight_multiplier`` ``c_w`` and
  ``bias_multiplier`` ``c_b``) applied to 2-D activations, the Jacobian never needs to exist: with
  ``a_l(x)`` the layer's input and ``δ_{l,k}(x) = ∂f_k(x)/∂z_l(x)`` its backpropagated signal,

  .. math::  \\Theta_{kj}(x, x') = \\sum_l \\big(c_w^2\\, a_l(x)\\cdot a_l(x') + c_b^2\\big)\\,
             \\delta_{l,k}(x)\\cdot\\delta_{l,j}(x'),

  which costs one forward and ``num_outputs`` backward passes per chunk plus small matrix
  products, and memory ``O(n · num_outputs · Σ_l width_l)`` instead of ``O(n · num_outputs ·
  num_params)`` (the "structured derivatives" of Novak, Sohl-Dickstein, Schoenholz 2022, *Fast
  Finite Width Neural Tangent Kernel*, arXiv:2206.08720, §4). It assumes that examples do not
  interact inside the model (true in eval mode for MLPs; not for batch statistics).
* ``"jacobian"`` — any model: per-example Jacobians from ``torch.func`` (``vmap`` of ``jacrev``
  over ``functional_call``) one chunk of inputs at a time, so memory holds at most
  ``2 × chunk_size × num_outputs × num_params`` Jacobian entries whatever the number of inputs.

``method="auto"`` (the default) takes the structured path whenever the model qualifies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from ..errors import ConfigError
from .hessian import check_eval_mode

OUTPUTS = ("trace", "full")
METHODS = ("auto", "structured", "jacobian")


def _multipliers(module: nn.Module) -> tuple[float, float] | None:
    """``(c_w, c_b)`` of a linear layer the structured path understands, else ``None``."""
    if type(module) is nn.Linear:
        return 1.0, 1.0
    if isinstance(module, nn.Linear) and hasattr(module, "weight_multiplier") and hasattr(module, "bias_multiplier"):
        return float(module.weight_multiplier), float(module.bias_multiplier)
    return None


def _structured_layers(model: nn.Module) -> tuple[list[nn.Linear], str]:
    """The linear layers holding every trainable parameter, or ``([], reason)`` when some do not."""
    layers = []
    for name, module in model.named_modules():
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if _multipliers(module) is None:
            return [], f"parameter {name}.{own[0][0]} is not in an nn.Linear (or one declaring its multipliers)"
        extra = [n for n, _ in own if n not in ("weight", "bias")]
        if extra:
            return [], f"parameter {name}.{extra[0]} is neither a linear layer's weight nor its bias"
        layers.append(module)
    return layers, ""


def _linear_features(model: nn.Module, layers: list[nn.Linear], x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Per layer: the input ``a_l`` of shape ``(n, in_l)`` and ``δ_l`` of shape ``(K, n, out_l)``.

    A layer the forward pass never calls contributes zeros (whether that is right, because it is
    unused, or wrong, because its weights are used some other way, :func:`_verify` decides).

    Raises:
        ConfigError: a layer that sees a non-2-D input or runs more than once per forward pass.
    """
    seen: dict[int, tuple[Tensor, Tensor]] = {}
    problems: list[str] = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        if id(module) in seen:
            problems.append(f"{type(module).__name__} runs more than once per forward pass (shared weights)")
        elif inputs[0].ndim != 2:
            problems.append(f"{type(module).__name__} sees an input of shape {tuple(inputs[0].shape)}, not (n, features)")
        seen[id(module)] = (inputs[0].detach().clone(), output)
        return output.clone()  # later in-place ops (ReLU(inplace=True)) must not overwrite the z we differentiate by

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with torch.enable_grad():
            out = model(x).reshape(len(x), -1)
    finally:
        for h in handles:
            h.remove()
    if problems:
        raise ConfigError(f"the structured NTK does not apply: {problems[0]}; use method='jacobian'")
    ran = [layer for layer in layers if id(layer) in seen]
    zs = [seen[id(layer)][1] for layer in ran]
    deltas: dict[int, list[Tensor]] = {id(layer): [] for layer in ran}
    for k in range(out.shape[1]):
        grads = torch.autograd.grad(out[:, k].sum(), zs, retain_graph=k + 1 < out.shape[1], allow_unused=True)
        for layer, g, z in zip(ran, grads, zs):
            deltas[id(layer)].append(torch.zeros_like(z) if g is None else g)
    inputs, signals = [], []
    for layer in layers:
        if id(layer) in seen:
            inputs.append(seen[id(layer)][0])
            signals.append(torch.stack(deltas[id(layer)]))
        else:
            inputs.append(x.new_zeros(len(x), layer.in_features))
            signals.append(x.new_zeros(out.shape[1], len(x), layer.out_features))
    return inputs, signals


def _verify(model: nn.Module, layers: list[nn.Linear], x: Tensor) -> None:
    """Check the structured Gram matrix of the first two inputs against per-example gradients.

    The structured formula assumes every trainable parameter acts only through its own layer's call
    and that examples do not interact; a model that reuses a layer's weight elsewhere (tied
    weights, ``F.linear(x, self.a.weight)``) or mixes examples breaks it. Two examples' exact kernel
    costs ``2 × num_outputs`` backward passes.

    Raises:
        ConfigError: if the two disagree beyond rounding.
    """
    probe = x[:2]
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(probe)):
        with torch.enable_grad():
            out = model(probe[i : i + 1]).reshape(-1)
        grads = [torch.autograd.grad(out[k], params, retain_graph=k + 1 < len(out), allow_unused=True)
                 for k in range(len(out))]
        rows.append(torch.stack([torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                            for g, p in zip(gk, params)]) for gk in grads]))
    exact = torch.einsum("akp,bkp->ab", torch.stack(rows), torch.stack(rows))
    features = _linear_features(model, layers, probe)
    fast = _structured_block(layers, features, features, "trace")
    scale = float(exact.abs().max())
    # Both sides sum num_params products: rounding grows like √P·eps (a random walk); the defects this
    # catches are O(1) relative.
    rtol = 10 * max(math.sqrt(sum(p.numel() for p in params)), 10.0) * torch.finfo(exact.dtype).eps
    difference = float((fast - exact).abs().max())
    if not difference <= rtol * max(scale, torch.finfo(exact.dtype).tiny):
        raise ConfigError(
            f"the structured NTK disagrees with per-example gradients on the first inputs (max difference "
            f"{difference:.3g} against a kernel of size {scale:.3g}): the model uses a linear layer's weights "
            "outside that layer's own call (tied weights, F.linear) or mixes examples; use method='jacobian'"
        )


def _structured_block(layers, feats1, feats2, output: str) -> Tensor:
    """One kernel block from the per-layer features of two chunks."""
    block = None
    for layer, a1, d1, a2, d2 in zip(layers, *feats1, *feats2):
        c_w, c_b = _multipliers(layer)
        gram = torch.zeros(len(a1), len(a2), dtype=a1.dtype, device=a1.device)
        if layer.weight.requires_grad:
            gram = gram + c_w**2 * (a1 @ a2.T)
        if layer.bias is not None and layer.bias.requires_grad:
            gram = gram + c_b**2
        if output == "trace":
            term = gram * torch.einsum("kno,kmo->nm", d1, d2)
        else:
            term = gram[:, :, None, None] * torch.einsum("kno,jmo->nmkj", d1, d2)
        block = term if block is None else block + term
    return block


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
    method: str = "auto",
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
        chunk_size: inputs per chunk (bounds memory).
        method: ``"structured"`` (linear layers only, fast; see the module docstring),
            ``"jacobian"`` (any model) or ``"auto"`` (structured when the model qualifies).

    Returns:
        The kernel, in the parameters' dtype, in units of output² per parameter².

    The structured path first checks its Gram matrix on the first two inputs against per-example
    gradients; a model it does not describe (tied weights, examples that interact) falls back to
    the Jacobian path under ``"auto"`` and raises under ``"structured"``.

    Raises:
        ConfigError: unknown ``output`` or ``method``, ``chunk_size`` not an integer ``>= 1``, no
            trainable parameters, empty inputs or inputs of another floating dtype than the
            parameters, or ``method="structured"`` on a model it does not apply to (the message
            says why).
        TrainModeError: dropout or BatchNorm in training mode (see :func:`check_eval_mode`).

    >>> model = torch.nn.Linear(2, 1, bias=False).double()   # f(x) = w·x, so Θ(x, x') = x·x'
    >>> x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    >>> empirical_ntk(model, x)
    tensor([[ 5.,  1.],
            [ 1., 10.]], dtype=torch.float64)
    """
    if output not in OUTPUTS:
        raise ConfigError(f"output must be one of {OUTPUTS}, got {output!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    check_eval_mode(model, allow_train_mode)
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ConfigError("the model has no parameters with requires_grad=True; its NTK is zero-dimensional")
    dtype = next(iter(params.values())).dtype
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None and name == "x2":
            continue
        if not isinstance(x, Tensor) or x.ndim < 1 or len(x) == 0:
            raise ConfigError(f"{name} must be a tensor of shape (n, ...) with n >= 1, got "
                              f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}")
        if x.is_floating_point() and x.dtype != dtype:
            raise ConfigError(f"{name} has dtype {x.dtype} but the model's parameters are {dtype}; "
                              f"convert one, e.g. {name}.to({dtype})")
    if method != "jacobian":
        layers, reason = _structured_layers(model)
        if layers:
            try:
                return _structured_ntk(model, layers, x1, x2, output, chunk_size)
            except ConfigError:
                if method == "structured":
                    raise
        elif method == "structured":
            raise ConfigError(f"the structured NTK does not apply: {reason}; use method='jacobian'")
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


def _structured_ntk(model, layers, x1: Tensor, x2: Tensor | None, output: str, chunk_size: int) -> Tensor:
    """The structured path: per-chunk features of ``x2`` kept, ``x1`` visited a chunk at a time."""
    same = x2 is None
    _verify(model, layers, x1)
    chunks2 = [_linear_features(model, layers, c) for c in (x1 if same else x2).split(chunk_size)]
    rows = []
    for i, chunk in enumerate(x1.split(chunk_size)):
        feats1 = chunks2[i] if same else _linear_features(model, layers, chunk)
        rows.append(torch.cat([_structured_block(layers, feats1, feats2, output) for feats2 in chunks2], dim=1))
    kernel = torch.cat(rows)
    if same:  # exactly symmetric, as the Gram matrix is
        kernel = 0.5 * (kernel + (kernel.T if output == "trace" else kernel.permute(1, 0, 3, 2)))
    return kernel.detach()


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
        ConfigError: mismatched or non-square shapes, a NaN or inf entry, or a kernel or target
            kernel that is zero (after centring: constant targets or a constant kernel).
    """
    n = kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != n or len(targets) != n:
        raise ConfigError(f"kernel must be (n, n) and targets (n, ...); got {tuple(kernel.shape)} and {tuple(targets.shape)}")
    y = targets.reshape(n, -1).to(kernel.dtype)
    if not (bool(torch.isfinite(kernel).all()) and bool(torch.isfinite(y).all())):
        raise ConfigError("kernel and targets must be finite, got a NaN or inf entry")
    ky = y @ y.T
    raw = (kernel.norm(), ky.norm())
    if centered:
        h = torch.eye(n, dtype=kernel.dtype, device=kernel.device) - 1.0 / n
        kernel, ky = h @ kernel @ h, h @ ky @ h
    eps = 1e3 * n * torch.finfo(kernel.dtype).eps  # centring a constant leaves round-off of this relative size
    for name, k, k_raw in (("kernel", kernel, raw[0]), ("targets' kernel", ky, raw[1])):
        if float(k.norm()) <= eps * float(k_raw):
            raise ConfigError(f"the {name} is zero{' after centring (constant targets?)' if centered else ''}; "
                              "alignment is undefined")
    return float((kernel * ky).sum() / (kernel.norm() * ky.norm()))


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
