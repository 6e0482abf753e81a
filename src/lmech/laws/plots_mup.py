"""Figures of the muP laws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure

NAMES = {"sp": "SP (one global learning rate)", "mup": "muP"}


@dataclass(frozen=True)
class TransferRow:
    """One learning-rate sweep: a row of :func:`lr_transfer_figure`.

    Attributes:
        log2_lrs: the grid, of shape (n_lrs,).
        widths: ascending, of length n_widths.
        mean_losses: ``"sp"`` and ``"mup"`` → losses of shape (n_widths, n_lrs) (``inf`` where a run diverged).
        optima: ``"sp"`` and ``"mup"`` → ``log₂ η*`` per width (NaN where not located).
        steps: the training budget, for the axis label.
        task: the model and data, for the titles.
        width_label: the x-axis label of the optimum-against-width panel.
    """

    log2_lrs: Sequence[float]
    widths: Sequence[int]
    mean_losses: Mapping[str, np.ndarray]
    optima: Mapping[str, Sequence[float]]
    steps: int
    task: str
    width_label: str = "width n"


def lr_transfer_figure(rows: Sequence[TransferRow], *, grid_step: float) -> Figure:
    """One row per sweep. Left and middle: final training loss (mean over seeds) against the base learning rate,
    one curve per width, for SP and for muP on shared axes, each width's optimum (parabola vertex) marked by a
    dotted line. Right: ``log₂ η*`` against width, dots measured; the predictions as lines: muP flat at the first
    width's optimum with the ±1 grid-step tolerance shaded, SP falling ``∝ 1/width`` (slope −1) from the first
    width's.
    """
    fig = Figure(figsize=(15, 4.8 * len(rows)), constrained_layout=True)
    axes = np.asarray(fig.subplots(len(rows), 3, squeeze=False))
    for (left, middle, right), row in zip(axes, rows):
        _row(left, middle, right, row, grid_step)
    return fig


def _row(left, middle, right, row: TransferRow, grid_step: float) -> None:
    colours = matplotlib.colormaps["viridis"]
    widths, optima = row.widths, row.optima
    lrs = 2.0 ** np.asarray(row.log2_lrs, dtype=float)
    finite = np.concatenate([np.asarray(m, dtype=float).ravel() for m in row.mean_losses.values()])
    finite = finite[np.isfinite(finite)]
    for ax, p in ((left, "sp"), (middle, "mup")):
        losses = np.asarray(row.mean_losses[p], dtype=float)
        for a, width in enumerate(widths):
            colour = colours(a / max(len(widths) - 1, 1) * 0.9)
            ax.plot(lrs, np.where(np.isfinite(losses[a]), losses[a], np.nan), "o-", ms=3.5, lw=1.2, color=colour,
                    label=f"width {width}")
            if np.isfinite(optima[p][a]):
                ax.axvline(2.0 ** optima[p][a], color=colour, ls=":", lw=1.2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        if finite.size:
            ax.set_ylim(finite.min() * 0.7, finite.max() * 1.4)
        ax.set_xlabel("base learning rate η (Adam)")
        ax.set_ylabel(f"training loss after {row.steps} steps (mean over seeds)")
        ax.set_title(f"{NAMES[p]}: {row.task}\n(dotted: optimum, parabola in log loss)", fontsize=10)
        ax.legend(fontsize=7)
    middle.sharey(left)
    w = np.asarray(widths, dtype=float)
    for p, fmt, colour in (("sp", "o", "tab:red"), ("mup", "s", "tab:blue")):
        right.plot(w, optima[p], fmt, color=colour, ms=7, label=f"{NAMES[p]}: measured")
    mup0, sp0 = optima["mup"][0], optima["sp"][0]
    if np.isfinite(mup0):
        right.axhline(mup0, color="tab:blue", lw=1, label="muP prediction: flat")
        right.axhspan(mup0 - grid_step, mup0 + grid_step, color="tab:blue", alpha=0.12, label="± one grid step")
    if np.isfinite(sp0):
        right.plot(w, sp0 - np.log2(w / w[0]), "-", color="tab:red", lw=1, label="SP prediction: η* ∝ 1/width")
    right.set_xscale("log", base=2)
    right.set_xlabel(row.width_label)
    right.set_ylabel("log₂ η* (optimal base learning rate)")
    right.set_title("the optimum against width (dots measured, lines predicted)", fontsize=10)
    right.legend(fontsize=7)
