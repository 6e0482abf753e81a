"""The critical-batch-size law's figure: steps against examples on the fitted hyperbola, and the
learning-rate tuning curves behind each point."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure

from ..theory.batch_size import TradeoffFit


def critical_batch_size_figure(batch_sizes: Sequence[int], lrs: Sequence[float], steps: np.ndarray, s_best: np.ndarray,
                               fit: TradeoffFit, b_noise: float, b_simple: float,
                               interval: tuple[float, float]) -> Figure:
    """Left: steps S against examples E = BS to the target (dots, one per batch size, best learning rate),
    the fitted hyperbola ``(S/S_min − 1)(E/E_min − 1) = 1`` (line), and the rays ``E = B S`` at ``B_crit``,
    ``B_noise`` and ``B_simple``. Right: steps to the target against learning rate, one curve per batch size
    (geometric mean over seeds), the chosen optimum circled."""
    fig = Figure(figsize=(13, 5.2), constrained_layout=True)
    left, right = fig.subplots(1, 2)
    colours = matplotlib.colormaps["viridis"]
    bs = np.asarray(batch_sizes, dtype=float)
    ok = np.isfinite(s_best)
    grid = np.geomspace(bs.min() / 4, bs.max() * 4, 200)
    left.plot(fit.examples(grid), fit.steps(grid), "-", color="black", lw=1.2,
              label=f"fit: S_min = {fit.s_min:.0f}, E_min = {fit.e_min:.0f}")
    for j in np.flatnonzero(ok):
        colour = colours(j / max(len(bs) - 1, 1) * 0.9)
        left.plot(bs[j] * s_best[j], s_best[j], "o", ms=7, color=colour, label=f"B = {int(bs[j])}")
    s_range = np.array([fit.s_min * 0.7, s_best[ok].max() * 1.5])
    for value, style, label in ((fit.b_crit, "-", f"B_crit = {fit.b_crit:.0f} [{interval[0]:.0f}, {interval[1]:.0f}]"),
                                (b_noise, "--", f"B_noise = {b_noise:.0f}"), (b_simple, ":", f"B_simple = {b_simple:.0f}")):
        if np.isfinite(value):
            left.plot(value * s_range, s_range, style, color="tab:red", lw=1, label=label)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("examples E = B·S to the target loss")
    left.set_ylabel("steps S to the target loss")
    left.set_title("steps against examples (dots measured, line fitted; rays E = B·S)", fontsize=10)
    left.legend(fontsize=7, ncol=2)
    with np.errstate(divide="ignore"):
        mean = np.exp(np.log(steps).mean(axis=0))
    for j in range(len(bs)):
        colour = colours(j / max(len(bs) - 1, 1) * 0.9)
        right.plot(lrs, mean[j], "o-", ms=3, color=colour, lw=1, label=f"B = {int(bs[j])}")
        if ok[j]:
            k = int(np.nanargmin(mean[j]))
            right.plot(lrs[k], mean[j, k], "o", ms=10, mfc="none", color=colour)
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("learning rate η")
    right.set_ylabel("steps to the target (geometric mean over seeds)")
    right.set_title("learning-rate tuning at each batch size (circled: best)", fontsize=10)
    right.legend(fontsize=7, ncol=2)
    return fig


def scaling_rules_figure(batch_sizes: Sequence[int], ratio: dict[str, dict[int, float]], b_noise: dict[str, float],
                         tolerance: float, base_batch: int) -> Figure:
    """Final loss relative to the base batch's, ``mean_seeds L(B)/L(B₀)``, against ``B`` for SGD with ``η ∝ B``,
    Adam with the square-root rule and Adam with the linear rule; the ±tolerance band shaded; ``B_noise/4``
    (dotted) and ``B_noise`` (dashed) of SGD's and Adam's base runs marked."""
    fig = Figure(figsize=(8, 5), constrained_layout=True)
    ax = fig.subplots()
    bs = np.asarray(sorted(batch_sizes), dtype=float)
    ax.axhspan(1 - tolerance, 1 + tolerance, color="0.9", label=f"±{tolerance:.0%} of the base batch's loss")
    styles = {"sgd-linear": ("tab:blue", "o-", "SGD, η ∝ B"), "adam-sqrt": ("tab:green", "s-", "Adam, square-root rule"),
              "adam-linear": ("tab:red", "^--", "Adam, linear rule")}
    for rule, (colour, fmt, label) in styles.items():
        ax.plot(bs, [ratio[rule][int(b)] for b in bs], fmt, color=colour, ms=5, label=label)
    for rule, colour in (("sgd-linear", "tab:blue"), ("adam-sqrt", "tab:green")):
        value = b_noise[rule]
        if np.isfinite(value):
            ax.axvline(value / 4, color=colour, ls=":", lw=1)
            ax.axvline(value, color=colour, ls="--", lw=1, label=f"B_noise/4 and B_noise, {styles[rule][2].split(',')[0]}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"batch size B (base B₀ = {base_batch}; same number of epochs for every run)")
    ax.set_ylabel("final training loss L(B) / L(B₀), mean over seeds")
    ax.set_title("scaling rules: which learning rate keeps training the same as B grows", fontsize=10)
    ax.legend(fontsize=7)
    return fig
