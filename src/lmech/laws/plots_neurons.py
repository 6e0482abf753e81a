"""The neuron-universality law's figure: universal-neuron count and fraction against width, and the class
selectivity of universal neurons against the rest."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure


def universality_figure(widths: Sequence[int], counts: Sequence[np.ndarray], amplitude: float, alpha: float,
                        interval: tuple[float, float], fixed: np.ndarray, control_fraction: np.ndarray,
                        selectivity: tuple[np.ndarray, np.ndarray], control_selectivity: tuple[np.ndarray, np.ndarray],
                        auc: float, p: float, auc_control: float, fixed_threshold: float) -> Figure:
    """Left: universal neurons per model against width on log-log axes (dots: models; squares: means), the fitted
    power law ``A·w^α`` with its bootstrap interval, slope 1 for reference, the count at the papers' fixed
    threshold and the untrained control's. Middle: the same as fractions of the width. Right: the class-selectivity
    index of universal neurons and of the rest, pooled over models and widths (filled: trained; outlines: the
    untrained control with the same fraction of its most-matched neurons called universal).

    Args:
        widths: the ``W`` widths; counts: per width, each model's universal count, shape ``(S,)``.
        amplitude, alpha: the fit ``A·w^α``; interval: α's 95% bootstrap interval.
        fixed: mean count per width at ``fixed_threshold``, shape ``(W,)``; control_fraction: shape ``(W,)``.
        selectivity, control_selectivity: ``(universal, rest)`` pooled selectivity indices.
        auc, p, auc_control: the Mann–Whitney effect size and p-value, and the control's effect size.
    """
    fig = Figure(figsize=(15, 4.8), constrained_layout=True)
    left, middle, right = fig.subplots(1, 3)
    w = np.asarray(widths, dtype=float)
    means = np.array([c.mean() for c in counts])
    for x, c in zip(w, counts):
        left.scatter(np.full(len(c), x), np.maximum(c, 0.5), s=12, color="tab:blue", alpha=0.5)
    left.scatter(w, means, marker="s", s=45, color="tab:blue", label="trained: universal neurons per model")
    grid = np.geomspace(w[0], w[-1], 50)
    if np.isfinite(alpha):
        left.plot(grid, amplitude * grid**alpha, color="tab:blue",
                  label=f"fit A·w^α, α = {alpha:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]")
    left.plot(grid, means[0] * grid / w[0], color="black", ls=":", lw=1, label="slope 1 (constant fraction)")
    left.plot(w, np.maximum(fixed, 0.5), "^--", color="tab:orange", lw=1, label=f"fixed τ = {fixed_threshold:g}")
    left.plot(w, np.maximum(control_fraction * w, 0.5), "v--", color="tab:gray", lw=1,
              label="untrained control (its own null)")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("width w")
    left.set_ylabel("universal neurons per model (0 drawn at 0.5)")
    left.legend(fontsize=7)
    middle.plot(w, means / w, "s-", color="tab:blue", label="trained, τ_w from the null")
    middle.plot(w, fixed / w, "^--", color="tab:orange", label=f"trained, fixed τ = {fixed_threshold:g}")
    middle.plot(w, control_fraction, "v--", color="tab:gray", label="untrained control")
    middle.set_xscale("log", base=2)
    middle.set_ylim(0, 1.02)
    middle.set_xlabel("width w")
    middle.set_ylabel("fraction of neurons universal")
    middle.legend(fontsize=7)
    bins = np.linspace(0, 1, 31)
    for values, colour, label in ((selectivity[0], "tab:red", "universal"), (selectivity[1], "tab:blue", "rest")):
        values = values[np.isfinite(values)]
        right.hist(values, bins=bins, density=True, alpha=0.45, color=colour, label=f"{label} (n = {len(values)})")
    for values, colour, label in ((control_selectivity[0], "tab:red", "control: most-matched"),
                                  (control_selectivity[1], "tab:blue", "control: rest")):
        values = values[np.isfinite(values)]
        right.hist(values, bins=bins, density=True, histtype="step", color=colour, ls="--", label=label)
    right.set_xlabel("class selectivity index (Morcos et al. 2018)")
    right.set_ylabel("density")
    right.set_title(f"universal vs rest: AUC = {auc:.2f} (one-sided Mann–Whitney p = {p:.1e})\n"
                    f"untrained control, same fraction: AUC = {auc_control:.2f}", fontsize=9)
    right.legend(fontsize=7)
    return fig
