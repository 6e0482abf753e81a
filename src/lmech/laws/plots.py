"""Dots-on-curves figures for the laws (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import pyarrow as pa
from matplotlib.figure import Figure

from ..train.records import Records


def _curve(curves: pa.Table, name: str, lr: float) -> tuple[list[float], list[float]]:
    rows = [r for r in curves.to_pylist() if r["curve"] == name and r["lr"] == lr]
    return [r["x"] for r in rows], [r["y"] for r in rows]


def edge_of_stability_figure(records: Records, curves: pa.Table, lrs: Sequence[float]) -> Figure:
    """Top: measured sharpness (dots) against step, one colour per η, dashed at 2/η.
    Bottom: the training loss (lines) and gradient flow's loss mapped to steps t/η (black dashes)."""
    fig = Figure(figsize=(8, 7), constrained_layout=True)
    top, bottom = fig.subplots(2, 1, sharex=True)
    colours = matplotlib.colormaps["viridis"]
    for i, lr in enumerate(lrs):
        colour = colours(i / max(len(lrs) - 1, 1) * 0.85)
        steps, sharp = records.series("sharpness", lr=lr)
        top.plot(steps, sharp, "o", ms=3, color=colour, label=f"η = {lr:g}")
        x, y = _curve(curves, "2/lr", lr)
        top.plot(x, y, "--", color=colour, lw=1.2)
        steps, loss = records.series("loss", lr=lr)
        bottom.plot(steps, loss, "-", color=colour, lw=1)
        x, y = _curve(curves, "gradient flow loss", lr)
        if x:
            bottom.plot(x, y, "--", color="black", lw=1, label="gradient flow" if i == 0 else None)
    top.set_ylabel("sharpness λ_max")
    top.set_title("measured sharpness (dots) and the predicted edge 2/η (dashed)")
    top.legend(loc="lower right", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_xlabel("step")
    bottom.set_ylabel("training loss ½‖f(x) − y‖²")
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="upper right", fontsize=8)
    return fig
