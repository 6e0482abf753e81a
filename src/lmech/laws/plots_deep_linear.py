"""The figure of the ``deep-linear-modes`` law: mode strengths (dots) on the theory's sigmoids, and
the loss on the predicted staircase, for each depth and start."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from ..train.records import Records

MAX_DOTS = 35  # per mode and panel, so the curves stay visible under the dots


def _curve(rows: list[dict], curve: str, **index) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["x"], r["y"]) for r in rows if r["curve"] == curve and all(r.get(k) == v for k, v in index.items())]
    return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if pts else (np.zeros(0), np.zeros(0))


def _thin(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most ``MAX_DOTS`` records, evenly spaced along the curve's arc length in axis-normalised
    units, so the fast transitions get dots as well as the plateaus."""
    if len(steps) <= MAX_DOTS:
        return steps, values
    span = lambda a: (a - a.min()) / max(float(np.ptp(a)), 1e-300)  # noqa: E731
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(span(steps.astype(float))), np.diff(span(values))))])
    keep = np.unique(np.searchsorted(arc, np.linspace(0.0, arc[-1], MAX_DOTS)).clip(0, len(steps) - 1))
    return steps[keep], values[keep]


def deep_linear_modes_figure(records: Records, curves: pa.Table, config) -> Figure:
    """One column per depth. Rows: mode strengths ``a_μ(t)`` from the aligned start and from the
    random start (dots measured, lines predicted, one colour per mode, dotted at ``s_μ/2``); the
    training loss against the predicted staircase, both starts."""
    rows = curves.to_pylist()
    depths = config.depths
    fig = Figure(figsize=(4.6 * len(depths), 10), constrained_layout=True)
    axes = np.asarray(fig.subplots(3, len(depths), squeeze=False))
    colours = matplotlib.colormaps["viridis"]
    n_modes = len(config.singular_values)
    for col, depth in enumerate(depths):
        for row, init in enumerate(("aligned", "random")):
            ax = axes[row, col]
            for m, s in enumerate(config.singular_values):
                colour = colours(m / max(n_modes - 1, 1) * 0.85)
                steps, values = _thin(*records.series("mode_strength", depth=depth, init=init, mode=m))
                ax.plot(config.lr * steps, values, "o", ms=3.5, color=colour, label=f"s = {s:g}")
                ax.plot(*_curve(rows, "mode_strength", depth=depth, init=init, mode=m), "-", color=colour, lw=1.2)
                ax.axhline(0.5 * s, color=colour, ls=":", lw=0.6)
            ax.set_title(f"depth {depth}, {init} start")
            ax.set_xlabel("time t = lr × step")
            ax.set_ylabel("mode strength u_μᵀ W_L⋯W_1 v_μ")
            if col == 0 and row == 0:
                ax.legend(fontsize=8, loc="lower right", title="dots: GD, lines: theory", title_fontsize=8)
        ax = axes[2, col]
        for init, marker, colour in (("aligned", "o", "C0"), ("random", "s", "C3")):
            steps, values = _thin(*records.series("loss", depth=depth, init=init))
            ax.plot(config.lr * steps, values, marker, ms=3.5, color=colour, mfc="none", label=f"GD, {init} start")
            ax.plot(*_curve(rows, "loss", depth=depth, init=init), "-", color=colour, lw=1.2,
                    label=f"predicted staircase, {init}")
        ax.set_title(f"depth {depth}: loss staircase")
        ax.set_xlabel("time t = lr × step")
        ax.set_ylabel("loss ½ mean‖y − Wx‖²")
        if col == 0:
            ax.legend(fontsize=8, loc="upper right")
    return fig
