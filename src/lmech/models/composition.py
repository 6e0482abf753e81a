"""Networks with hand-set weights that compose group elements exactly: a pairwise-composition block, an RNN that
applies it once per element, and a feedforward tree that applies it to adjacent pairs in parallel.

Marchetti, Kunin, Myers, Acosta, Miolane (2026), *Sequential Group Composition*, arXiv:2602.03655 (the section on
deeper architectures, which exploit associativity): the product ``g_1·g_2·⋯·g_k`` of ``k`` elements needs a
two-layer network of width exponential in ``k``, but a recurrent network composes the elements one at a time in
``k`` steps and a multilayer network composes adjacent pairs in parallel in ``⌈log₂ k⌉`` layers, because the
product is associative. Here the RNN reads ``k`` elements in ``k − 1`` nonlinear steps (the first is linear).

Why the quadratic block (the paper's activation) and not only ReLU: it is the paper's mechanism — networks on this
task compute with irreps — and its width ``2 Σ_ρ D_ρ³`` grows with the irreps, not with ``|G|²``; the ReLU block is
the table itself, simpler and exact on one-hot inputs, and it has the activation of the trained MLPs, so it tells
how wide a trained ReLU MLP must be for ``⌈log₂ k⌉`` layers to suffice.

Both constructions are built from one **pairwise block** ``(a, b) ↦ a·b``, a hidden layer between two linear maps.
Two blocks are provided:

* ``activation="square"`` (the paper's quadratic networks, ``σ(z) = z²``): each element is carried as its *real
  irrep coordinates* ``φ(g) = ⊕_ρ vec R_ρ(g)`` (:func:`real_irreps`), and ``R_ρ(ab) = R_ρ(a) R_ρ(b)`` is bilinear:

  .. math::  R_\\rho(ab)_{il} = \\sum_j \\tfrac14\\big[(R_\\rho(a)_{ij} + R_\\rho(b)_{jl})^2
             - (R_\\rho(a)_{ij} - R_\\rho(b)_{jl})^2\\big],

  ``2 Σ_ρ D_ρ³`` hidden units (``D_ρ`` the real dimension). The one-hot output is the Fourier inversion
  ``δ_h(g) = |G|⁻¹ Σ_ρ w_ρ tr(R_ρ(g)ᵀ R_ρ(h))``, linear in ``φ(h)``.
* ``activation="relu"``: one unit per pair ``(i, j)`` of elements, ``u_ij = ReLU(a_i + b_j − 1)``, which is 1 exactly
  when the one-hot inputs are ``a = e_i, b = e_j``; the output ``c_m = Σ_{i·j=m} u_ij`` is the one-hot product.
  ``|G|²`` hidden units; exact on one-hot inputs. It shows what width a ReLU network of this depth needs.

The trainable counterpart is :func:`composition_mlp`, a plain ReLU MLP on the concatenated one-hot inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import require
from ..data.groups import FiniteGroup
from .mlp import mlp

__all__ = ["CompositionRNN", "Square", "composition_mlp", "composition_tree", "hidden_layers", "pair_block", "real_irreps",
           "tree_depth"]

BLOCKS = ("square", "relu")


class Square(nn.Module):
    """The quadratic activation ``σ(z) = z²`` of Marchetti et al. (2026), elementwise."""

    def forward(self, z: Tensor) -> Tensor:
        return z * z


def tree_depth(k: int) -> int:
    """``⌈log₂ k⌉``: the levels of a balanced binary tree over ``k`` leaves (0 for ``k = 1``).

    >>> [tree_depth(k) for k in (1, 2, 3, 4, 8, 9, 16)]
    [0, 1, 2, 2, 3, 4, 4]
    """
    require(isinstance(k, int) and not isinstance(k, bool) and k >= 1, f"k must be an integer >= 1, got {k!r}")
    return (k - 1).bit_length()


def real_irreps(group: FiniteGroup) -> tuple[list[Tensor], list[float]]:
    """Real orthogonal irreducible representations of ``group`` (over ℝ) and their inversion weights.

    A complex irrep ``ρ = A + iB`` paired with its conjugate (one *frequency* of ``group``) becomes the real
    ``2d × 2d`` matrix ``[[A, −B], [B, A]]``; a real irrep is kept. With weight ``w_ρ = d_ρ`` (complex dimension),

    .. math::  \\delta_{g,h} = \\frac{1}{|G|}\\sum_\\rho w_\\rho \\operatorname{tr}\\big(R_\\rho(g)^\\top R_\\rho(h)\\big),

    the real form of ``Σ_ρ d_ρ χ_ρ(g⁻¹h) = |G| δ_{g,h}`` (Serre 1977, §2.4).

    Returns:
        ``(mats, weights)``: ``mats[r]`` of shape ``(|G|, D_r, D_r)``, float64, ``R_r(a)R_r(b) = R_r(a·b)``.

    Raises:
        ConfigError: a frequency holding a single irrep that is not real (not one of lmech's groups).
    """
    mats, weights = [], []
    seen: set[int] = set()
    for i, rho in enumerate(group.irreps):
        if i in seen:
            continue
        members = (group.frequency == group.frequency[i]).nonzero().flatten().tolist()
        seen.update(members)
        m = rho.matrices
        if len(members) == 1:
            require(bool(torch.allclose(m.imag, torch.zeros_like(m.imag), atol=1e-12)),
                    f"{group.name}: irrep {rho.name!r} is alone at its frequency but not real; pass a group whose "
                    "irreps are real or come in conjugate pairs")
            mats.append(m.real.clone())
        else:
            a, b = m.real, m.imag
            mats.append(torch.cat([torch.cat([a, -b], -1), torch.cat([b, a], -1)], -2))
        weights.append(float(rho.dim))
    return mats, weights


class _Coordinates:
    """Real irrep coordinates of a group: encode ``P`` (m, |G|), decode ``F`` (|G|, m), pre-activations ``A``
    (H, 2m) and combination ``C`` (m, H) of the quadratic pairwise block."""

    def __init__(self, group: FiniteGroup):
        mats, weights = real_irreps(group)
        n = group.order
        self.P = torch.cat([r.reshape(n, -1) for r in mats], 1).T.contiguous()  # (m, n): column g is φ(g)
        self.F = torch.cat([w * r.reshape(n, -1) for r, w in zip(mats, weights)], 1) / n  # (n, m)
        self.m = self.P.shape[0]
        rows_a, cols_a, vals_a, rows_c, cols_c, vals_c = [], [], [], [], [], []
        offset, unit = 0, 0
        for r in mats:
            d = r.shape[-1]
            for i in range(d):
                for j in range(d):
                    for ll in range(d):
                        left, right, out = offset + i * d + j, self.m + offset + j * d + ll, offset + i * d + ll
                        for sign in (1.0, -1.0):  # unit (u + v)², then (u − v)²
                            rows_a += [unit, unit]
                            cols_a += [left, right]
                            vals_a += [1.0, sign]
                            rows_c.append(out)
                            cols_c.append(unit)
                            vals_c.append(sign / 4)
                            unit += 1
            offset += d * d
        self.H = unit
        self.A = torch.zeros(self.H, 2 * self.m, dtype=torch.float64)
        self.A[rows_a, cols_a] = torch.tensor(vals_a, dtype=torch.float64)
        self.C = torch.zeros(self.m, self.H, dtype=torch.float64)
        self.C[rows_c, cols_c] = torch.tensor(vals_c, dtype=torch.float64)


def _block_parts(group: FiniteGroup, activation: str) -> dict[str, Tensor]:
    """The pairwise block as matrices, for a block reading two *element codes* and writing one.

    Keys: ``encode`` (code of a one-hot element, ``(c, |G|)``), ``identity`` (code of ``e``, ``(c,)``), ``left``,
    ``right`` (``(H, c)``, pre-activations from each operand's code), ``bias`` (``(H,)``), ``combine`` (``(c, H)``,
    hidden → code of the product) and ``decode`` (``(|G|, c)``, code → one-hot scores). Codes are irrep coordinates
    for ``"square"`` and one-hot vectors for ``"relu"``.
    """
    require(activation in BLOCKS, f"activation must be one of {BLOCKS}, got {activation!r}")
    n = group.order
    if activation == "square":
        co = _Coordinates(group)
        return {"encode": co.P, "identity": co.P[:, 0], "left": co.A[:, :co.m], "right": co.A[:, co.m:],
                "bias": torch.zeros(co.H, dtype=torch.float64), "combine": co.C, "decode": co.F}
    eye = torch.eye(n, dtype=torch.float64)
    unit_i, unit_j = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)  # unit u = i·n + j
    combine = torch.zeros(n, n * n, dtype=torch.float64)
    combine[group.table[unit_i, unit_j], torch.arange(n * n)] = 1.0
    return {"encode": eye, "identity": eye[:, 0], "left": eye[unit_i], "right": eye[unit_j],
            "bias": -torch.ones(n * n, dtype=torch.float64), "combine": combine, "decode": eye}


def _activation(name: str) -> nn.Module:
    return Square() if name == "square" else nn.ReLU()


def _linear(weight: Tensor, bias: Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def pair_block(group: FiniteGroup, *, activation: str = "square") -> nn.Sequential:
    """The two-layer block ``(e_a, e_b) ↦ e_{a·b}``: ``Linear → σ → Linear`` on two concatenated one-hot vectors.

    Args:
        group: the group.
        activation: ``"square"`` (irrep coordinates, ``2 Σ_ρ D_ρ³`` hidden units) or ``"relu"`` (``|G|²`` units);
            see the module docstring.

    Returns:
        A float64 ``nn.Sequential`` mapping inputs of shape ``(batch, 2|G|)`` to ``(batch, |G|)``; exact (to rounding)
        on one-hot inputs.

    Raises:
        ConfigError: an unknown activation.

    >>> from lmech.data.groups import cyclic
    >>> out = pair_block(cyclic(5))(torch.cat([torch.eye(5)[3], torch.eye(5)[4]]).double()[None]).detach()
    >>> int(out.argmax()), round(float(out.max()), 9)
    (2, 1.0)
    """
    p = _block_parts(group, activation)
    first = torch.cat([p["left"] @ p["encode"], p["right"] @ p["encode"]], 1)
    return nn.Sequential(_linear(first, p["bias"]), _activation(activation), _linear(p["decode"] @ p["combine"], None))


def composition_tree(group: FiniteGroup, k: int, *, activation: str = "square") -> nn.Sequential:
    """The feedforward network that composes adjacent pairs in parallel: ``⌈log₂ k⌉`` hidden layers.

    The ``k`` inputs are padded with the identity to ``2^L`` leaves, ``L = ⌈log₂ k⌉`` (a padded leaf is a constant,
    folded into the first bias). Level ``ℓ`` applies the pairwise block to ``2^{L−ℓ}`` pairs at once; the block's
    output map and the next block's input map are one ``nn.Linear``, so the network is
    ``Linear → σ → (Linear → σ) × (L − 1) → Linear`` with hidden widths ``2^{L−ℓ}·H``.

    Args:
        group: the group.
        k: sequence length, ≥ 1 (``k = 1`` is a single linear map, the identity).
        activation: ``"square"`` or ``"relu"`` (:func:`pair_block`).

    Returns:
        A float64 ``nn.Sequential`` from concatenated one-hot inputs ``(batch, k·|G|)`` (element ``t`` in columns
        ``t|G| … (t+1)|G| − 1``) to the one-hot product ``(batch, |G|)``.

    Raises:
        ConfigError: ``k < 1`` or an unknown activation.

    Source:
        Marchetti et al. (2026), arXiv:2602.03655 (multilayer networks compose adjacent pairs in ``log k`` layers).
    """
    levels = tree_depth(k)
    p = _block_parts(group, activation)
    n = group.order
    if levels == 0:
        return nn.Sequential(_linear(torch.eye(n, dtype=torch.float64), None))
    leaves = 2**levels
    pairs = leaves // 2
    h = p["left"].shape[0]
    first = torch.zeros(pairs * h, k * n, dtype=torch.float64)
    bias = p["bias"].repeat(pairs)
    for leaf in range(leaves):
        q, side = divmod(leaf, 2)
        w = p["left"] if side == 0 else p["right"]
        if leaf < k:
            first[q * h:(q + 1) * h, leaf * n:(leaf + 1) * n] = w @ p["encode"]
        else:
            bias[q * h:(q + 1) * h] += w @ p["identity"]
    layers: list[nn.Module] = [_linear(first, bias), _activation(activation)]
    for level in range(2, levels + 1):
        pairs = 2 ** (levels - level)
        step = torch.cat([p["left"] @ p["combine"], p["right"] @ p["combine"]], 1)  # (h, 2h): two children → parent
        layers += [_linear(torch.block_diag(*[step] * pairs), p["bias"].repeat(pairs)), _activation(activation)]
    layers.append(_linear(p["decode"] @ p["combine"], None))
    return nn.Sequential(*layers)


class CompositionRNN(nn.Module):
    """The recurrent network that composes one element per step (the paper's ``QuadraticRNN`` form):

    .. math::  h_1 = W_{init}\\, x_1, \\qquad h_t = \\sigma(W_{mix} h_{t-1} + W_{drive} x_t + b), \\ t = 2 … k,
               \\qquad \\hat y = W_{out} h_k,

    with ``W_mix = left·combine`` (the running product's code as the left operand), ``W_drive = right·encode``,
    ``W_out = decode·combine`` and ``W_init`` a right inverse of ``combine`` applied to the first element's code.
    ``k − 1`` nonlinear steps, hidden width ``H`` whatever ``k``.

    Args:
        group: the group.
        activation: ``"square"`` or ``"relu"`` (:func:`pair_block`).

    Shapes:
        ``forward(x)``: ``x`` of shape ``(batch, k, |G|)`` (one-hot elements) → ``(batch, |G|)``, float64.

    Raises:
        ConfigError: an unknown activation.

    Source:
        Marchetti et al. (2026), arXiv:2602.03655 (recurrent networks compose sequentially in ``k`` steps; their
        code's ``QuadraticRNN``, geometric-intelligence/group-agf, has this form with ``σ(z) = z²``).
    """

    def __init__(self, group: FiniteGroup, *, activation: str = "square"):
        super().__init__()
        p = _block_parts(group, activation)
        self.order, self.activation = group.order, _activation(activation)
        self.init = _linear(torch.linalg.pinv(p["combine"]) @ p["encode"], None)
        self.mix = _linear(p["left"] @ p["combine"], p["bias"])
        self.drive = _linear(p["right"] @ p["encode"], None)
        self.out = _linear(p["decode"] @ p["combine"], None)

    @property
    def hidden(self) -> int:
        return self.mix.out_features

    def forward(self, x: Tensor) -> Tensor:
        require(x.dim() == 3 and x.shape[-1] == self.order,
                f"inputs must have shape (batch, k, {self.order}), got {tuple(x.shape)}")
        h = self.init(x[:, 0])
        for t in range(1, x.shape[1]):
            h = self.activation(self.mix(h) + self.drive(x[:, t]))
        return self.out(h)


def composition_mlp(order: int, k: int, depth: int, width: int, *, seed: int = 0,
                    dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The trainable network: a ReLU MLP with ``depth`` hidden layers of ``width`` units, from the concatenated
    one-hot elements ``(batch, k·order)`` to ``order`` logits (:func:`lmech.models.mlp`, seeded privately).

    Raises:
        ConfigError: ``depth < 1``, ``width < 1``, ``k < 1`` or ``order < 1``.
    """
    for name, value in (("order", order), ("k", k), ("depth", depth), ("width", width)):
        require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"{name} must be an integer >= 1, got {value!r}")
    return mlp(k * order, [width] * depth, order, activation="relu", seed=seed, dtype=dtype)


def hidden_layers(model: nn.Module) -> int:
    """The number of nonlinear layers (``Square`` or ``ReLU`` modules) in a sequential network."""
    return sum(isinstance(m, (Square, nn.ReLU)) for m in model.modules())
