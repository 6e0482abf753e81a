"""Learning dynamics of deep linear networks: saddle-to-saddle staircases, one mode at a time.

Setting (Saxe, McClelland & Ganguli 2014, arXiv:1312.6120, §2 and eqs. (6)–(8); Arora et al. 2018,
arXiv:1802.06509, Theorem 1; Kunin et al. 2024, arXiv:2406.06158, §3): a depth-``L`` linear network
``W = W_L ⋯ W_1`` is trained by gradient flow on the population loss with whitened inputs
(``Σ_xx = E[x xᵀ] = I``),

.. math::  \\mathcal{L}(W) = \\tfrac12\\, \\mathbb{E}\\,\\lVert y - W x\\rVert^2
           = \\tfrac12 \\lVert \\Sigma_{yx} - W \\rVert_F^2 + \\tfrac12\\big(\\operatorname{tr}\\Sigma_{yy}
             - \\lVert \\Sigma_{yx}\\rVert_F^2\\big),

with input–output correlation ``Σ_yx = E[y xᵀ] = U diag(s) Vᵀ``. Time is gradient-flow time
``t = lr × steps`` for plain gradient descent on *this* loss (a factor ½ and no ``1/n`` beyond the
expectation; a loss without the ½ runs the same curves twice as fast). From a small *balanced*
(``W_{l+1}ᵀ W_{l+1} = W_l W_lᵀ``) and *aligned* initialisation whose product is
``U diag(a₀) Vᵀ``, every layer keeps the per-mode strength ``w_μ`` and the product's mode strength
``a_μ = u_μᵀ W v_μ = w_μ^L`` follows, independently of the other modes,

.. math::  \\frac{dw}{dt} = w^{L-1}(s - w^L)
           \\quad\\Longrightarrow\\quad
           \\frac{da}{dt} = L\\, a^{2 - 2/L}\\,(s - a).

Depth 2 gives the logistic curve of Saxe et al. eq. (8) (there written with ``τ = 1/lr``); larger
``s`` are learned first, each after a plateau of length ``≈ ln(s/a₀)/(2s)`` (depth 2) or
``≈ 1/((L-2) s a₀^{1-2/L})`` (depth ``L ≥ 3``), so the loss falls in a staircase.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import hyp2f1

from ..config import require
from ..errors import ConfigError


def _check_modes(singular_values, init_strength, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(s, a₀, depth)``; return ``s`` of shape (M,) and ``a₀`` broadcast to (M,)."""
    require(
        isinstance(depth, (int, np.integer)) and not isinstance(depth, bool) and depth >= 2,
        f"depth must be an integer >= 2 (number of weight matrices), got {depth!r}",
    )
    s = np.atleast_1d(np.asarray(singular_values, dtype=float))
    require(
        s.ndim == 1 and s.size > 0 and bool(np.all(np.isfinite(s))) and bool(np.all(s > 0)),
        f"singular_values must be a non-empty 1-D array of finite values > 0, got {singular_values!r}",
    )
    a0 = np.asarray(init_strength, dtype=float)
    require(
        a0.ndim == 0 or a0.shape == s.shape,
        f"init_strength must be a scalar or of shape {s.shape} like singular_values, got shape {a0.shape}",
    )
    a0 = np.broadcast_to(a0, s.shape).astype(float)
    require(
        bool(np.all(np.isfinite(a0))) and bool(np.all(a0 > 0)) and bool(np.all(a0 < s)),
        f"init_strength must satisfy 0 < init_strength < singular_values (small init below every "
        f"target strength), got {init_strength!r} for singular_values {singular_values!r}",
    )
    return s, a0


def mode_trajectories(
    singular_values: np.ndarray, times: np.ndarray, *, depth: int, init_strength: float | np.ndarray
) -> np.ndarray:
    """Each mode's strength ``a_μ(t) = u_μᵀ W_L⋯W_1 v_μ`` under gradient flow.

    Depth 2 in closed form (Saxe et al. 2014, arXiv:1312.6120, eq. (8), with ``τ = 1``):

    .. math::  a(t) = \\frac{s\\, a_0\\, e^{2 s t}}{s - a_0 + a_0 e^{2 s t}},

    depth ``L ≥ 3`` by integrating ``da/dt = L a^{2-2/L} (s - a)`` (as ``d\\ln a/dt``) with
    :func:`scipy.integrate.solve_ivp` (LSODA, ``rtol=1e-11``), all modes at once.

    Args:
        singular_values: target singular values ``s_μ > 0`` of ``Σ_yx``, of shape (M,).
        times: gradient-flow times ``t = lr × steps`` (non-decreasing, ≥ 0), of shape (T,).
        depth: number of weight matrices ``L ≥ 2``.
        init_strength: the product's initial mode strength ``a₀`` with ``0 < a₀ < s_μ``; a scalar or
            of shape (M,). Each layer starts at ``a₀^{1/L}``.

    Returns:
        ``a_μ(t)`` of shape (T, M), in the units of ``s``.

    Raises:
        ConfigError: on ``depth`` not an integer ≥ 2, non-positive or non-finite ``s``, ``a₀`` outside
            ``(0, s_μ)``, or ``times`` negative, non-finite or decreasing.

    >>> mode_trajectories([2.0], [0.0, 1e6], depth=2, init_strength=0.5).ravel().tolist()
    [0.5, 2.0]
    """
    s, a0 = _check_modes(singular_values, init_strength, depth)
    t = np.atleast_1d(np.asarray(times, dtype=float))
    require(
        t.ndim == 1 and bool(np.all(np.isfinite(t))) and bool(np.all(t >= 0)) and bool(np.all(np.diff(t) >= 0)),
        f"times must be a 1-D array of finite, non-decreasing values >= 0 (t = lr × steps), got {times!r}",
    )
    if t.size == 0:
        return np.empty((0, s.size))
    if depth == 2:
        # s / (1 + (s/a₀ − 1) e^{−2st}): the logistic without overflow at large t.
        return s / (1.0 + (s / a0 - 1.0) * np.exp(-2.0 * s * t[:, None]))
    if t[-1] == 0:
        return np.broadcast_to(a0, (t.size, s.size)).copy()
    exponent = 1.0 - 2.0 / depth  # d ln a / dt = L a^{1 − 2/L} (s − a)

    def rhs(_t: float, z: np.ndarray) -> np.ndarray:
        a = np.exp(z)
        return depth * a**exponent * (s - a)

    def jac(_t: float, z: np.ndarray) -> np.ndarray:
        a = np.exp(z)
        return np.diag(depth * a**exponent * (exponent * (s - a) - a))

    uniq, inverse = np.unique(t, return_inverse=True)
    sol = solve_ivp(rhs, (0.0, uniq[-1]), np.log(a0), method="LSODA", t_eval=uniq, jac=jac, rtol=1e-11, atol=1e-12)
    if not sol.success:  # pragma: no cover - LSODA on this smooth scalar system does not fail
        raise RuntimeError(f"solve_ivp failed on the deep linear mode ODE: {sol.message}")
    return np.minimum(np.exp(sol.y.T[inverse.ravel()]), s)


def _primitive_remainder(x: np.ndarray, depth: int) -> np.ndarray:
    """``∫₀ˣ u^{2/L - 1} / (1 - u) du = x^b/b · ₂F₁(1, b; b+1; x)`` with ``b = 2/L`` (for ``0 ≤ x < 1``)."""
    b = 2.0 / depth
    return x**b / b * hyp2f1(1.0, b, b + 1.0, x)


def mode_learning_times(
    singular_values: np.ndarray,
    *,
    depth: int,
    init_strength: float | np.ndarray,
    fraction: float = 0.5,
) -> np.ndarray:
    """The gradient-flow time at which each mode reaches ``a_μ = fraction · s_μ``.

    Separating variables in ``da/dt = L a^{2-2/L}(s - a)`` with ``x = a/s``, ``p = 2 - 2/L``:

    .. math::  t_μ = \\frac{1}{L s_μ^{p}} \\int_{x_0}^{f} \\frac{dx}{x^{p}(1 - x)},
               \\qquad x_0 = a_0 / s_μ.

    Depth 2 (``p = 1``): ``t = \\frac{1}{2s}\\ln\\frac{f (s - a_0)}{(1 - f) a_0}`` (Saxe et al. 2014,
    arXiv:1312.6120, eq. (9)). Depth ``L ≥ 3``: splitting ``1/(x^p(1-x)) = x^{-p} + x^{1-p}/(1-x)``,

    .. math::  \\int_{x_0}^{f} = \\frac{x_0^{1-p} - f^{1-p}}{p - 1} + R(f) - R(x_0),
               \\qquad R(x) = \\frac{x^{b}}{b}\\, {}_2F_1(1, b; b + 1; x),\\ b = 2/L,

    so for small ``a₀`` the plateau lasts ``x_0^{1-p}/((p-1) L s^p) = 1/((L-2)\\, s\\, a_0^{1-2/L})``
    to leading order, longer for smaller ``s`` (Saxe et al. 2014, §3; Kunin et al. 2024,
    arXiv:2406.06158, §3).

    Args:
        singular_values: target singular values ``s_μ > 0``, of shape (M,).
        depth: number of weight matrices ``L ≥ 2``.
        init_strength: initial product mode strength ``a₀``, ``0 < a₀ < s_μ``; scalar or shape (M,).
        fraction: ``f``; the time is returned for ``a = f s``. Needs ``a₀/s_μ ≤ f < 1``.

    Returns:
        Times ``t = lr × steps`` of shape (M,).

    Raises:
        ConfigError: on invalid ``s``, ``a₀`` or ``depth`` (see :func:`mode_trajectories`), or
            ``fraction`` outside ``[a₀/s_μ, 1)``.

    >>> round(float(mode_learning_times([1.0], depth=2, init_strength=0.01)[0]), 10)  # ln(99) / 2
    2.2975599251
    """
    s, a0 = _check_modes(singular_values, init_strength, depth)
    x0 = a0 / s
    require(
        np.isfinite(fraction) and bool(np.all(x0 <= fraction)) and fraction < 1,
        f"fraction must be in [init_strength/singular_values, 1) = [{x0.max():.3g}, 1), got {fraction!r}",
    )
    if depth == 2:
        return np.log(fraction * (s - a0) / ((1.0 - fraction) * a0)) / (2.0 * s)
    p = 2.0 - 2.0 / depth
    integral = (x0 ** (1.0 - p) - fraction ** (1.0 - p)) / (p - 1.0)
    integral = integral + _primitive_remainder(np.asarray(fraction, dtype=float), depth) - _primitive_remainder(x0, depth)
    return integral / (depth * s**p)


def staircase_loss(
    singular_values: np.ndarray, trajectories: np.ndarray, *, total_output_variance: float | None = None
) -> np.ndarray:
    """The population loss along mode trajectories: a staircase, one drop per learned mode.

    .. math::  \\mathcal{L}(t) = \\tfrac12 \\sum_μ \\big(s_μ - a_μ(t)\\big)^2
               + \\tfrac12\\Big(\\operatorname{tr}\\Sigma_{yy} - \\sum_μ s_μ^2\\Big),

    the loss ``½ E‖y − W x‖²`` with ``Σ_xx = I`` for ``W = Σ_μ a_μ u_μ v_μᵀ``. The constant is the
    output variance that no linear map can explain (noise, or modes not listed in
    ``singular_values``); it is included only when ``total_output_variance = tr Σ_yy = E‖y‖²`` is
    given, otherwise the loss is relative to the best linear fit.

    Args:
        singular_values: ``s_μ``, of shape (M,).
        trajectories: ``a_μ(t)`` of shape (T, M) (as from :func:`mode_trajectories`) or (M,).
        total_output_variance: ``E‖y‖²``, at least ``Σ s_μ²``; ``None`` drops the constant.

    Returns:
        The loss, of shape (T,) (or a 0-d array for a (M,) input).

    Raises:
        ConfigError: if the shapes disagree, values are non-finite, or
            ``total_output_variance < Σ s_μ²``.

    >>> staircase_loss([2.0, 1.0], [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0]]).tolist()
    [2.5, 0.5, 0.0]
    """
    s = np.atleast_1d(np.asarray(singular_values, dtype=float))
    a = np.asarray(trajectories, dtype=float)
    require(
        s.ndim == 1 and bool(np.all(np.isfinite(s))) and bool(np.all(s > 0)),
        f"singular_values must be a 1-D array of finite values > 0, got {singular_values!r}",
    )
    require(
        a.ndim in (1, 2) and a.shape[-1] == s.size and bool(np.all(np.isfinite(a))),
        f"trajectories must be finite, of shape (T, {s.size}) or ({s.size},), got shape {a.shape}",
    )
    loss = 0.5 * np.sum((s - a) ** 2, axis=-1)
    if total_output_variance is None:
        return loss
    captured = float(np.sum(s**2))
    require(
        np.isfinite(total_output_variance) and total_output_variance >= captured * (1 - 1e-12),
        f"total_output_variance must be >= sum(singular_values**2) = {captured:.6g} "
        f"(E‖y‖² bounds the explainable part), got {total_output_variance!r}",
    )
    return loss + 0.5 * max(total_output_variance - captured, 0.0)


def _blowup_time(p0: np.ndarray, q0: np.ndarray, depth: int, w: float, growth: float = 1e3) -> float:
    """Time (in units of ``s t``) at which one mode's small-weight dynamics blow up.

    With every hidden-to-hidden layer ``w`` × orthogonal and hidden coordinates chosen so they are
    ``w I``, the saturation-free gradient flow of ``a = qᵀ G_{L-1}⋯G_2 p`` (``ṗ = ∂a/∂p`` etc., in time
    ``s t``) stays in ``span{p₀, q₀}`` in every hidden layer: an exact two-unit network, integrated
    until ``a`` reaches ``(growth · w)^L``; the remaining time is the balanced network's,
    ``1 / ((L − 2) a^{(L−2)/L})``. Returns ``inf`` if it does not blow up.
    """
    basis, _ = np.linalg.qr(np.stack([p0, q0], axis=1))
    k, n_mid = basis.shape[1], depth - 2
    start = np.concatenate([basis.T @ p0, basis.T @ q0, np.tile((w * np.eye(k)).ravel(), n_mid)])

    def unpack(z: np.ndarray):
        return z[:k], z[k:2 * k], [z[2 * k + i * k * k: 2 * k + (i + 1) * k * k].reshape(k, k) for i in range(n_mid)]

    def strength(z: np.ndarray) -> float:
        p, q, mids = unpack(z)
        for g in mids:
            p = g @ p
        return float(q @ p)

    def rhs(_t: float, z: np.ndarray) -> np.ndarray:
        p, q, mids = unpack(z)
        forward = [p]  # G_l ⋯ G_2 p
        for g in mids:
            forward.append(g @ forward[-1])
        backward = [q]  # (G_{L-1} ⋯ G_l)ᵀ q, built from the top
        for g in reversed(mids):
            backward.append(g.T @ backward[-1])
        backward.reverse()  # backward[i] = (G_{L-1} ⋯ G_{i+2})ᵀ q pairs with forward[i]
        d_mids = [np.outer(backward[i + 1], forward[i]) for i in range(n_mid)]
        return np.concatenate([backward[0], forward[-1], *(d.ravel() for d in d_mids)])

    target = (growth * w) ** depth
    reached = lambda _t, z: strength(z) - target  # noqa: E731 - solve_ivp's event protocol
    reached.terminal = True
    horizon = 1e3 / w ** (depth - 2)  # far beyond the balanced blow-up time 1/((L−2) w^{L−2})
    sol = solve_ivp(rhs, (0.0, horizon), start, events=reached, method="DOP853", rtol=1e-10, atol=1e-14 * w)
    if not len(sol.t_events[0]):
        return float("inf")
    return float(sol.t_events[0][0]) + 1.0 / ((depth - 2) * target ** ((depth - 2) / depth))


def effective_init_strength(layers: list[np.ndarray], u: np.ndarray, v: np.ndarray, w: float | None = None) -> np.ndarray:
    """Each mode's effective initial strength ``a₀`` from a random small start, for the balanced theory.

    Depth 2: ``a₀ = |c_μ|²`` with ``c_μ = (W_1 v_μ + W_2ᵀ u_μ)/2``, the growing solution of the
    linearised dynamics ``d(W_1 v)/dt = s W_2ᵀ u``, ``d(W_2ᵀ u)/dt = s W_1 v`` (``a_μ ≈ |c_μ|² e^{2st}``,
    which the logistic of Saxe et al. 2014, arXiv:1312.6120, eq. (8), matches while ``a ≪ s``).
    Depth ``L ≥ 3`` with hidden-to-hidden layers ``w`` × orthogonal:
    ``a₀ = w₀^L`` with ``w₀ = ((L − 2) τ*)^{−1/(L−2)}``, the balanced network whose saturation-free
    dynamics ``dw/dτ = w^{L−1}`` blow up at the same ``τ* = s t*`` as the mode's own
    (:func:`_blowup_time`, from ``p₀ = W_1 v_μ`` and ``q₀ = (W_L ⋯ W_2)ᵀ u_μ / w^{L−2}``).

    Args:
        layers: ``[W_1, …, W_L]``, of shapes (h, in_features), (h, h), …, (out_features, h).
        u, v: the teacher's singular vectors, of shapes (out_features, M) and (in_features, M).
        w: the hidden-to-hidden layers' scale (required for ``L ≥ 3``).

    Both treat each mode alone, exactly for one mode; the other modes couple in through overlaps of
    the modes' hidden directions, ``O(h^{-1/2})`` for random ones in width ``h``.

    Returns:
        ``a₀`` of shape (M,); ``0`` for a mode whose dynamics do not blow up.

    Raises:
        ConfigError: fewer than two layers, layers that do not chain, ``u``/``v`` of the wrong shapes,
            or ``w`` missing or not positive at depth ``L ≥ 3``.
    """
    layers = [np.asarray(w, dtype=float) for w in layers]
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    depth = len(layers)
    require(depth >= 2, f"layers must hold at least 2 weight matrices [W_1, ..., W_L], got {depth}")
    require(all(w.ndim == 2 for w in layers) and all(a.shape[1] == b.shape[0] for a, b in zip(layers[1:], layers[:-1])),
            f"layers must be matrices that chain (W_(l+1) of shape (., rows of W_l)), got shapes "
            f"{[w.shape for w in layers]}")
    require(u.ndim == 2 and v.ndim == 2 and u.shape[0] == layers[-1].shape[0] and v.shape[0] == layers[0].shape[1]
            and u.shape[1] == v.shape[1],
            f"u must be (out_features={layers[-1].shape[0]}, M) and v (in_features={layers[0].shape[1]}, M), "
            f"got {u.shape} and {v.shape}")
    p0 = layers[0] @ v  # (h, M)
    if depth == 2:
        c = 0.5 * (p0 + layers[1].T @ u)
        return np.sum(c**2, axis=0)
    if w is None or not w > 0:
        raise ConfigError(f"w (the hidden-to-hidden layers' scale) must be > 0 at depth {depth}, got {w!r}")
    upper = layers[-1]
    for layer in reversed(layers[1:-1]):
        upper = upper @ layer
    q0 = upper.T @ u / w ** (depth - 2)
    tau = np.array([_blowup_time(p0[:, m], q0[:, m], depth, w) for m in range(u.shape[1])])
    return ((depth - 2) * tau) ** (-depth / (depth - 2))
