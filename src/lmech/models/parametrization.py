"""Width parametrisations — SP, NTK, muP, mean-field — as abc-parametrisations relative to a base width.

An abc-parametrisation (Yang & Hu 2021, *Tensor Programs IV*, arXiv:2011.14522, §3) writes every
weight as a multiplier times a trained parameter,

.. math::  W = n^{-a}\\, w, \\qquad w_{ij} \\sim \\mathcal{N}(0, \\sigma^2 n^{-2b}), \\qquad
           \\text{learning rate } \\eta\\, n^{-c},

with one ``(a, b, c)`` per layer. lmech measures width relative to a base model: ``m = width /
base_width`` replaces ``n`` (every width-like dimension of the model is ``m`` times the base model's),
so **every parametrisation is the standard one at** ``m = 1`` and one base model with one tuned base
learning rate ``η`` defines the whole family. A layer of role ``r`` gets

* multiplier ``α = m^{-a_r}`` applied in the forward pass (``y = α W x``),
* parameters drawn ``N(0, σ₀² m^{-2 b_r})`` with ``σ₀`` the SP standard deviation of the base layer:
  ``1/√fan_in_base`` for a linear layer (LeCun; TP V, Table 3), ``1`` for an embedding (one-hot inputs),
* learning rate ``η m^{-c_r}``, with separate exponents for SGD and for Adam (:func:`param_groups`).

Biases start at zero and LayerNorm gains at an effective value of 1 in every parametrisation, so only
their multiplier and learning rate depend on ``m``.

Roles (Yang et al. 2022, *Tensor Programs V*, arXiv:2203.03466, Table 3; Everett et al. 2024,
arXiv:2407.05872, Table 1 — "embedding", "hidden", "readout"):

* ``"input"`` — fan_in fixed, fan_out ∝ width: the first linear layer, embeddings, and every
  *vector-like* parameter — the biases of width-sized layers and LayerNorm gains and biases
  (TP V, Table 3: "input weights & all biases").
* ``"hidden"`` — fan_in and fan_out ∝ width.
* ``"output"`` — the readout: fan_in ∝ width, fan_out fixed.
* ``"scalar"`` — no width dimension at all: the readout's bias. Exponents 0 in every parametrisation
  (its gradient ``∂L/∂f`` is ``O(1)``; the mup package leaves such parameters unscaled).

The exponents (Everett et al.'s form; ``m^{-a}`` multiplier, ``m^{-b}`` init std, ``m^{-c}`` learning rate):

==============  ======  =====  =====  =======  ========
name            role    a      b      c (SGD)  c (Adam)
==============  ======  =====  =====  =======  ========
``sp``          input   0      0      0        0
\\               hidden  0      1/2    0        0
\\               output  0      1/2    0        0
``ntk``         input   0      0      0        1/2
\\               hidden  1/2    0      0        1
\\               output  1/2    0      0        1/2
``mup``         input   -1/2   1/2    0        1/2
\\               hidden  0      1/2    0        1
\\               output  1/2    1/2    0        1/2
``mean-field``  input   0      0      -1       0
\\               hidden  1/2    0      -1       1/2
\\               output  1      0      -1       0
==============  ======  =====  =====  =======  ========

Sources, row by row:

* ``sp``: ``a, b`` from Everett et al. Table 1 ("standard"); one global learning rate (``c = 0``), i.e.
  SP *as practised*, the baseline of TP V's Figure 1, which TP IV (§3: SP is stable only for
  ``c ≥ 1``) predicts to blow up at a fixed ``η`` as width grows.
* ``ntk``: ``a, b`` from Jacot et al. 2018 (arXiv:1806.07572) and Everett Table 1; SGD with a global
  rate ``c = 0`` (Jacot; TP IV §3 writes NTP as ``a = (0, ½, ½), b = 0, c = 0``). Adam: the per-layer
  rates whose per-entry steps match those SGD takes (``a + c_Adam = (½, 3/2, 1)``), which keep the lazy
  scaling (features move ``Θ(m^{-½})``, logits ``Θ(1)``). Everett et al. derive larger Adam rates for
  this class under their alignment assumptions (from their constraints, ``c_Adam = (0, 1, 1)`` for
  ``sp``'s ``a, b``, ``(0, ½, ½)`` for ``ntk``'s); at those rates the hidden update is correlated with
  the readout and the first Adam step moves the logits by ``Θ(√m)`` (measured on the digits, 128..2048
  wide: slope 0.43), the failure of TP IV's readout condition ``a_{L+1} + b_{L+1} + r ≥ 1``.
* ``mup``: Everett Table 1, the form of TP IV's §3 (``a = (-½, 0, ½)``, ``b = ½``, SGD ``c = 0``);
  the Adam rates are TP V's Table 3 mapped into this form by the equivalence below.
* ``mean-field``: Everett Table 1 (readout ``1/n``: Mei, Montanari, Nguyen 2018, arXiv:1804.06561);
  equivalent to ``mup`` (``θ = ½`` on every role).

**Equivalence** (TP IV §3; Everett et al. §2): the function and its training are unchanged by
``a ← a + θ, b ← b − θ, c_SGD ← c_SGD − 2θ, c_Adam ← c_Adam − θ`` per role (for Adam exactly only as
its ``ε → 0``). :meth:`Parametrization.shift` applies it, which is how the three muP conventions in use
agree: this table's (multiplier ``m^{-½}`` and init ``m^{-½}`` on the readout), TP V's Table 3
(``shift(input=½, output=-½)``: no multipliers, readout init variance ``∝ 1/fan_in²``, SGD rates
``(η m, η, η/m)``, Adam ``(η, η/m, η/m)``), and the mup package's ``MuReadout``
(``shift(input=½, output=½)``: readout multiplier ``1/m`` on an SP-sized init, Adam readout rate ``η``,
SGD ``η m``). ``tests/models/test_parametrization.py`` checks that the three train identically.

**Attention** (TP V): muP-class parametrisations scale attention logits by ``1/d_head`` instead of
``1/√d_head`` (``attention`` exponent 1 instead of ½); relative to the base model the logit scale is
multiplied by ``(d_head/d_head_base)^{½ − attention}``.

**Adam's ε** (Everett et al. 2024, the section introducing Adam-atan2): within an equivalence class Adam
differs only through ``ε``, which is compared with gradients whose size shrinks with ``m`` (the median
entry of a mean-field hidden weight's gradient on the digits: 5e-3 at width 128, 3e-5 at 4096).
:func:`param_groups` keeps one ``ε`` for every group; with ``ε = 1e-8`` and the widths lmech runs
(≤ 10⁴) the gradients stay above it by orders of magnitude, but a user pushing width further should
shrink ``ε`` with the gradient scale or use an ε-free update such as Adam-atan2.

Spectral view (Yang, Simon, Bernstein 2023, arXiv:2310.17813, Condition 1): feature learning needs
``‖W_l‖₂`` and ``‖ΔW_l‖₂`` to be ``Θ(√(fan_out/fan_in))``; muP meets it and
:func:`lmech.measure.spectral_norms` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import closest, require, valid_seed
from ..errors import ConfigError, UnknownNameError
from .ntk import ScaledLinear
from .transformer import CausalSelfAttention

__all__ = [
    "MEAN_FIELD", "MUP", "NTK", "PARAMETRIZATIONS", "SP", "AppliedParametrization", "Parametrization",
    "ScaledEmbedding", "ScaledLayerNorm", "get_parametrization", "param_groups", "parametrization_of",
    "parametrize",
]

ROLES = ("input", "hidden", "output")
OPTIMIZERS = {"sgd": "sgd", "gd": "sgd", "momentum": "sgd", "adam": "adam"}
_MARK = "_lmech_parametrization"


def _triple(name: str, value: object) -> tuple[float, float, float]:
    ok = isinstance(value, (tuple, list)) and len(value) == 3
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    require(ok, f"{name} must be three finite numbers (input, hidden, output), got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class Parametrization:
    """Width-scaling exponents per role: ``a`` (multiplier ``m^{-a}``), ``b`` (init std ``∝ m^{-b}``),
    ``c_sgd`` and ``c_adam`` (learning rate ``η m^{-c}``), each a triple ``(input, hidden, output)``,
    and ``attention`` (logit scale ``∝ d_head^{-attention}``). The module docstring gives the table.

    Raises:
        ConfigError: an empty name, or a field that is not three finite numbers.

    >>> MUP.shift(input=0.5, output=-0.5).c_adam   # TP V, Table 3: Adam rates (η, η/m, η/m)
    (0.0, 1.0, 1.0)
    """

    name: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    c_sgd: tuple[float, float, float]
    c_adam: tuple[float, float, float]
    attention: float = 0.5

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and self.name != "", f"name must be a non-empty string, got {self.name!r}")
        for key in ("a", "b", "c_sgd", "c_adam"):
            object.__setattr__(self, key, _triple(key, getattr(self, key)))
        require(
            isinstance(self.attention, (int, float)) and math.isfinite(self.attention),
            f"attention must be a finite number, got {self.attention!r}",
        )

    def exponent(self, kind: str, role: str) -> float:
        """The exponent ``kind`` (``"a"``, ``"b"``, ``"c_sgd"``, ``"c_adam"``) of ``role``; 0 for ``"scalar"``."""
        if role == "scalar":
            return 0.0
        return getattr(self, kind)[ROLES.index(role)]

    def shift(self, *, input: float = 0.0, hidden: float = 0.0, output: float = 0.0, name: str | None = None) -> Parametrization:
        """The equivalent parametrisation ``a + θ, b − θ, c_SGD − 2θ, c_Adam − θ`` (θ per role; TP IV §3,
        Everett et al. 2024 §2): same function and same SGD training; same Adam training as ``ε → 0``."""
        theta = _triple("theta", (input, hidden, output))

        def moved(values: tuple[float, ...], factor: float) -> tuple[float, ...]:
            return tuple(v + factor * t for v, t in zip(values, theta))

        return Parametrization(
            name=name or f"{self.name} (shifted)", a=moved(self.a, 1), b=moved(self.b, -1),
            c_sgd=moved(self.c_sgd, -2), c_adam=moved(self.c_adam, -1), attention=self.attention,
        )


SP = Parametrization(name="sp", a=(0, 0, 0), b=(0, 0.5, 0.5), c_sgd=(0, 0, 0), c_adam=(0, 0, 0), attention=0.5)
NTK = Parametrization(name="ntk", a=(0, 0.5, 0.5), b=(0, 0, 0), c_sgd=(0, 0, 0), c_adam=(0.5, 1, 0.5), attention=0.5)
MUP = Parametrization(name="mup", a=(-0.5, 0, 0.5), b=(0.5, 0.5, 0.5), c_sgd=(0, 0, 0), c_adam=(0.5, 1, 0.5), attention=1.0)
MEAN_FIELD = Parametrization(
    name="mean-field", a=(0, 0.5, 1), b=(0, 0, 0), c_sgd=(-1, -1, -1), c_adam=(0, 0.5, 0), attention=1.0
)
PARAMETRIZATIONS: Mapping[str, Parametrization] = MappingProxyType({p.name: p for p in (SP, NTK, MUP, MEAN_FIELD)})


def get_parametrization(name: str | Parametrization) -> Parametrization:
    """The named parametrisation (``"sp"``, ``"ntk"``, ``"mup"``, ``"mean-field"``), or ``name`` itself.

    Raises:
        UnknownNameError: an unknown name (the message lists the known ones).
    """
    if isinstance(name, Parametrization):
        return name
    if not isinstance(name, str) or name not in PARAMETRIZATIONS:
        raise UnknownNameError(
            f"unknown parametrization {name!r}{closest(str(name), PARAMETRIZATIONS)}; known: {', '.join(PARAMETRIZATIONS)}"
        )
    return PARAMETRIZATIONS[name]


class ScaledEmbedding(nn.Embedding):
    """An embedding table used as ``α E[token]`` (``α = weight_multiplier``); ``E`` of shape
    (num_embeddings, embedding_dim). Built by :func:`parametrize`; its parameters are set there."""

    weight_multiplier: float

    def __init__(self, num_embeddings: int, embedding_dim: int, *, weight_multiplier: float = 1.0,
                 padding_idx: int | None = None, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        nn.Module.__init__(self)  # skip nn.Embedding's draw from the global RNG
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = None, 2.0, False, False
        self.weight = nn.Parameter(torch.zeros(num_embeddings, embedding_dim, dtype=dtype, device=device))
        self.weight_multiplier = float(weight_multiplier)

    def forward(self, tokens: Tensor) -> Tensor:
        return F.embedding(tokens, self.weight * self.weight_multiplier, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight_multiplier={self.weight_multiplier:.6g}"


class ScaledLayerNorm(nn.LayerNorm):
    """LayerNorm with gain ``α_g g`` and shift ``α_b β`` (``weight_multiplier``, ``bias_multiplier``)."""

    weight_multiplier: float
    bias_multiplier: float

    def __init__(self, like: nn.LayerNorm, *, weight_multiplier: float, bias_multiplier: float) -> None:
        has_bias = like.bias is not None
        factory = {"dtype": like.weight.dtype, "device": like.weight.device}
        super().__init__(like.normalized_shape, eps=like.eps, elementwise_affine=True, bias=has_bias, **factory)
        self.weight_multiplier, self.bias_multiplier = float(weight_multiplier), float(bias_multiplier)

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_multiplier
        return F.layer_norm(x, self.normalized_shape, self.weight * self.weight_multiplier, bias, self.eps)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight_multiplier={self.weight_multiplier:.6g}"


@dataclass(frozen=True)
class AppliedParametrization:
    """What :func:`parametrize` did to a model: the parametrisation, the widths, and the role of every
    parameter (``roles`` maps parameter names, as in ``model.named_parameters()``, to roles)."""

    parametrization: Parametrization
    base_width: float
    width: float
    roles: Mapping[str, str] = field(repr=False)

    @property
    def width_mult(self) -> float:
        """``m = width / base_width``."""
        return self.width / self.base_width

    def lr_factor(self, role: str, optimizer: str) -> float:
        """``m^{-c}`` of ``role`` for ``optimizer`` (``"sgd"``/``"gd"``/``"momentum"`` or ``"adam"``)."""
        require(optimizer in OPTIMIZERS, f"optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
        return self.width_mult ** -self.parametrization.exponent(f"c_{OPTIMIZERS[optimizer]}", role)


def parametrization_of(model: nn.Module) -> AppliedParametrization | None:
    """The record :func:`parametrize` left on ``model``, or ``None`` if it was never parametrised."""
    return getattr(model, _MARK, None)


def parametrize(
    model: nn.Module,
    parametrization: str | Parametrization,
    *,
    base_width: float,
    width: float | None = None,
    roles: Mapping[str, str] | None = None,
    base_d_head: float | None = None,
    seed: int = 0,
) -> nn.Module:
    """Apply ``parametrization`` to ``model`` in place and return it.

    Every ``nn.Linear`` becomes a :class:`~lmech.models.ScaledLinear`, every ``nn.Embedding`` a
    :class:`ScaledEmbedding` and every ``nn.LayerNorm`` a :class:`ScaledLayerNorm` carrying the
    multiplier ``m^{-a}`` of its role; weights are redrawn ``N(0, σ₀² m^{-2b})`` from a private generator
    seeded by ``seed`` (in module order, so equal seeds give equal draws across parametrisations),
    biases set to 0 and LayerNorm gains to an effective 1. Attention modules of
    :class:`~lmech.models.Transformer` get their logit scale multiplied by ``m_head^{½ − attention}``.
    See the module docstring for the exponents and their sources.

    Roles of linear layers come from ``roles`` (qualified module name → ``"input"``, ``"hidden"`` or
    ``"output"``), else from ``model.width_roles()`` when the model defines it (the transformer does),
    else, for an ``nn.Sequential`` of linear layers and parameter-free modules (what
    :func:`~lmech.models.mlp` builds), from position: first input, last output, the rest hidden.

    Args:
        model: the model, at its target width.
        parametrization: a name (``"sp"``, ``"ntk"``, ``"mup"``, ``"mean-field"``) or a :class:`Parametrization`.
        base_width: the width at which every parametrisation is SP (> 0).
        width: the model's width; ``None`` reads ``model.width`` or the one width all width-like
            dimensions share.
        roles: role overrides for linear layers, by qualified module name.
        base_d_head: the base model's attention head dimension; ``None`` assumes ``d_head ∝ width``
            (``n_heads`` fixed), i.e. ``d_head / m``. Only for models with attention.
        seed: seeds the private generator; 0 ≤ seed < 2**32.

    Raises:
        ConfigError: the model is already parametrised; two layers share a parameter (tied weights); a module
            lmech cannot parametrise (the
            message names it, e.g. ``'features.0' (Conv2d)``), including a linear layer without a role;
            a non-positive or non-finite width; ``base_d_head`` for a model without attention.
        UnknownNameError: an unknown parametrisation name.

    >>> from lmech.models import mlp
    >>> model = parametrize(mlp(3, [32, 32], 2), "mup", base_width=8)
    >>> [round(model[i].weight_multiplier, 6) for i in (0, 2, 4)]    # m^{-a} with m = 4
    [2.0, 1.0, 0.5]
    """
    p = get_parametrization(parametrization)
    for name, module in model.named_modules():
        done = parametrization_of(module)
        if done is not None:
            where = f"module {name!r}" if name else "model"
            raise ConfigError(
                f"{where} is already parametrised ({done.parametrization.name}, width {done.width:g}, base width "
                f"{done.base_width:g}); build a fresh model to apply another parametrisation"
            )
    require(isinstance(seed, int) and not isinstance(seed, bool), f"seed must be an integer, got {seed!r}")
    valid_seed(seed)
    _positive("base_width", base_width)
    layer_roles = _assign_roles(model, roles)
    width = _infer_width(model, layer_roles) if width is None else width
    _positive("width", width)
    m = width / base_width
    attention = [mod for mod in model.modules() if isinstance(mod, CausalSelfAttention)]
    require(base_d_head is None or attention, f"base_d_head applies to models with attention; {type(model).__name__} has none")
    if base_d_head is not None:
        _positive("base_d_head", base_d_head)
    require("" not in layer_roles, f"cannot parametrise a bare {type(model).__name__}: it has no width to scale")
    owners: dict[int, str] = {}
    for name in layer_roles:  # rebuilding a layer replaces its tensors, which would silently untie shared ones
        for pname, param in model.get_submodule(name).named_parameters(recurse=False):
            other = owners.setdefault(id(param), f"{name}.{pname}")
            require(other == f"{name}.{pname}", f"{other!r} and {name}.{pname!r} share one tensor (tied weights); "
                                                "parametrize would untie them — tie them after parametrising instead")
    gen = torch.Generator().manual_seed(seed)
    param_roles: dict[str, str] = {}
    with torch.no_grad():
        for name, module in list(model.named_modules()):
            role = layer_roles.get(name)
            if role is None:
                continue
            new, own_roles = _rebuild(module, role, p, m, gen)
            _replace(model, name, new)
            param_roles.update({f"{name}.{k}": r for k, r in own_roles.items()})
    for mod in attention:  # TP V §4: logits · (d_head / d_head_base)^{1/2 - attention}
        m_head = m if base_d_head is None else mod.d_head / base_d_head
        mod.scale = mod.scale * m_head ** (0.5 - p.attention)
    setattr(model, _MARK, AppliedParametrization(p, float(base_width), float(width), dict(param_roles)))
    return model


def param_groups(model: nn.Module, lr: float, optimizer: str = "sgd") -> list[dict]:
    """``torch.optim`` parameter groups with the per-role learning rates ``lr · m^{-c}`` of the model's
    parametrisation, one group per role (``"role"`` names it), in order of first appearance.

    ``optimizer`` picks the exponents: ``"sgd"`` (also ``"gd"``, ``"momentum"``) or ``"adam"``; the groups
    carry no ``eps`` (see the module docstring on Adam's ε). Frozen parameters are left out.

    Raises:
        ConfigError: the model was not parametrised (call :func:`parametrize` first); a trainable
            parameter :func:`parametrize` did not see; ``lr`` not finite and > 0; an unknown optimizer.

    >>> from lmech.models import mlp
    >>> model = parametrize(mlp(3, [32, 32], 2), "mup", base_width=8)
    >>> [(g["role"], g["lr"]) for g in param_groups(model, 0.1, "adam")]   # 0.1·m^{-c}, m = 4
    [('input', 0.05), ('hidden', 0.025), ('output', 0.05), ('scalar', 0.1)]
    """
    applied = parametrization_of(model)
    if applied is None:
        raise ConfigError(
            f"{type(model).__name__} is not parametrised; call lmech.models.parametrize(model, 'mup', "
            f"base_width=...) first"
        )
    require(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0, f"lr must be finite and > 0, got {lr!r}")
    require(optimizer in OPTIMIZERS, f"optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        role = applied.roles.get(name)
        require(role is not None, f"parameter {name!r} was added after parametrize(); it has no role and no learning rate")
        group = groups.setdefault(role, {"params": [], "lr": lr * applied.lr_factor(role, optimizer), "role": role})
        group["params"].append(param)
    return list(groups.values())


def _positive(name: str, value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    require(ok, f"{name} must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _describe(name: str, module: nn.Module) -> str:
    return f"{name or '<model>'!r} ({type(module).__name__})"


def _assign_roles(model: nn.Module, roles: Mapping[str, str] | None) -> dict[str, str]:
    """Qualified module name → role for every module with parameters, or a ConfigError naming the first
    module lmech cannot parametrise."""
    declared = dict(model.width_roles()) if callable(getattr(model, "width_roles", None)) else {}
    declared.update(roles or {})
    modules = dict(model.named_modules())
    for name, role in declared.items():
        require(
            isinstance(modules.get(name), (nn.Linear, nn.Embedding)),
            f"roles names {name!r}, which is not a linear or embedding layer of {type(model).__name__}",
        )
        require(role in ROLES, f"role of {name!r} must be one of {ROLES}, got {role!r}")
    positional = _positional_roles(model) if isinstance(model, nn.Sequential) else {}
    for name, module in modules.items():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) or not _handled(module):
            raise ConfigError(
                f"cannot parametrise layer {_describe(name, module)}: lmech parametrises nn.Linear, nn.Embedding and "
                f"nn.LayerNorm layers around parameter-free modules; remove it or keep the model in SP"
            )
    assigned: dict[str, str] = {}
    for name, module in modules.items():
        if isinstance(module, nn.Linear):
            role = declared.get(name, positional.get(name))
            if role is None:
                raise ConfigError(
                    f"cannot assign a width role to layer {_describe(name, module)}; pass roles={{{name!r}: "
                    f"'input' | 'hidden' | 'output'}}"
                )
            assigned[name] = role
        elif isinstance(module, nn.Embedding):
            require(declared.get(name, "input") == "input", f"embedding {_describe(name, module)} can only have role 'input'")
            require(module.max_norm is None and not module.sparse and not module.scale_grad_by_freq,
                    f"cannot parametrise layer {_describe(name, module)}: max_norm, sparse and scale_grad_by_freq "
                    "are unsupported")
            assigned[name] = "input"
        elif isinstance(module, nn.LayerNorm) and module.weight is not None:
            assigned[name] = "input"
    return assigned


def _handled(module: nn.Module) -> bool:
    if not any(True for _ in module.parameters(recurse=False)):
        return True
    return isinstance(module, (nn.Linear, nn.Embedding, nn.LayerNorm)) and set(dict(module.named_parameters(recurse=False))) <= {
        "weight", "bias"
    }


def _positional_roles(model: nn.Sequential) -> dict[str, str]:
    """``first input, last output, the rest hidden`` for the linear children of a flat Sequential."""
    linears = [(name, child) for name, child in model.named_children() if isinstance(child, nn.Linear)]
    if len(linears) < 2:
        return {}
    for (name, a), (_, b) in zip(linears[:-1], linears[1:]):
        require(a.out_features == b.in_features, f"layer {_describe(name, a)} feeds {a.out_features} features to a layer "
                f"expecting {b.in_features}; pass roles= for a model that is not a plain MLP")
    return {name: "input" if i == 0 else "output" if i == len(linears) - 1 else "hidden" for i, (name, _) in enumerate(linears)}


def _infer_width(model: nn.Module, layer_roles: Mapping[str, str]) -> float:
    declared = getattr(model, "width", None)
    if isinstance(declared, (int, float)) and not isinstance(declared, bool):
        return float(declared)
    modules = dict(model.named_modules())
    dims = set()
    for name, role in layer_roles.items():
        module = modules[name]
        if isinstance(module, nn.Linear):
            dims |= {"input": {module.out_features}, "hidden": {module.in_features, module.out_features},
                     "output": {module.in_features}}[role]
        elif isinstance(module, nn.Embedding):
            dims.add(module.embedding_dim)
    require(len(dims) == 1, f"cannot infer the width: the width-like dimensions are {sorted(dims)}; pass width=")
    return float(dims.pop())


def _rebuild(module: nn.Module, role: str, p: Parametrization, m: float,
             gen: torch.Generator) -> tuple[nn.Module, dict[str, str]]:
    """The scaled replacement of ``module`` (parameters drawn from ``gen``) and its parameters' roles."""

    def alpha(r: str) -> float:
        return m ** -p.exponent("a", r)

    def shrink(r: str) -> float:
        return m ** -p.exponent("b", r)

    if isinstance(module, nn.Linear):
        bias_role = "scalar" if role == "output" else "input"
        fan_in_base = module.in_features if role == "input" else module.in_features / m
        new = ScaledLinear(module.in_features, module.out_features, module.bias is not None, weight_multiplier=alpha(role),
                           bias_multiplier=alpha(bias_role), generator=gen, dtype=module.weight.dtype,
                           device=module.weight.device)
        new.weight.mul_(shrink(role) / math.sqrt(fan_in_base))
        if new.bias is not None:
            new.bias.zero_()
        return new, {"weight": role, "bias": bias_role} if new.bias is not None else {"weight": role}
    if isinstance(module, nn.Embedding):
        new = ScaledEmbedding(module.num_embeddings, module.embedding_dim, weight_multiplier=alpha("input"),
                              padding_idx=module.padding_idx, dtype=module.weight.dtype, device=module.weight.device)
        new.weight.normal_(0.0, shrink("input"), generator=gen)
        if module.padding_idx is not None:
            new.weight[module.padding_idx].zero_()
        return new, {"weight": "input"}
    new = ScaledLayerNorm(module, weight_multiplier=alpha("input"), bias_multiplier=alpha("input"))
    new.weight.fill_(1.0 / alpha("input"))  # effective gain 1
    return new, {"weight": "input", "bias": "input"} if new.bias is not None else {"weight": "input"}


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the module called ``name`` sits."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
