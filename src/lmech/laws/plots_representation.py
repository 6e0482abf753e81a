"""The representation-convergence law's figure: alignment against accuracy, by architecture."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure


def alignment_figure(members: Sequence, mean_knn: np.ndarray, mean_cka: np.ndarray, baseline: float,
                     null: Sequence[float], rho: float, rho_cka: float) -> Figure:
    """Left: each model's mean mutual-kNN alignment to the others against its held-out accuracy (one colour per
    architecture; open markers the short budget), with the random baseline and the permutation null's range.
    Right: the same with mean linear CKA."""
    fig = Figure(figsize=(12, 5), constrained_layout=True)
    left, right = fig.subplots(1, 2)
    architectures = sorted({m.architecture for m in members})
    colours = matplotlib.colormaps["tab10"]
    budgets = sorted({m.budget for m in members})
    accuracy = np.array([m.accuracy for m in members])
    for ax, values, label, r in ((left, mean_knn, "mean mutual-kNN alignment to the others", rho),
                                 (right, mean_cka, "mean linear CKA to the others", rho_cka)):
        for a, arch in enumerate(architectures):
            for b in budgets:
                pick = [i for i, m in enumerate(members) if m.architecture == arch and m.budget == b]
                ax.scatter(accuracy[pick], values[pick], s=40, color=colours(a),
                           facecolors="none" if b == budgets[0] and len(budgets) > 1 else colours(a),
                           label=f"{arch}" if b == budgets[-1] else None)
        ax.set_xlabel("held-out accuracy")
        ax.set_ylabel(label)
        ax.set_title(f"Spearman ρ = {r:.2f} (open: {budgets[0]} steps, filled: more)", fontsize=10)
    left.axhline(baseline, color="black", ls="--", lw=1, label=f"random baseline k/(n−1) = {baseline:.3f}")
    left.axhspan(min(null), max(null), color="0.85", label="permutation null (range)")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    return fig
