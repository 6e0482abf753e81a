"""Alternating Gradient Flows (AGF) for modular addition with a template encoding: which Fourier feature a
two-layer quadratic network learns when, and the loss on each plateau of the staircase.

Setting (Kunin, Marchetti, Chen, Karkada, Simon, DeWeese, Ganguli, Miolane 2025, arXiv:2506.06489, the
modular-addition section; Marchetti, Kunin, Myers, Acosta, Miolane 2026, arXiv:2602.03655, §2 and the two-layer
analysis): a template ``x ∈ R^{|G|}`` encodes the group element ``g`` as ``λ(g)x`` (``x`` shifted by ``g``;
:func:`lmech.data.groups.regular_encoding`). The network sees the encodings of ``a`` and ``b`` and is trained to
output the encoding of ``a·b``,

.. math::  f(a, b) = \\sum_{i=1}^{H} w_i\\,\\big(u_i \\cdot \\lambda(a)x + v_i \\cdot \\lambda(b)x\\big)^2, \\qquad
           \\mathcal{L} = \\frac{1}{N |G|} \\sum_{(a,b)} \\lVert \\lambda(ab)x - f(a, b) \\rVert^2

(the mean squared error over the ``N = |G|²`` pairs *and* the ``|G|`` output coordinates, ``torch``'s default),
from a small initialisation, by gradient flow in time ``t = lr × steps``.

AGF: a *dormant* neuron ``θ = (u, v, w)`` (small) moves as ``dθ/dt = ∇U(θ)`` with the *utility*

.. math::  U(\\theta) = \\frac{2}{N |G|} \\sum_{(a,b)} \\big\\langle r(a, b), w \\big\\rangle
           \\big(u \\cdot \\lambda(a)x + v \\cdot \\lambda(b)x\\big)^2, \\qquad r = \\lambda(ab)x - f,

a cubic form; it stays dormant while it aligns with the utility's maximisers, then grows in a short burst and
the *active* neurons minimise the loss, which drops to a plateau. On ``Z_p`` (modular addition) with a mean-zero
template, ``U`` splits over frequencies (with ``\\hat x_k = \\sum_g x(g) e^{-2\\pi i k g/p}``),

.. math::  U = \\frac{4}{N p^2} \\sum_{k \\in Z_p} |\\hat x_k|^2\\,
           \\mathrm{Re}\\big(\\hat x_k\\, \\overline{\\hat u_k \\hat v_k}\\, \\hat w_k\\big),

so its maximum on the unit sphere ``‖u‖² + ‖v‖² + ‖w‖² = 1`` is reached on a single frequency and equals
(:func:`agf_max_utility`)

.. math::  U^*_k = \\frac{c_k\\, P_k^{3/2}}{3\\sqrt3\\, p}, \\qquad c_k = 1 \\ (0 < k < p/2), \\quad
           c_{p/2} = 4,

with ``P_k`` the template's power at frequency ``k`` (:func:`lmech.measure.fourier.fourier_power`;
``P_k = 2|\\hat x_k|^2/p`` for ``0 < k < p/2``). Learning frequency ``k`` removes only the frequency-``k`` part
of the residual, so (to leading order) the other utilities do not change: the frequencies are acquired one at a time in decreasing
order of ``U*_k`` — of ``|x̂_k|`` when ``p`` is odd ("networks learn Fourier features in decreasing order of
coefficient magnitude", Kunin et al. 2025, abstract) — and after the first ``m`` of them the loss sits
at (:func:`agf_plateau_levels`)

.. math::  \\mathcal{L}_m = \\frac{1}{|G|} \\Big(\\sum_{\\omega} P_\\omega - \\sum_{j \\le m} P_{k_j}\\Big),

the template power not yet learned, divided by ``|G|`` (the normalisation of the mean above; the authors'
code, geometric-intelligence/group-agf, ``loss_plateau_predictions``, uses the same ``1/|G|``). ``L_m`` is the
least-squares loss of the best quadratic network whose input weights see only the learned frequencies, which is
how ``tests/theory/test_agf.py`` checks it, on ``Z_p`` and on the dihedral groups (where the levels hold with the
power per irrep, as the authors' code computes them; the *order* there depends on more than the power — already
on ``Z_p`` with ``p`` even the real Nyquist irrep has ``c = 4`` — and is not implemented here).

One neuron cannot make a whole step: the best single neuron on frequency ``k`` removes only 1/9 of that
frequency's share ``P_k/|G|`` of the loss (its square also makes the by-products ``(2k, 0)``, ``(0, 2k)`` and
``(k, −k)`` in ``(a, b)``, which other neurons on ``k`` must cancel), so under gradient descent each drop is made
by several neurons of the same frequency and has sub-steps; the levels above are where the staircase rests once a
frequency is complete.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import require

__all__ = ["agf_acquisition_order", "agf_max_utility", "agf_plateau_levels"]

MEAN_FREE_RTOL = 1e-9  # power at frequency 0 above this fraction of the total: not a mean-zero template


def _power(power, name: str = "power") -> np.ndarray:
    pw = np.asarray(power, dtype=float)
    require(pw.ndim == 1 and pw.size >= 1, f"{name} must be a 1-D array (one entry per frequency), got shape {pw.shape}")
    require(bool(np.all(np.isfinite(pw))) and bool(np.all(pw >= 0)), f"{name} must be finite and >= 0, got {pw.tolist()}")
    return pw


def _cyclic_power(power, p: int) -> np.ndarray:
    require(isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 3,
            f"p must be an integer >= 3 (the order of Z_p), got {p!r}")
    pw = _power(power)
    require(pw.size == p // 2 + 1,
            f"power must have one entry per frequency 0..{p // 2} of Z_{p} ({p // 2 + 1} entries), got {pw.size}")
    require(pw[0] <= MEAN_FREE_RTOL * max(float(pw.sum()), 1e-300),
            f"power[0] = {pw[0]:.3g}: the AGF prediction here is for a mean-zero template; subtract the template's mean "
            "(power[0] = 0)")
    return pw


def agf_max_utility(power, *, p: int) -> np.ndarray:
    """The largest AGF utility of a unit-norm dormant neuron at each frequency of ``Z_p``, at the start of
    training (residual = target): ``U*_k = c_k P_k^{3/2} / (3√3 p)``, ``c_k = 4`` at ``k = p/2``, else 1
    (module docstring). A dormant neuron of norm ``n`` grows as ``dn/dt = 3 U* n²`` once aligned, so a larger
    ``U*`` is acquired sooner.

    Args:
        power: the template's power per frequency ``0 … ⌊p/2⌋``, shape ``(⌊p/2⌋ + 1,)``, with ``power[0] = 0``;
            e.g. ``fourier_power(template)``. ``Σ power = ‖x‖²``.
        p: the order of the cyclic group.

    Returns:
        ``U*_k`` of shape ``(⌊p/2⌋ + 1,)`` in loss per unit time per unit neuron norm³ (``U*_0 = 0``), for the
        loss ``mean over pairs and outputs of (y − f)²``.

    Raises:
        ConfigError: ``p < 3``; ``power`` of the wrong length, negative, non-finite, or with power at frequency 0.

    Source:
        Kunin et al. (2025), arXiv:2506.06489 (AGF on modular addition with a quadratic network); the
        constant is derived in this module's docstring and checked against a numerical maximisation.

    >>> [round(float(u * 3 * math.sqrt(3) * 5), 12) for u in agf_max_utility([0.0, 4.0, 1.0], p=5)]
    [0.0, 8.0, 1.0]
    """
    pw = _cyclic_power(power, p)
    c = np.ones_like(pw)
    if p % 2 == 0:
        c[-1] = 4.0
    c[0] = 0.0
    return c * pw**1.5 / (3.0 * math.sqrt(3.0) * p)


def agf_acquisition_order(power, *, p: int, rtol: float = 1e-6) -> np.ndarray:
    """The frequencies of ``Z_p`` in the order AGF acquires them: every frequency with nonzero power, by
    decreasing :func:`agf_max_utility` (for odd ``p``, by decreasing power ``P_k``, i.e. ``|x̂_k|``).

    Args:
        power: per-frequency power of the template, shape ``(⌊p/2⌋ + 1,)``, ``power[0] = 0``.
        p: the order of the cyclic group.
        rtol: two utilities closer than this (relative) are a tie, for which AGF predicts no order.

    Returns:
        Frequencies ``k_1, k_2, …`` (int64), shape ``(number of frequencies with power > 0,)``.

    Raises:
        ConfigError: as :func:`agf_max_utility`; no frequency with power; two frequencies with equal utility.

    Source:
        Kunin et al. (2025), arXiv:2506.06489 (abstract: Fourier features in decreasing order of coefficient
        magnitude); Marchetti et al. (2026), arXiv:2602.03655 (abstract: one irrep at a time, in an order set by the
        encoding's Fourier statistics).

    >>> agf_acquisition_order([0.0, 1.0, 3.0, 2.0], p=7).tolist()
    [2, 3, 1]
    """
    util = agf_max_utility(power, p=p)
    freqs = np.flatnonzero(_cyclic_power(power, p) > 0)
    require(freqs.size > 0, "power has no frequency with power > 0; the template is constant, nothing to learn")
    order = freqs[np.argsort(-util[freqs], kind="stable")]
    u = util[order]
    ties = np.flatnonzero(np.abs(np.diff(u)) <= rtol * u[:-1])
    pairs = ", ".join(f"{int(order[i])} and {int(order[i + 1])}" for i in ties)
    require(ties.size == 0, f"frequencies {pairs} have equal AGF utility (within rtol = {rtol:g}); AGF predicts no "
            "order between them — give them different powers")
    return order.astype(np.int64)


def agf_plateau_levels(power, order, *, group_order: int) -> np.ndarray:
    """The loss on each plateau of the AGF staircase: ``L_m = (Σ_ω P_ω − Σ_{j≤m} P_{k_j}) / |G|``,
    ``m = 0 … len(order)``, for the loss ``mean over pairs and the |G| outputs of (y − f)²`` (halve it for a loss
    with ``½``; multiply by ``|G|`` for a sum over outputs).

    ``L_0 = ‖x‖²/|G|`` is the loss of the zero network, ``L_m`` that after the frequencies ``order[:m]`` are
    learned; power at frequencies missing from ``order`` is never learned and stays in every level.

    Args:
        power: the template's power per frequency (``fourier_power`` on ``Z_p``, or ``group_fourier_power`` of
            any finite group), shape ``(num_frequencies,)``.
        order: frequency indices in the order they are learned (e.g. :func:`agf_acquisition_order`), distinct.
        group_order: ``|G|`` (``p`` for ``Z_p``), the number of output coordinates the loss averages over.

    Returns:
        Levels of shape ``(len(order) + 1,)``, non-increasing.

    Raises:
        ConfigError: bad ``power``; ``order`` with repeated or out-of-range indices; ``group_order < 1``.

    Source:
        Kunin et al. (2025), arXiv:2506.06489; Marchetti et al. (2026), arXiv:2602.03655
        (geometric-intelligence/group-agf, ``loss_plateau_predictions``).

    >>> agf_plateau_levels([0.0, 1.0, 3.0, 2.0], [2, 3, 1], group_order=6).tolist()
    [1.0, 0.5, 0.16666666666666666, 0.0]
    """
    pw = _power(power)
    require(isinstance(group_order, (int, np.integer)) and not isinstance(group_order, bool) and group_order >= 1,
            f"group_order must be an integer >= 1 (|G|), got {group_order!r}")
    idx = np.asarray(order).reshape(-1)
    require(idx.size == 0 or np.issubdtype(idx.dtype, np.integer),
            f"order must hold integer frequency indices, got {np.asarray(order).tolist()}")
    idx = idx.astype(np.int64)
    require(bool(np.all((idx >= 0) & (idx < pw.size))) and len(set(idx.tolist())) == idx.size,
            f"order must hold distinct frequencies in 0..{pw.size - 1}, got {idx.tolist()}")
    learned = np.concatenate([[0.0], np.cumsum(pw[idx])])
    return np.maximum(float(pw.sum()) - learned, 0.0) / group_order
