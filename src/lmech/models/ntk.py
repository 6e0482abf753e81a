"""Fully connected networks in the NTK parametrisation, and with a mean-field (muP-like) output layer.

NTK parametrisation (Jacot, Gabriel, Hongler 2018, arXiv:1806.07572, §2; Lee et al. 2019,
arXiv:1902.06720, eq. (1)): every weight and bias is drawn i.i.d. ``N(0, 1)`` and the layer scales
appear as constant multipliers in the forward pass, for a network with hidden widths
``n_1, …, n_L`` on inputs of dimension ``n_0 = d``:

.. math::

    z^{1} = \\frac{\\sigma_w}{\\sqrt{n_0}} W^{1} x + \\sigma_b b^{1}, \\qquad
    h^{l} = \\phi(z^{l}), \\qquad
    z^{l+1} = \\frac{\\sigma_w}{\\sqrt{n_l}} W^{l+1} h^{l} + \\sigma_b b^{l+1},

with the output ``f(x) = z^{L+1}`` (no activation). At initialisation its outputs are the same random
function as a standard-parametrisation network with ``W ~ N(0, σ_w²/n_l)``, ``b ~ N(0, σ_b²)``;
the difference is in the gradients, which make the NTK converge to a width-independent limit
(computed by :func:`lmech.theory.infinite_width_kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import require, valid_seed

__all__ = ["Erf", "ScaledLinear", "ntk_mlp"]

PARAMETRIZATIONS = ("ntk", "mean-field")


class Erf(nn.Module):
    """The error function ``erf(x) = (2/√π) ∫₀ˣ e^{-t²} dt``, elementwise (``torch.special.erf``).

    Its Gaussian expectations are closed-form (Williams 1997), which makes it, with ReLU, the
    activation of choice for exact infinite-width kernels.

    >>> [round(v, 6) for v in Erf()(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist()]
    [0.0, 0.842701]
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.special.erf(x)


ACTIVATIONS = {"relu": nn.ReLU, "erf": Erf, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}


class ScaledLinear(nn.Linear):
    """An affine layer whose parameters are ``N(0, 1)`` and whose scales are constant multipliers.

    .. math::  y = (\\alpha_W W)\\, x + \\alpha_b\\, b, \\qquad W_{ij},\\ b_i \\sim \\mathcal{N}(0, 1),

    with ``α_W = weight_multiplier`` and ``α_b = bias_multiplier``. Gradient descent then acts on
    ``W`` and ``b``, not on the scaled matrices, so the multipliers set both the forward scale and the
    size of each parameter's contribution to the NTK (``α_W²`` and ``α_b²`` per unit gradient).
    A plain :class:`torch.nn.Linear` is the case ``α_W = α_b = 1``; code that reads the two
    attributes of any ``nn.Linear`` should use ``getattr(layer, "weight_multiplier", 1.0)``.

    Args:
        in_features: input dimension (≥ 1).
        out_features: output dimension (≥ 1).
        bias: whether the layer has a bias ``b`` of shape (out_features,).
        weight_multiplier: ``α_W``, finite.
        bias_multiplier: ``α_b``, finite (kept, but unused, when ``bias=False``).
        generator: the private generator the ``N(0, 1)`` parameters are drawn from; ``None`` draws
            from a fresh generator seeded with 0 (never from the global RNG).
        dtype, device: of the parameters.

    Raises:
        ConfigError: a size below 1 or a non-finite multiplier.

    >>> layer = ScaledLinear(4, 1, weight_multiplier=0.5, bias_multiplier=0.0)
    >>> x = torch.ones(1, 4)
    >>> bool(torch.allclose(layer(x), 0.5 * x @ layer.weight.T))
    True
    """

    weight_multiplier: float
    bias_multiplier: float

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_multiplier: float = 1.0,
        bias_multiplier: float = 1.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        require(
            _is_int(in_features) and in_features >= 1 and _is_int(out_features) and out_features >= 1,
            f"in_features and out_features must be integers >= 1, got {in_features!r} and {out_features!r}",
        )
        for name, value in (("weight_multiplier", weight_multiplier), ("bias_multiplier", bias_multiplier)):
            require(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                f"{name} must be a finite number, got {value!r}",
            )
        # nn.Linear.__init__ would draw a Kaiming initialisation from the global RNG; build the same
        # attributes directly instead and draw N(0, 1) from the private generator.
        nn.Module.__init__(self)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight_multiplier, self.bias_multiplier = float(weight_multiplier), float(bias_multiplier)
        factory = {"dtype": dtype, "device": device}
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_features, **factory)) if bias else None
        self.reset_parameters(generator if generator is not None else torch.Generator().manual_seed(0))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw ``W`` and ``b`` i.i.d. ``N(0, 1)`` from ``generator`` (``None``: the global RNG, as
        every ``reset_parameters`` in PyTorch; the constructor always passes a private one)."""
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0, generator=generator)
            if self.bias is not None:
                self.bias.normal_(0.0, 1.0, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_multiplier
        return F.linear(x, self.weight * self.weight_multiplier, bias)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, weight_multiplier={self.weight_multiplier:.6g}, "
            f"bias_multiplier={self.bias_multiplier:.6g}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def ntk_mlp(
    in_features: int,
    widths: Sequence[int],
    out_features: int,
    *,
    activation: str = "relu",
    weight_var: float = 2.0,
    bias_var: float = 0.0,
    parametrization: str = "ntk",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """``ScaledLinear → φ → … → ScaledLinear`` in the NTK parametrisation (or a mean-field output).

    ``"ntk"`` (Jacot et al. 2018, arXiv:1806.07572, §2; Lee et al. 2019, arXiv:1902.06720, eq. (1)):
    layer ``l + 1`` has weight multiplier ``σ_w/√n_l`` and bias multiplier ``σ_b``, all parameters
    ``N(0, 1)``:

    .. math::

        z^{1} = \\frac{\\sigma_w}{\\sqrt{d}} W^{1} x + \\sigma_b b^{1},\\quad
        z^{l+1} = \\frac{\\sigma_w}{\\sqrt{n_l}} W^{l+1} \\phi(z^{l}) + \\sigma_b b^{l+1},\\quad
        f(x) = z^{L+1}.

    As every width grows, the outputs at initialisation become a Gaussian process with the NNGP
    kernel and the NTK converges to a deterministic kernel that stays fixed during training (the lazy
    regime), both given by :func:`lmech.theory.infinite_width_kernels` with ``depth = len(widths)``.

    ``"mean-field"``: the same network except that the *output* layer's multipliers are ``σ_w/n_L``
    and ``σ_b/√n_L`` instead of ``σ_w/√n_L`` and ``σ_b`` (the mean-field output scaling; Mei,
    Montanari, Nguyen 2018, arXiv:1804.06561), so the output is exactly ``1/√n_L`` times the
    ``"ntk"`` network's with the same parameters, and at initialisation the NTK is ``1/n_L`` times
    its NTK (the output bias included: with ``σ_b`` unscaled, ``lr₀ · n_L`` would give the output
    bias a step ``n_L`` times too large and training would diverge). To train in
    ``O(1)`` time the learning rate must be scaled up with the width, ``lr = lr₀ · n_L`` with ``lr₀``
    independent of width (time = ``lr₀ × steps``); the hidden features and the NTK then move by ``O(1)``
    (the rich, feature-learning regime), and the whole is muP (Yang & Hu 2021, arXiv:2011.14522: it
    maps onto their maximal-update abc-parametrisation by the symmetry ``(a, b, c) → (a + θ, b − θ,
    c − 2θ)`` with ``θ = −1/2``).

    Biases are dropped when ``bias_var == 0`` (with multiplier ``σ_b = 0`` they would have no effect
    and no gradient).

    Args:
        in_features: input dimension ``d ≥ 1``.
        widths: hidden widths ``(n_1, …, n_L)``, each ``≥ 1``; empty for a linear model.
        out_features: output dimension ``≥ 1``.
        activation: ``φ``, one of ``"relu"``, ``"erf"``, ``"tanh"``, ``"gelu"``, ``"identity"``
            (the theory has closed forms for ``relu``, ``erf`` and ``identity``).
        weight_var: ``σ_w² > 0`` (2 is the He/Kaiming value that preserves ReLU's norms).
        bias_var: ``σ_b² ≥ 0``.
        parametrization: ``"ntk"`` or ``"mean-field"``.
        seed: seeds a private :class:`torch.Generator` (the global RNG is untouched).
        dtype: of the parameters.

    Returns:
        An :class:`torch.nn.Sequential` of :class:`ScaledLinear` layers and activations, mapping
        inputs of shape (n, in_features) to outputs of shape (n, out_features).

    Raises:
        ConfigError: a size below 1, non-finite or non-positive ``weight_var``, non-finite or negative
            ``bias_var``, an unknown ``activation`` or ``parametrization``, or an invalid ``seed``.

    >>> model = ntk_mlp(3, [16], 1, weight_var=2.0)
    >>> [round(m.weight_multiplier ** 2, 6) for m in model if isinstance(m, ScaledLinear)]   # σ_w²/n
    [0.666667, 0.125]
    """
    require(
        activation in ACTIVATIONS,
        f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}",
    )
    require(
        parametrization in PARAMETRIZATIONS,
        f"parametrization must be one of {PARAMETRIZATIONS}, got {parametrization!r}",
    )
    widths = tuple(widths)
    sizes = (in_features, *widths, out_features)
    require(
        all(_is_int(s) and s >= 1 for s in sizes),
        f"in_features, every width and out_features must be integers >= 1, got {in_features!r}, "
        f"{list(widths)!r}, {out_features!r}",
    )
    require(
        isinstance(weight_var, (int, float)) and math.isfinite(weight_var) and weight_var > 0,
        f"weight_var (σ_w²) must be finite and > 0, got {weight_var!r}",
    )
    require(
        isinstance(bias_var, (int, float)) and math.isfinite(bias_var) and bias_var >= 0,
        f"bias_var (σ_b²) must be finite and >= 0, got {bias_var!r}",
    )
    require(_is_int(seed), f"seed must be an integer, got {seed!r}")
    valid_seed(seed)
    require(dtype.is_floating_point, f"dtype must be a floating-point dtype, got {dtype!r}")
    sigma_w, sigma_b = math.sqrt(weight_var), math.sqrt(bias_var)
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    num_linear = len(sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        is_output = i == num_linear - 1
        scale = fan_in if is_output and parametrization == "mean-field" else math.sqrt(fan_in)
        layers.append(
            ScaledLinear(
                fan_in,
                fan_out,
                bias=bias_var > 0,
                weight_multiplier=sigma_w / scale,
                bias_multiplier=sigma_b / math.sqrt(fan_in) if is_output and parametrization == "mean-field" else sigma_b,
                generator=gen,
                dtype=dtype,
            )
        )
        if not is_output:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
