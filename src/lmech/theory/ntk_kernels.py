"""Infinite-width NNGP and NTK of fully connected networks (ReLU, erf, identity), any depth.

A network with ``L = depth`` hidden layers of widths ``n_1, …, n_L`` on inputs of dimension
``n_0 = d``, weight variance ``σ_w²`` and bias variance ``σ_b²`` (every layer, the output layer
included; see :func:`lmech.models.ntk_mlp`). As the widths grow, its output at initialisation
converges to a Gaussian process with kernel ``Σ^{L+1}`` (the NNGP; Neal 1996, Lee et al. 2018,
arXiv:1711.00165) and, in the NTK parametrisation, its neural tangent kernel converges to the
deterministic ``Θ^{L+1}`` (Jacot, Gabriel, Hongler 2018, arXiv:1806.07572, Theorem 1; Lee et al.
2019, arXiv:1902.06720, eq. (1) and §2; Arora et al. 2019, arXiv:1904.11955, §3):

.. math::

    \\Sigma^{1}(x, x') = \\sigma_w^2 \\frac{x \\cdot x'}{d} + \\sigma_b^2, \\qquad \\Theta^{1} = \\Sigma^{1},

    \\Sigma^{l+1} = \\sigma_w^2\\, \\mathbb{E}[\\phi(u)\\phi(v)] + \\sigma_b^2, \\qquad
    \\dot\\Sigma^{l+1} = \\mathbb{E}[\\phi'(u)\\phi'(v)], \\qquad
    (u, v) \\sim \\mathcal{N}\\Big(0, \\begin{pmatrix} \\Sigma^{l}(x, x) & \\Sigma^{l}(x, x') \\\\
    \\Sigma^{l}(x', x) & \\Sigma^{l}(x', x') \\end{pmatrix}\\Big),

    \\Theta^{l+1} = \\Sigma^{l+1} + \\sigma_w^2\\, \\dot\\Sigma^{l+1}\\, \\Theta^{l}.

The Gaussian expectations ("dual activations", Daniely, Frostig, Singer 2016, arXiv:1602.05897) are
closed-form (:func:`dual_activation`): the arc-cosine kernels of degree 1 and 0 for ReLU (Cho & Saul
2009, "Kernel Methods for Deep Learning", NeurIPS) and Williams' arcsine kernel for erf
(Williams 1997, "Computing with Infinite Networks", NeurIPS 9). All arrays are float64 numpy and
every step is elementwise over the ``(n1, n2)`` Gram matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import require

__all__ = ["InfiniteWidthKernels", "dual_activation", "infinite_width_kernels", "nngp_kernel", "ntk_kernel"]

ACTIVATIONS = ("relu", "erf", "identity")
PARAMETRIZATIONS = ("ntk", "standard")


@dataclass(frozen=True, kw_only=True)
class InfiniteWidthKernels:
    """The infinite-width kernels of a fully connected network's output.

    Attributes:
        nngp: ``Σ^{L+1}(x, x')``, the covariance of the output at initialisation, of shape (n1, n2),
            in output² units.
        ntk: ``Θ^{L+1}(x, x')``, the neural tangent kernel, of shape (n1, n2), in output² per unit of
            ``lr × steps`` (gradient flow on a loss ``ℓ`` moves the outputs as
            ``df(x)/dt = −Σ_{x'} Θ(x, x') ∂ℓ/∂f(x')`` with ``t = lr × steps``).
    """

    nngp: np.ndarray
    ntk: np.ndarray


def _duals(q1: np.ndarray, q2: np.ndarray, c: np.ndarray, activation: str, unit_diag: bool = False):
    """``(E[φ(u)φ(v)], E[φ'(u)φ'(v)])`` for ``Var u = q1``, ``Var v = q2``, ``Cov(u, v) = c`` (no checks).

    ``unit_diag`` marks a square Gram matrix whose diagonal has ``c = q1 = q2``: its correlation is
    set to exactly 1 there, so rounding cannot move it off the kink of ``arccos``. The arithmetic is
    in place where it can be (a 2048 × 2048 Gram matrix is 32 MB per temporary).
    """
    if activation == "identity":
        return c.copy(), np.ones_like(c)
    if activation == "relu":
        norm = np.sqrt(q1 * q2)
        positive = norm > 0
        rho = np.divide(c, norm, out=np.zeros_like(c), where=positive)
        np.clip(rho, -1.0, 1.0, out=rho)
        if unit_diag:
            np.fill_diagonal(rho, np.where(np.diagonal(positive), 1.0, 0.0))
        k_dot = np.arccos(rho)
        np.subtract(math.pi, k_dot, out=k_dot)  # π − θ
        k = np.multiply(rho, rho)
        np.subtract(1.0, k, out=k)
        np.sqrt(k, out=k)  # sin θ
        rho *= k_dot
        k += rho  # sin θ + (π − θ) cos θ
        k *= norm
        k /= 2.0 * math.pi
        k_dot /= 2.0 * math.pi
        return k, k_dot
    # erf (Williams 1997); 1 + 2q1 + 2q2 + 4(q1 q2 − c²) = det(I + 2 Cov) >= 1 even for a rounded c.
    a1, a2 = 1.0 + 2.0 * q1, 1.0 + 2.0 * q2
    k = np.sqrt(a1 * a2)
    np.divide(2.0 * c, k, out=k)
    np.clip(k, -1.0, 1.0, out=k)
    np.arcsin(k, out=k)
    k *= 2.0 / math.pi
    k_dot = np.multiply(c, c)
    np.subtract(q1 * q2, k_dot, out=k_dot)
    np.maximum(k_dot, 0.0, out=k_dot)
    k_dot *= 4.0
    k_dot += a1 + a2 - 1.0
    np.sqrt(k_dot, out=k_dot)
    np.divide(4.0 / math.pi, k_dot, out=k_dot)
    return k, k_dot


def _diag_dual(q: np.ndarray, activation: str) -> np.ndarray:
    """``E[φ(u)²]`` for ``u ~ N(0, q)``."""
    if activation == "relu":
        return q / 2.0
    if activation == "erf":
        return (2.0 / math.pi) * np.arcsin(2.0 * q / (1.0 + 2.0 * q))
    return q


def dual_activation(var1, var2, cov, *, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian expectations of an activation and of its derivative for a centred bivariate normal.

    For ``(u, v) ~ N(0, [[q, c], [c, q']])`` with ``q = var1``, ``q' = var2``, ``c = cov``:

    .. math::

        \\text{relu:}\\quad \\mathbb{E}[\\phi(u)\\phi(v)] = \\frac{\\sqrt{q q'}}{2\\pi}
        \\big(\\sin\\theta + (\\pi - \\theta)\\cos\\theta\\big), \\quad
        \\mathbb{E}[\\phi'(u)\\phi'(v)] = \\frac{\\pi - \\theta}{2\\pi}, \\quad
        \\theta = \\arccos\\frac{c}{\\sqrt{q q'}}

        \\text{erf:}\\quad \\mathbb{E}[\\phi(u)\\phi(v)] = \\frac{2}{\\pi}
        \\arcsin\\frac{2c}{\\sqrt{(1 + 2q)(1 + 2q')}}, \\quad
        \\mathbb{E}[\\phi'(u)\\phi'(v)] = \\frac{4}{\\pi}\\frac{1}{\\sqrt{(1 + 2q)(1 + 2q') - 4c^2}}

        \\text{identity:}\\quad c \\ \\text{and}\\ 1.

    ReLU: the arc-cosine kernels of degree 1 and 0 divided by 2 (Cho & Saul 2009, NeurIPS:
    ``k_n = (1/π) ‖x‖ⁿ‖y‖ⁿ J_n(θ)`` with ``J_1 = sin θ + (π − θ) cos θ``, ``J_0 = π − θ``), with
    ``φ' = 1[u > 0]``; the correlation is clipped to [−1, 1], and set to 0 when ``q q' = 0`` (then
    the first expectation is 0 and the second, which multiplies a zero NTK in the recursion, is a
    convention: ``relu'(0)`` is ambiguous). Near ``ρ = ±1`` a rounding error ``δ`` in ``ρ`` moves
    ``θ`` by ``√(2δ)``, so for (anti)parallel inputs the ReLU kernels are accurate to about 1e-8
    relative, not 1e-16 (:func:`infinite_width_kernels` sets ``ρ = 1`` on a Gram matrix's diagonal).
    erf: Williams (1997, NeurIPS 9); the derivative
    ``erf'(u) = (2/√π) e^{−u²}`` gives ``(4/π) E[e^{−u²−v²}] = (4/π) det(I + 2Σ)^{−1/2}``.

    Args:
        var1: ``q ≥ 0``; any shape broadcasting with the others.
        var2: ``q' ≥ 0``.
        cov: ``c`` with ``c² ≤ q q'`` (up to rounding).
        activation: ``"relu"``, ``"erf"`` or ``"identity"``.

    Returns:
        ``(E[φ(u)φ(v)], E[φ'(u)φ'(v)])``, float64 arrays of the broadcast shape.

    Raises:
        ConfigError: an unknown activation, a negative or non-finite variance, or ``c² > q q'``
            beyond rounding (not a covariance matrix).

    ReLU at equal inputs (``θ = 0``) gives ``E[relu(u)²] = q/2`` and ``P(u > 0) = 1/2``:

    >>> k, k_dot = dual_activation(3.0, 3.0, 3.0, activation="relu")
    >>> float(k), float(k_dot)
    (1.5, 0.5)
    """
    require(activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    q1, q2, c = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (var1, var2, cov)))
    require(
        bool(np.all(np.isfinite(q1)) and np.all(np.isfinite(q2)) and np.all(np.isfinite(c))),
        "var1, var2 and cov must be finite, got a NaN or inf entry",
    )
    require(bool(np.all(q1 >= 0) and np.all(q2 >= 0)), "var1 and var2 must be >= 0 (variances)")
    excess = c * c - q1 * q2
    require(
        bool(np.all(excess <= 1e-12 * np.maximum(q1 * q2, np.finfo(float).tiny))),
        f"cov² must be <= var1 · var2 (a covariance matrix), got max cov² − var1·var2 = {excess.max():.3g}",
    )
    k, k_dot = _duals(q1.reshape(-1), q2.reshape(-1), c.reshape(-1), activation)  # 1-D: ufuncs write in place
    return k.reshape(c.shape), k_dot.reshape(c.shape)


def _as_inputs(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor; the theory does not need torch itself
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    require(
        x.ndim == 2 and x.shape[1] >= 1,
        f"{name} must be a 2-D array of shape (n_samples, in_features), got shape {x.shape}",
    )
    require(bool(np.all(np.isfinite(x))), f"{name} must be finite, got a NaN or inf entry")
    return x


def _check_widths(widths, depth: int, parametrization: str) -> tuple[int, ...]:
    if widths is None:
        require(
            parametrization == "ntk" or depth == 0,
            f"widths (the {depth} hidden widths) are required for parametrization='standard': its NTK grows "
            f"with the widths; pass e.g. widths=[1024] * {depth}, or use parametrization='ntk'",
        )
        return ()
    widths = tuple(widths)
    require(
        len(widths) == depth and all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths),
        f"widths must be {depth} integers >= 1 (one per hidden layer, depth={depth}), got {list(widths)!r}",
    )
    return tuple(int(w) for w in widths)


def infinite_width_kernels(
    x1,
    x2=None,
    *,
    depth: int,
    activation: str = "relu",
    weight_var: float = 2.0,
    bias_var: float = 0.0,
    parametrization: str = "ntk",
    widths: Sequence[int] | None = None,
) -> InfiniteWidthKernels:
    """The NNGP ``Σ^{L+1}`` and NTK ``Θ^{L+1}`` of a fully connected network, by the layer recursion.

    ``parametrization="ntk"`` is the network of :func:`lmech.models.ntk_mlp` (all parameters
    ``N(0, 1)``, scales ``σ_w/√n_l`` and ``σ_b`` as multipliers; Jacot et al. 2018, arXiv:1806.07572,
    Theorem 1, whose ``β`` is our ``σ_b`` and whose ``σ_w`` is 1; Lee et al. 2019, arXiv:1902.06720,
    eq. (1)):

    .. math::

        \\Sigma^{l+1} = \\sigma_w^2\\, \\mathbb{E}[\\phi(u)\\phi(v)] + \\sigma_b^2, \\qquad
        \\Theta^{l+1} = \\Sigma^{l+1} + \\sigma_w^2\\, \\dot\\Sigma^{l+1}\\, \\Theta^{l}, \\qquad
        \\Theta^{1} = \\Sigma^{1} = \\sigma_w^2\\, x \\cdot x' / d + \\sigma_b^2.

    ``parametrization="standard"``: ``W^{l+1} ~ N(0, σ_w²/n_l)`` and ``b ~ N(0, σ_b²)`` are the
    trained parameters themselves (``n_0 = d``). The outputs, hence the NNGP, are the same random
    function, and so is the back-propagated factor ``σ_w² Σ̇``; but the gradient with respect to
    ``W = (σ_w/√n_l) ω`` is ``√n_l/σ_w`` times that with respect to the ``N(0, 1)`` matrix ``ω``, and
    with respect to ``b = σ_b ν`` it is ``1/σ_b`` times that for ``ν``. Each layer's own weight term is
    therefore ``n_l/σ_w²`` times larger and its bias term is 1 instead of ``σ_b²`` (Lee et al. 2019,
    arXiv:1902.06720, §2 and the appendix on the standard parametrisation; Sohl-Dickstein, Novak,
    Schoenholz, Lee 2020, arXiv:2001.07301):

    .. math::

        \\Theta_{SP}^{1} = x \\cdot x' + \\delta_b, \\qquad
        \\Theta_{SP}^{l+1} = n_l\\, \\mathbb{E}[\\phi(u)\\phi(v)] + \\delta_b
                            + \\sigma_w^2\\, \\dot\\Sigma^{l+1}\\, \\Theta_{SP}^{l},

    with ``δ_b = 1`` when the network has biases (taken to be when ``σ_b² > 0``) and 0 otherwise.
    A finite SP network's NTK equals this up to relative fluctuations of order ``1/√n``; it grows
    linearly with the widths (``Θ_SP / n`` has a limit when all widths are ``n``), which is why SP
    needs a learning rate ``∝ 1/n`` to stay stable. A network with zero-initialised but trained
    biases (``σ_b² = 0`` with biases) has ``δ_b = 1``: add ``depth + 1`` to this ``ntk``.

    ``depth = 0`` is the linear model ``f(x) = σ_w w·x/√d + σ_b b``, whose NNGP and NTK are both
    ``Σ^1`` (NTK parametrisation). The cost is ``O(n1 n2 (d + depth))``.

    Args:
        x1: inputs of shape (n1, d) (numpy, a list, or a torch tensor).
        x2: inputs of shape (n2, d); ``None`` means ``x1`` (a symmetric Gram matrix).
        depth: number of hidden layers ``L ≥ 0``.
        activation: ``φ``: ``"relu"``, ``"erf"`` or ``"identity"``.
        weight_var: ``σ_w² > 0``, every layer.
        bias_var: ``σ_b² ≥ 0``, every layer.
        parametrization: ``"ntk"`` or ``"standard"``.
        widths: the hidden widths ``(n_1, …, n_L)``; required for ``"standard"`` (at ``depth ≥ 1``);
            validated but unused by ``"ntk"``, whose limit does not depend on them.

    Returns:
        :class:`InfiniteWidthKernels` with float64 ``nngp`` and ``ntk`` of shape (n1, n2).

    Raises:
        ConfigError: inputs not 2-D, non-finite, or with different feature dimensions; ``depth`` not
            an integer ``≥ 0``; ``weight_var ≤ 0`` or ``bias_var < 0`` (or non-finite); an unknown
            ``activation`` or ``parametrization``; ``widths`` missing for ``"standard"`` or not
            ``depth`` integers ``≥ 1``.

    ReLU with ``σ_w² = 2``, ``σ_b² = 0`` keeps the diagonal at ``q = 2‖x‖²/d`` through every layer and
    adds ``q`` to the NTK's diagonal per layer: ``Θ(x, x) = (depth + 1) q``:

    >>> k = infinite_width_kernels([[1.0, 1.0], [1.0, -1.0]], depth=2)
    >>> k.nngp.diagonal().tolist(), k.ntk.diagonal().tolist()
    ([2.0, 2.0], [6.0, 6.0])
    """
    require(
        isinstance(depth, (int, np.integer)) and not isinstance(depth, bool) and depth >= 0,
        f"depth must be an integer >= 0 (the number of hidden layers), got {depth!r}",
    )
    require(activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    require(
        parametrization in PARAMETRIZATIONS,
        f"parametrization must be one of {PARAMETRIZATIONS}, got {parametrization!r}",
    )
    require(
        isinstance(weight_var, (int, float, np.floating)) and math.isfinite(weight_var) and weight_var > 0,
        f"weight_var (σ_w²) must be finite and > 0, got {weight_var!r}",
    )
    require(
        isinstance(bias_var, (int, float, np.floating)) and math.isfinite(bias_var) and bias_var >= 0,
        f"bias_var (σ_b²) must be finite and >= 0, got {bias_var!r}",
    )
    widths = _check_widths(widths, depth, parametrization)
    same = x2 is None
    x1 = _as_inputs(x1, "x1")
    x2 = x1 if same else _as_inputs(x2, "x2")
    require(
        x2.shape[1] == x1.shape[1],
        f"x1 and x2 must have the same number of features, got shapes {x1.shape} and {x2.shape}",
    )
    wv, bv, d = float(weight_var), float(bias_var), x1.shape[1]
    dot = x1 @ x2.T
    if same:
        dot = (dot + dot.T) / 2.0  # exactly symmetric, so is everything computed from it
    sigma = wv / d * dot + bv
    q1 = sigma.diagonal().copy() if same else wv / d * np.einsum("ij,ij->i", x1, x1) + bv
    q2 = q1 if same else wv / d * np.einsum("ij,ij->i", x2, x2) + bv
    standard = parametrization == "standard"
    bias_term = (1.0 if bv > 0 else 0.0) if standard else bv
    ntk = dot + bias_term if standard else sigma.copy()
    for layer in range(depth):
        k, k_dot = _duals(q1[:, None], q2[None, :], sigma, activation, unit_diag=same)
        ntk *= k_dot  # Θ ← n_l k + δ_b + σ_w² k̇ Θ (SP) or σ_w² k + σ_b² + σ_w² k̇ Θ (NTK), in place
        ntk *= wv
        ntk += bias_term
        sigma = np.multiply(k, wv, out=k)
        ntk += sigma if not standard else widths[layer] / wv * sigma
        sigma += bv
        q1 = wv * _diag_dual(q1, activation) + bv
        q2 = q1 if same else wv * _diag_dual(q2, activation) + bv
    return InfiniteWidthKernels(nngp=sigma, ntk=ntk)


def nngp_kernel(
    x1, x2=None, *, depth: int, activation: str = "relu", weight_var: float = 2.0, bias_var: float = 0.0
) -> np.ndarray:
    """The NNGP kernel ``Σ^{L+1}(x, x')`` of shape (n1, n2); the same in every parametrisation.

    See :func:`infinite_width_kernels` for the recursion, the arguments and the errors.

    The linear model (``depth = 0``) is ``σ_w² x·x'/d + σ_b²``:

    >>> nngp_kernel([[1.0, 2.0]], [[3.0, 4.0]], depth=0, weight_var=2.0, bias_var=0.5).tolist()
    [[11.5]]
    """
    return infinite_width_kernels(
        x1, x2, depth=depth, activation=activation, weight_var=weight_var, bias_var=bias_var
    ).nngp


def ntk_kernel(
    x1,
    x2=None,
    *,
    depth: int,
    activation: str = "relu",
    weight_var: float = 2.0,
    bias_var: float = 0.0,
    parametrization: str = "ntk",
    widths: Sequence[int] | None = None,
) -> np.ndarray:
    """The NTK ``Θ^{L+1}(x, x')`` of shape (n1, n2).

    See :func:`infinite_width_kernels` for the recursion, the parametrisations, the arguments and
    the errors.

    A one-hidden-layer identity network (NTK parametrisation, ``σ_b = 0``) has
    ``Θ = Σ² + σ_w² Σ¹ = 2 σ_w⁴ x·x'/d``:

    >>> ntk_kernel([[1.0, 2.0]], [[3.0, 4.0]], depth=1, activation="identity", weight_var=1.0).tolist()
    [[11.0]]
    """
    return infinite_width_kernels(
        x1,
        x2,
        depth=depth,
        activation=activation,
        weight_var=weight_var,
        bias_var=bias_var,
        parametrization=parametrization,
        widths=widths,
    ).ntk
