"""The factored-belief-geometry law's figure: each factor's belief states on its simplex, true and probed from the
residual stream, coloured by the true belief; the dimension the beliefs occupy; training."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import torch
from matplotlib.figure import Figure

from ..measure.belief_geometry import simplex_coordinates
from ..train.records import Records

MAX_POINTS = 4_000  # points drawn per simplex panel


def _simplex(ax, beliefs: torch.Tensor, colours: np.ndarray, title: str) -> None:
    xy = simplex_coordinates(beliefs).numpy()
    corners = simplex_coordinates(torch.eye(3, dtype=torch.float64)).numpy()
    ax.fill(corners[:, 0], corners[:, 1], facecolor="none", edgecolor="0.6", lw=1)
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=2, lw=0)
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.set_axis_off()


def belief_figure(data, final, initial_fractions: torch.Tensor, records: Records, sum_dim: int, product_dim: int,
                  variance_frac: float) -> Figure:
    """Top row, per factor: the true beliefs of held-out rows on the 2-simplex (colour: the belief as RGB) and the
    linear probe's prediction for the same rows, same colours. Bottom left: cumulative variance of the part of the
    activations linear in the joint belief, trained and at initialisation, with the factored (sum) and joint
    (product) predictions marked. Bottom right: held-out loss above the optimum and each factor's probe R² over
    training."""
    factors = len(final.r2)
    fig = Figure(figsize=(3.2 * 2 * factors, 7.0), constrained_layout=True)
    top = [[f"truth{f}", f"probe{f}"] for f in range(factors)]
    mosaic = [sum(top, []), ["dims"] * factors + ["train"] * factors]
    axes = fig.subplot_mosaic(mosaic, height_ratios=[1.0, 1.1])
    for f in range(factors):
        index, predicted = final.held_out[f]
        index, predicted = index[:MAX_POINTS], predicted[:MAX_POINTS]
        truth = data.factor_beliefs[f][index]
        colours = truth.clamp(0, 1).numpy()
        _simplex(axes[f"truth{f}"], truth, colours, f"factor {f + 1}: true belief")
        _simplex(axes[f"probe{f}"], predicted, colours, f"factor {f + 1}: probed (R² = {final.r2[f]:.3f})")

    ax = axes["dims"]
    shown = min(product_dim + 2, len(final.fractions), len(initial_fractions))
    ks = np.arange(1, shown + 1)
    ax.plot(ks, final.fractions[:shown].numpy(), "o-", label=f"trained: D = {final.dimension}")
    ax.plot(ks, initial_fractions[:shown].numpy(), "s--", color="0.5", label="initialisation")
    ax.axhline(variance_frac, color="black", lw=0.8, ls=":")
    ax.axvline(sum_dim, color="tab:green", lw=1, label=f"factored: Σ(s − 1) = {sum_dim}")
    ax.axvline(product_dim, color="tab:red", lw=1, label=f"joint: Π s − 1 = {product_dim}")
    ax.set_xlabel("principal components of the joint-belief-linear activations")
    ax.set_ylabel("cumulative variance fraction")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes["train"]
    steps, gap = records.series("loss_above_optimum")
    ax.plot(steps, np.maximum(gap, 1e-6), "k.-", label="held-out loss − optimum (nats)")
    first = steps[steps > 0]
    ax.set_xscale("symlog", linthresh=float(first[0]) if len(first) else 1.0)  # step 0 (initialisation) shown
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss above the optimum (nats per token)")
    twin = ax.twinx()
    for f in range(factors):
        s, r2 = records.series("probe_r2", factor=f + 1)
        twin.plot(s, r2, ".-", label=f"factor {f + 1} probe R²")
    twin.set_ylabel("held-out R²")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center left")
    return fig
