"""Law ``fourier-feature-order``: a two-layer quadratic network learns modular addition one Fourier feature at a
time, in decreasing order of the template's Fourier power, with a loss staircase whose steps AGF predicts.

Setting (Kunin et al. 2025, arXiv:2506.06489; Marchetti, Kunin et al. 2026, arXiv:2602.03655, §2): a
mean-zero template ``x ∈ R^p`` with power ``P_k`` at frequency ``k`` encodes ``a ∈ Z_p`` as ``x`` shifted by ``a``;
the network ``f(a, b) = W (U x_a + V x_b)^{∘2}`` (width ``H``, weights i.i.d. ``N(0, α²/fan_in)``) is trained by
full-batch gradient descent (float64) on all ``p²`` pairs to output ``x`` shifted by ``a + b``, with the loss
``mean over pairs and the p outputs of (y − f)²``; time is ``t = lr × step``. The powers fall geometrically,
``P ∝ power_ratio^{−rank}``, on frequencies in an order drawn from ``template_seed``, and sum to ``p`` (initial
loss 1); the template's phases are random (:func:`lmech.data.groups.fourier_template`).

Prediction (:mod:`lmech.theory.agf`): frequency ``k`` is acquired in decreasing order of the AGF utility
``U*_k ∝ P_k^{3/2}``, and after the first ``m`` acquisitions the loss sits at ``L_m = (Σ_j P_j − Σ_{i≤m} P_{k_i})/p``.

Measured:

* **acquisition**: the fitted fraction of frequency ``k``, ``φ_k(t) = ⟨f_k, y_k⟩ / ‖y_k‖²`` over all pairs (``y_k``,
  ``f_k``: target and output projected on the frequency-``k`` rows of the real Fourier basis in the output index),
  goes from 0 to 1 as the network learns the feature; ``k`` is *acquired* at the first time ``φ_k`` reaches ``½`` (its
  final value is 1), linearly interpolated between records.
* **plateau ``m``** (``m = 0 … M−1``, ``M`` frequencies): between the ``m``-th and ``(m+1)``-th acquisition times
  (``m = 0``: from the first record), the recorded loss where the staircase is flattest, i.e. where the central
  difference ``|ΔL / Δ ln t|`` is smallest; plateau ``M`` is the loss at the end of training.
* training stops at ``horizon ×`` the time the last frequency was acquired, or at ``max_time``.

Checks: Kendall τ between predicted and measured acquisition order ≥ 0.8 (a frequency never acquired counts as
last); each plateau ``m < M`` within 10 % of ``L_m``; the final loss below 10 % of the last nonzero level
``L_{M−1}``. Reported, not checked: each acquisition time relative to the first, against AGF's ``U*_{k_1}/U*_k
= (P_{k_1}/P_k)^{3/2}`` (this assumes every frequency starts from the same effective initial size).

Measured (seed 0): quick (``Z_11``, ratio 1.7, a few seconds) τ = 1 and the plateaus within 1.7 % of ``L_m``; the
standard setting (``Z_13``, ratio 2, about 20 s) τ = 1, within 0.7 %; full (``Z_17``, 8 frequencies, ratio 1.8,
about 1.5 min) τ = 1, within 1.5 %, acquisition times 1, 2.4, 5.4, 17, 39, 78, 202, 550 × the first against AGF's
1, 2.4, 5.8, 14, 34, 82, 198, 479. Over six initialisation seeds and five templates at the quick preset the worst
plateau was 4.2 % off.

Where it fails. Each step is made by several neurons of the same frequency (one neuron fits only 1/9 of a frequency,
:mod:`lmech.theory.agf`), and the learned neurons' by-products seed other frequencies, so a step has sub-steps and
the next one can start early; the plateaus are resolved only when consecutive powers are far enough apart. The
presets were chosen for that after looking: at ``Z_13`` with ratio 1.6 two of four runs missed a plateau by 11-23 %
(the standard setting uses 2.0), and at ``Z_11`` a smaller initialisation (0.03) missed a plateau in 1 of 4 seeds
at width 100 and in 3 of 4 at width 200. With ratio 1.2 the steps merge (plateaus off by up to 47 %); from a large
initialisation (``init_scale = 1``, weights ``N(0, 1/fan_in)``) all frequencies are learned within a few time
units of each other (plateaus 1-3 off by 22-35 %). In both the order of the half-times is still exact (τ = 1), so
the order check alone does not tell these regimes apart (tests/laws/test_fourier_feature_order.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from scipy.stats import kendalltau

from ..config import finite_positive, require, valid_seed
from ..data.groups import composition_dataset, cyclic, fourier_template
from ..measure.fourier import fourier_basis, fourier_power
from ..progress import NO_PROGRESS, Progress
from ..theory.agf import agf_acquisition_order, agf_max_utility, agf_plateau_levels
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .deep_linear_modes import first_crossings
from .plots_fourier_order import fourier_feature_order_figure
from .registry import register

ORDER_TAU_MIN = 0.8  # Kendall τ between predicted and measured acquisition order
PLATEAU_REL_TOL = 0.10  # each plateau's loss relative to its AGF level
FINAL_FRACTION = 0.10  # final loss ≤ this × the last nonzero level
ACQUIRED = 0.5  # fitted fraction φ_k at which frequency k counts as acquired (its final value is 1)


@dataclass(frozen=True, kw_only=True)
class FourierFeatureOrderConfig:
    """Modular addition with a template encoding, learned by a two-layer quadratic network.

    Attributes:
        p: the modulus, odd, ≥ 5 (``(p−1)/2`` frequencies, each a pair of complex irreps; at an even ``p`` the
            real Nyquist frequency has a different utility per unit power).
        power_ratio: ``P`` of consecutive frequencies in the predicted order differ by this factor (> 1).
        template_seed: draws which frequency gets which power and the template's phases.
        width: hidden neurons ``H``.
        init_scale: ``α``; ``U, V ~ N(0, α²/p)``, ``W ~ N(0, α²/H)`` (small: the AGF regime).
        lr: the GD step; time ``t = lr × step``.
        horizon: train until ``horizon ×`` the time at which every frequency had been acquired.
        max_time: stop at this time regardless.
        record_every: steps between records.
        seed: seeds the initialisation.
    """

    p: int = 13
    power_ratio: float = 2.0
    template_seed: int = 3
    width: int = 100
    init_scale: float = 0.1
    lr: float = 0.1
    horizon: float = 1.5
    max_time: float = 20_000.0
    record_every: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.p, int) and not isinstance(self.p, bool) and self.p >= 5 and self.p % 2 == 1,
                f"p must be an odd integer >= 5, got {self.p!r}")
        finite_positive("power_ratio", self.power_ratio)
        require(self.power_ratio > 1, f"power_ratio must be > 1 (equal powers have no predicted order), got "
                                      f"{self.power_ratio}")
        valid_seed(self.template_seed)
        require(isinstance(self.width, int) and self.width >= 1, f"width must be an integer >= 1, got {self.width!r}")
        finite_positive("init_scale", self.init_scale)
        finite_positive("lr", self.lr)
        require(math.isfinite(self.horizon) and self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}")
        finite_positive("max_time", self.max_time)
        require(isinstance(self.record_every, int) and self.record_every >= 1,
                f"record_every must be an integer >= 1, got {self.record_every!r}")
        valid_seed(self.seed)


def template_power(config: FourierFeatureOrderConfig) -> np.ndarray:
    """Power per frequency ``0 … (p−1)/2``: 0 at frequency 0, ``power_ratio^{−rank}`` on the others (ranks in an
    order drawn from ``template_seed``), scaled to sum to ``p``; shape ``((p+1)/2,)``."""
    num = config.p // 2
    gen = torch.Generator().manual_seed(config.template_seed)
    ranks = torch.randperm(num, generator=gen).numpy()
    power = np.zeros(num + 1)
    power[1:] = config.power_ratio ** (-ranks.astype(float))
    return power * config.p / power.sum()


@dataclass
class Run:
    """A training run: record times (T,), loss (T,), fitted fraction φ_k and weight power per frequency (T, K+1),
    the step at which the loss became non-finite (or ``None``)."""

    steps: np.ndarray
    times: np.ndarray
    loss: np.ndarray
    fitted: np.ndarray
    weight_power: np.ndarray
    diverged_at: int | None


def quadratic_network_gradients(u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, xa: torch.Tensor,
                                xb: torch.Tensor, y: torch.Tensor
                                ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The loss ``mean (y − f)²`` of ``f = W (U x_a + V x_b)^{∘2}``, the outputs ``f`` and the gradients with respect
    to ``(U, V, W)``, written out by hand (no autograd graph in the training loop).

    Args:
        u, v: input weights of shape (H, p); w: output weights of shape (p, H).
        xa, xb: encoded inputs of shape (N, p); y: targets of shape (N, p).
    """
    hidden = xa @ u.T + xb @ v.T
    act = hidden * hidden
    out = act @ w.T
    residual = out - y
    grad_out = (2.0 / residual.numel()) * residual
    grad_hidden = 2.0 * hidden * (grad_out @ w)
    return residual.square().mean(), out, (grad_hidden.T @ xa, grad_hidden.T @ xb, grad_out.T @ act)


def train(config: FourierFeatureOrderConfig, template: torch.Tensor, progress: Progress = NO_PROGRESS) -> Run:
    """Full-batch GD (float64, hand-written gradients) on ``mean (y − W (U x_a + V x_b)^{∘2})²`` over all pairs."""
    p, width, alpha = config.p, config.width, config.init_scale
    data = composition_dataset(cyclic(p), 2, template=template, dtype=torch.float64)
    xa, xb, y = data.inputs[:, 0], data.inputs[:, 1], data.targets
    gen = torch.Generator().manual_seed(config.seed)
    u = alpha * torch.randn(width, p, generator=gen, dtype=torch.float64) / math.sqrt(p)
    v = alpha * torch.randn(width, p, generator=gen, dtype=torch.float64) / math.sqrt(p)
    w = alpha * torch.randn(p, width, generator=gen, dtype=torch.float64) / math.sqrt(width)
    basis, freqs = fourier_basis(p)
    y_coef = y @ basis.T
    y_norm = torch.zeros(p // 2 + 1, dtype=torch.float64).index_add_(0, freqs, y_coef.square().sum(0))
    max_steps = int(math.ceil(config.max_time / config.lr))
    progress.task(f"fourier-feature-order: GD on Z_{p}, width {width}", max_steps)
    steps, loss, fitted, weight_power = [], [], [], []
    stop_at, diverged_at = max_steps, None
    for step in range(max_steps + 1):
        loss_value, out, grads = quadratic_network_gradients(u, v, w, xa, xb, y)
        if step % config.record_every == 0 or step >= stop_at:
            value = float(loss_value)
            if not math.isfinite(value):
                diverged_at = step
                break
            progress.advance(step - (steps[-1] if steps else 0))
            overlap = (out @ basis.T * y_coef).sum(0)
            phi = torch.zeros_like(y_norm).index_add_(0, freqs, overlap) / y_norm.clamp_min(1e-300)
            steps.append(step)
            loss.append(value)
            fitted.append(phi.numpy())
            weight_power.append((fourier_power(u, dim=1) + fourier_power(v, dim=1) + fourier_power(w, dim=0)).numpy())
            if stop_at == max_steps and bool((phi[1:] >= ACQUIRED).all()):
                stop_at = min(max_steps, int(math.ceil(config.horizon * step)))
            if step >= stop_at:
                break
        for param, grad in zip((u, v, w), grads):
            param -= config.lr * grad
    steps_at = np.asarray(steps, dtype=np.int64)
    width_k = p // 2 + 1
    return Run(steps_at, config.lr * steps_at, np.asarray(loss), np.asarray(fitted).reshape(-1, width_k),
               np.asarray(weight_power).reshape(-1, width_k), diverged_at)


def acquisition_times(times: np.ndarray, fitted: np.ndarray, level: float = ACQUIRED) -> np.ndarray:
    """First time each column of ``fitted`` (T, K) reaches ``level``, linearly interpolated; ``nan`` if never."""
    return first_crossings(times, fitted, np.full(fitted.shape[1], level))


def plateau_points(times: np.ndarray, loss: np.ndarray, bounds: np.ndarray) -> list[int | None]:
    """For each window ``[bounds[m], bounds[m+1]]``, the record index where ``|ΔL/Δ ln t|`` (central difference
    over records at ``t > 0``) is smallest; ``None`` when a bound is missing or the window holds no interior record."""
    out: list[int | None] = []
    log_t = np.log(np.maximum(times, 1e-300))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        idx = np.flatnonzero((times >= lo) & (times <= hi))
        idx = idx[(idx > 0) & (idx < len(times) - 1) & (times[np.maximum(idx - 1, 0)] > 0)]
        if not (np.isfinite(lo) and np.isfinite(hi)) or len(idx) == 0:
            out.append(None)
            continue
        slope = np.abs(loss[idx + 1] - loss[idx - 1]) / (log_t[idx + 1] - log_t[idx - 1])
        out.append(int(idx[np.argmin(slope)]))
    return out


@register
class FourierFeatureOrder(Law):
    name = "fourier-feature-order"
    title = "Quadratic networks learn modular addition one Fourier feature at a time, strongest first"
    pillar = "solvable-settings"
    references = (
        Reference("Kunin, Marchetti, Chen, Karkada, Simon, DeWeese, Ganguli, Miolane. Alternating Gradient Flows: "
                  "A Theory of Feature Learning in Two-layer Neural Networks. 2025", "2506.06489"),
        Reference("Marchetti, Kunin, Myers, Acosta, Miolane. Sequential Group Composition: A Window into the "
                  "Mechanics of Deep Learning. 2026", "2602.03655"),
    )
    statement = ("From a small initialisation, a two-layer network with quadratic activation trained on modular "
                 "addition with a template encoding acquires the template's Fourier frequencies one at a time, in "
                 "decreasing order of their power (AGF utility ∝ P_k^{3/2}), and the loss rests on plateaus at the "
                 "template power not yet learned, divided by p.")
    Config = FourierFeatureOrderConfig
    presets = {
        "quick": dict(p=11, power_ratio=1.7),
        "full": dict(p=17, power_ratio=1.8, width=150, lr=0.2, record_every=25, max_time=40_000.0),
    }

    def run(self, config: FourierFeatureOrderConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        power = template_power(config)
        template = fourier_template(cyclic(config.p), power.tolist(), seed=config.template_seed)
        order = agf_acquisition_order(power, p=config.p)
        levels = agf_plateau_levels(power, order, group_order=config.p)
        utility = agf_max_utility(power, p=config.p)
        run = train(config, template, progress)
        times = acquisition_times(run.times, run.fitted[:, order]) if run.diverged_at is None else np.full(len(order), np.nan)
        checks, summary, marks = self._checks(run, order, levels, times)
        summary["trained time t = lr × steps"] = float(run.times[-1]) if len(run.times) else 0.0
        for i, k in enumerate(order):
            summary[f"frequency {k} (P = {power[k]:.3g}): t_acquired ÷ t_first, measured"] = float(times[i] / times[0])
            summary[f"frequency {k} (P = {power[k]:.3g}): t_acquired ÷ t_first, AGF U*_first/U*_k"] = float(
                utility[order[0]] / utility[k])
        records = self._records(run, power, order, times, marks)
        curves = pa.Table.from_pylist(
            [{"curve": "plateau_level", "x": float(m), "y": float(level), "frequency": int(order[m - 1]) if m else None}
             for m, level in enumerate(levels)]
            + [{"curve": "max_utility", "x": float(k), "y": float(utility[k]), "frequency": int(k)} for k in order])
        figure = fourier_feature_order_figure(records, curves, config, power, order)
        return LawResult(records, curves, checks, {"fourier_feature_order": figure}, summary)

    @staticmethod
    def _checks(run: Run, order: np.ndarray, levels: np.ndarray, times: np.ndarray
                ) -> tuple[list[Check], dict[str, float], list[int | None]]:
        num = len(order)
        acquired = np.isfinite(times)
        ranked = np.where(acquired, times, np.nanmax(times) + 1.0 if acquired.any() else np.inf)  # never: tied last
        tau = float(kendalltau(np.arange(num), ranked).statistic) if num > 1 and acquired.sum() > 1 else float("nan")
        measured_order = order[np.argsort(ranked, kind="stable")]
        checks = [Check.at_least(f"acquisition order: Kendall τ(predicted {order.tolist()}, measured "
                                 f"{measured_order.tolist()})", tau, ORDER_TAU_MIN)]
        bounds = np.concatenate([[run.times[0] if len(run.times) else np.nan], np.sort(np.where(acquired, times, np.nan))])
        marks = plateau_points(run.times, run.loss, bounds)
        errors = []
        for m, mark in enumerate(marks):
            measured = run.loss[mark] if mark is not None else float("nan")
            errors.append(abs(measured / levels[m] - 1))
            learned = ", ".join(str(k) for k in order[:m]) or "none"
            checks.append(Check.within(f"plateau {m} (learned: {learned}): loss", measured, levels[m], PLATEAU_REL_TOL))
        final = float(run.loss[-1]) if len(run.loss) and run.diverged_at is None else float("nan")
        checks.append(Check.at_most(f"plateau {num} (all learned): final loss ≤ {FINAL_FRACTION:g} × L_{num - 1} "
                                    f"= {FINAL_FRACTION * levels[num - 1]:.3g}", final, FINAL_FRACTION * levels[num - 1]))
        summary = {"Kendall τ of the acquisition order": tau, "max |plateau ÷ L_m − 1|": float(np.max(errors)),
                   "final loss": final}
        return checks, summary, marks

    @staticmethod
    def _records(run: Run, power: np.ndarray, order: np.ndarray, times: np.ndarray, marks: list[int | None]
                 ) -> Records:
        records = Records()
        rank = {int(k): r for r, k in enumerate(order)}
        for i, step in enumerate(run.steps):
            records.add(step, "loss", run.loss[i])
            for k in order:
                index = dict(frequency=int(k), power=float(power[k]), rank=rank[int(k)])
                records.add(step, "fitted_fraction", run.fitted[i, k], **index)
                records.add(step, "weight_power", run.weight_power[i, k], **index)
        last = int(run.steps[-1]) if len(run.steps) else 0
        for r, k in enumerate(order):
            records.add(last, "acquisition_time", times[r], frequency=int(k), power=float(power[k]), rank=r)
        for m, mark in enumerate(marks):
            if mark is not None:
                records.add(run.steps[mark], "plateau_loss", run.loss[mark], plateau=m)
        if run.diverged_at is not None:
            records.add(run.diverged_at, "diverged", 1.0)
        return records
