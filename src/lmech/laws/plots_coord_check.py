"""The mup-coord-check law's figure: coordinate sizes against width, step by step, muP beside SP."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure

from ..train.records import Records


def coord_check_figure(records: Records, widths: Sequence[int], steps: int) -> Figure:
    """Rows: mean |activation| and mean |update| (``|αΔW x|``). Columns: muP, SP. Each panel: one line per
    (layer, step) against width, log-log, seeds averaged; a flat line is a width-independent coordinate."""
    fig = Figure(figsize=(11, 8), constrained_layout=True)
    axes = fig.subplots(2, 2, sharex=True)
    colours = matplotlib.colormaps["viridis"]
    layers = sorted({r["layer"] for r in records.rows if r["layer"]})
    markers = ["o", "s", "^", "D", "v"]
    for col, name in enumerate(("mup", "sp")):
        for row, observable in enumerate(("activation", "update")):
            ax = axes[row, col]
            for li, layer in enumerate(layers):
                for step in range(1 if observable == "update" else 0, steps + 1):
                    values = [np.mean([r["value"] for r in records.rows if r["observable"] == observable
                                       and r["parametrization"] == name and r["layer"] == layer and r["width"] == w
                                       and r["step"] == step]) for w in widths]
                    label = f"layer {layer}" if step == steps else None
                    ax.plot(widths, values, marker=markers[li % len(markers)], ms=3, lw=1,
                            color=colours(step / max(steps, 1) * 0.9), label=label)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{'muP' if name == 'mup' else 'SP'}: mean |{observable}| (colour: step 0 dark → {steps})",
                         fontsize=10)
            ax.set_xlabel("width")
            ax.set_ylabel(f"mean |{observable}| per coordinate")
            ax.legend(fontsize=7)
    return fig
