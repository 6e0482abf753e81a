"""The kernel-scaling-exponent law's figure: measured learning curves on the theory's, log-log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from ..train.records import Records

XLABELS = {"krr-gaussian": "training-set size n", "krr-circle": "training-set size n",
           "random-features": "number of features p (n/p fixed)"}
TITLES = {"krr-gaussian": "ridgeless KRR, Gaussian features", "krr-circle": "ridgeless KRR on the circle",
          "random-features": "least squares on linear random features"}


def _curve(rows: list[dict], name: str, setting: str, a: float, b: float) -> tuple[list[float], list[float]]:
    pts = sorted((r["x"], r["y"]) for r in rows
                 if r["curve"] == name and r["setting"] == setting and r["a"] == a and r["b"] == b)
    return [x for x, _ in pts], [y for _, y in pts]


def kernel_scaling_figure(records: Records, curves: pa.Table, settings: Sequence[str],
                          pairs: Sequence[tuple[float, float]], summary: Mapping[str, float]) -> Figure:
    """One panel per setting: test MSE against ``n`` (or ``p``), log-log. Dots: the measured mean ± its
    standard error (sd/√draws); solid lines: the theory (eigenlearning, or the random-feature
    deterministic equivalent); dashed: the asymptotic power law, anchored at the theory's first point.
    One colour per ``(a, b)`` pair; the legend gives the measured and predicted exponents."""
    rows = curves.to_pylist()
    fig = Figure(figsize=(5.2 * len(settings), 4.4), constrained_layout=True)
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    colours = matplotlib.colormaps["viridis"]
    for ax, setting in zip(axes, settings):
        for k, (a, b) in enumerate(pairs):
            colour = colours(k / max(len(pairs) - 1, 1) * 0.85)
            label = f"{setting} a={a:g} b={b:g}"
            sizes, mse = records.series("test_mse", setting=setting, a=a, b=b)
            _, sd = records.series("test_mse_sd", setting=setting, a=a, b=b)
            _, draws = records.series("draws", setting=setting, a=a, b=b)
            measured = summary[f"{label}: measured exponent"]
            predicted = summary[f"{label}: predicted exponent (theory curve, same sizes)"]
            asymptotic = summary[f"{label}: asymptotic exponent"]
            ax.errorbar(sizes, mse, yerr=sd / np.sqrt(np.maximum(draws, 1)), fmt="o", ms=4, capsize=2, color=colour,
                        label=f"a={a:g}, b={b:g}: measured {measured:.3f}, predicted {predicted:.3f} "
                              f"(asymptotic {asymptotic:g})")
            x, y = _curve(rows, "test_mse", setting, a, b)
            ax.plot(x, y, "-", color=colour, lw=1.2)
            x, y = _curve(rows, "asymptotic", setting, a, b)
            ax.plot(x, y, "--", color=colour, lw=0.9, alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(XLABELS[setting])
        ax.set_ylabel("test MSE")
        ax.set_title(f"{TITLES[setting]}\n(dots measured, lines theory, dashed asymptotic)", fontsize=10)
        ax.legend(fontsize=7, title="decay exponents", title_fontsize=7, loc="lower left")
    return fig
