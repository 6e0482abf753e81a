"""The chinchilla-extrapolation law's figure: held-out losses on the predicted frontier, errors in compute,
and the exponents' intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

if TYPE_CHECKING:  # the law module imports this one
    from .chinchilla_extrapolation import Extrapolation


def _curve(rows: list[dict], name: str, dataset: str) -> tuple[list[float], list[float]]:
    pts = sorted((r["x"], r["y"]) for r in rows if r["curve"] == name and r["dataset"] == dataset)
    return [x for x, _ in pts], [y for _, y in pts]


def chinchilla_extrapolation_figure(results: Sequence[Extrapolation], curves: pa.Table, max_factor: float) -> Figure:
    """Left: Chinchilla's loss against compute — fitted runs (grey), held-out runs (dots) with the law's
    prediction for each (crosses), the compute-optimal frontier of the fit below the cutoff (line) and of the
    fit on all runs (dashed). Middle: per dataset, the held-out runs' compute-equivalent error (geometric
    mean) of the law, of the all-run fit (the floor) and of a compute-only power law, against the tolerance.
    Right: Chinchilla's exponents below the cutoff with 95% intervals, against the all-run fit and the
    published values."""
    rows = curves.to_pylist()
    fig = Figure(figsize=(17, 5.2), constrained_layout=True)
    left, middle, right = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1.3, 0.8]})

    ex = results[0]
    data, held = ex.data, ex.held_out
    left.scatter(data.flops[~held], data.loss[~held], s=9, color="0.65", label=f"fitted ({int((~held).sum())} runs)")
    left.scatter(data.flops[held], data.loss[held], s=22, color="tab:blue", label=f"held out ({int(held.sum())} runs)")
    left.scatter(data.flops[held], ex.predicted[held], s=28, marker="x", color="tab:red", label="predicted for held out")
    x, y = _curve(rows, "frontier (fit below cutoff)", ex.name)
    left.plot(x, y, "-", color="tab:red", lw=1.3, label="compute-optimal frontier, fit below cutoff")
    x, y = _curve(rows, "frontier (fit on all runs)", ex.name)
    left.plot(x, y, "--", color="black", lw=1, label="frontier, fit on all runs")
    left.axvline(ex.cutoff, color="0.3", lw=0.8, ls=":")
    left.set_xscale("log")
    left.set_xlabel("training compute C = 6ND (FLOP)")
    left.set_ylabel("final loss (nats/token)")
    left.set_title(f"{ex.name}: fit below {ex.cutoff:.0e} FLOP, predict above", fontsize=10)
    left.legend(fontsize=7, loc="upper right")

    names = [r.name for r in results]
    pos = np.arange(len(results))
    width = 0.27
    finite = [v for r in results for v in (r.geometric_mean(r.factor), r.geometric_mean(r.floor_factor),
                                           r.geometric_mean(r.baseline_factor)) if np.isfinite(v)]
    top = max([max_factor * 1.2, *finite])
    for k, (label, attr, colour) in enumerate((("law, fit below cutoff", "factor", "tab:red"),
                                               ("floor: fit on all runs", "floor_factor", "0.55"),
                                               ("compute-only power law", "baseline_factor", "tab:olive"))):
        values = np.array([r.geometric_mean(getattr(r, attr)) for r in results])
        shown = np.where(np.isfinite(values), values, top)
        middle.bar(pos + (k - 1) * width, shown - 1.0, width, bottom=1.0, color=colour, label=label)
        for x in pos[~np.isfinite(values)]:
            middle.text(x + (k - 1) * width, top, "∞", ha="center", va="bottom", fontsize=8)
    middle.axhline(max_factor, color="black", ls="--", lw=1, label=f"tolerance ×{max_factor:g}")
    middle.set_ylim(1.0, top * 1.08)
    middle.set_xticks(pos, [n.replace("__", " / ") for n in names], fontsize=6.5, rotation=90)
    middle.set_ylabel("held-out error as a factor of compute (geometric mean)")
    middle.set_title("out-of-sample error in compute, per dataset", fontsize=10)
    middle.legend(fontsize=7)

    keys = [("alpha", "α"), ("beta", "β"), ("a", "a = β/(α+β)")]
    for i, (key, _) in enumerate(keys):
        lo, hi = ex.fit.intervals[key]
        right.errorbar([ex.fit.constants[key]], [i], xerr=[[ex.fit.constants[key] - lo], [hi - ex.fit.constants[key]]],
                       fmt="o", color="tab:red", capsize=3, label="below cutoff, 95% interval" if i == 0 else None)
        right.plot([ex.full.constants[key]], [i - 0.15], "s", color="black", ms=5,
                   label="fit on all runs" if i == 0 else None)
    right.plot([0.28], [1 + 0.15], "v", color="tab:purple", label="Hoffmann et al. β = 0.28")
    right.plot([0.73], [2 + 0.15], "v", color="tab:brown", label="Kaplan et al. a = 0.73")
    right.axvspan(0.4, 0.6, ymin=0.7, ymax=1.0, color="tab:green", alpha=0.12, label="a within 0.1 of 1/2")
    right.set_yticks(range(len(keys)), [label for _, label in keys])
    right.set_ylim(-0.6, len(keys) - 0.4)
    right.set_xlim(0.2, 0.8)
    right.set_xlabel("exponent")
    right.set_title(f"{ex.name}: exponents", fontsize=10)
    right.legend(fontsize=7, loc="lower right")
    return fig
