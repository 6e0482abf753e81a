"""The eigenlearning law's figure: learning curves and learnabilities, measured dots on predicted curves."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import pyarrow as pa
from matplotlib.figure import Figure

from ..train.records import Records


def _curve(rows: list[dict], name: str, population: str, ridge: float, mode: int | None = None):
    pts = sorted((r["x"], r["y"]) for r in rows
                 if r["curve"] == name and r["population"] == population and r["ridge"] == ridge and r["mode"] == mode)
    return [x for x, _ in pts], [y for _, y in pts]


def eigenlearning_figure(records: Records, curves: pa.Table, populations: Sequence[str], ridges: Sequence[float],
                         num_modes: int) -> Figure:
    """One column per population. Top row: test MSE against n (log-log), measured mean ± one standard
    deviation over draws (dots) on the estimate (lines), one colour per ridge; dotted, eigenlearning's
    infinite-population estimate where it differs. Then one row per ridge: the top modes' learnabilities
    against n, measured (dots) and estimated (lines), one colour per mode."""
    rows = curves.to_pylist()
    fig = Figure(figsize=(5.5 * len(populations), 3.2 * (1 + len(ridges))), constrained_layout=True)
    axes = fig.subplots(1 + len(ridges), len(populations), squeeze=False)
    ridge_colours = matplotlib.colormaps["plasma"]
    mode_colours = matplotlib.colormaps["viridis"]
    for col, name in enumerate(populations):
        top = axes[0, col]
        for k, ridge in enumerate(ridges):
            colour = ridge_colours(k / max(len(ridges), 1) * 0.8)
            n, mse = records.series("test_mse", population=name, ridge=ridge)
            _, sd = records.series("test_mse_sd", population=name, ridge=ridge)
            top.errorbar(n, mse, yerr=sd, fmt="o", ms=4, capsize=2, color=colour, label=f"measured, δ = {ridge:g}")
            x, y = _curve(rows, "test_mse", name, ridge)
            top.plot(x, y, "-", color=colour, lw=1.2, label=f"estimate, δ = {ridge:g}")
            x, y = _curve(rows, "test_mse_infinite_population", name, ridge)
            if x:
                top.plot(x, y, ":", color=colour, lw=1.2, label=f"infinite population, δ = {ridge:g}")
        top.set_xscale("log")
        top.set_yscale("log")
        top.set_xlabel("training-set size n")
        top.set_ylabel("test MSE on the population")
        top.set_title(f"{name}: learning curve (dots measured, lines estimated)", fontsize=10)
        top.legend(fontsize=7)
        for k, ridge in enumerate(ridges):
            ax = axes[1 + k, col]
            for mode in range(1, num_modes + 1):
                colour = mode_colours((mode - 1) / max(num_modes - 1, 1) * 0.9)
                n, learn = records.series("learnability", population=name, ridge=ridge, mode=mode)
                ax.plot(n, learn, "o", ms=3, color=colour)
                x, y = _curve(rows, "learnability", name, ridge, mode)
                ax.plot(x, y, "-", color=colour, lw=1, label=f"mode {mode}" if mode in (1, num_modes) else None)
            ax.set_xscale("log")
            ax.set_ylim(-0.05, 1.05)
            ax.set_xlabel("training-set size n")
            ax.set_ylabel("learnability ⟨φ_i, f̂_i⟩ (dots measured)")
            ax.set_title(f"{name}, δ = {ridge:g}: learnability of the top {num_modes} modes", fontsize=10)
            ax.legend(fontsize=7, loc="lower right")
    return fig
