"""The neural-collapse law's figure: NC1-NC4 over training, and the class means' cosines against the simplex ETF."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure


def collapse_figure(steps: np.ndarray, history: Sequence, t0: int | None, classes: int, cosines: np.ndarray) -> Figure:
    """Left: NC1, equiangularity, equinorm, NC3 and NC4 against steps (log-log; the terminal phase shaded).
    Right: the pairwise cosines of the final centred class means, with the ETF's −1/(C−1) marked."""
    fig = Figure(figsize=(12, 5), constrained_layout=True)
    left, right = fig.subplots(1, 2)
    x = np.maximum(steps, 1)
    series = {"NC1  Tr(Σ_W Σ_B⁺)/C": "nc1", "equiangularity  mean|cos + 1/(C−1)|": "equiangular_means",
              "equinorm  std/mean ‖μ̃_c‖": "equinorm_means", "NC3  ‖W̃ − M̃‖_F": "nc3", "NC4  disagreement": "nc4"}
    for label, attr in series.items():
        y = np.array([getattr(nc, attr) for nc in history])
        pos = y > 0
        left.plot(x[pos], y[pos], marker="o", ms=3, label=label)
    if t0 is not None:
        left.axvspan(max(t0, 1), x[-1], color="0.9", label=f"terminal phase (t₀ = {t0})")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("full-batch step")
    left.set_ylabel("observable (collapse predicts → 0)")
    left.legend(fontsize=8)
    off = cosines[~np.eye(classes, dtype=bool)]
    right.hist(off, bins=30, color="C0", alpha=0.8, label="pairwise cosines of centred class means at T")
    right.axvline(-1.0 / (classes - 1), color="black", ls="--", label=f"simplex ETF: −1/(C−1) = {-1 / (classes - 1):.3f}")
    right.set_xlabel("cosine")
    right.set_ylabel("pairs (counted twice)")
    right.legend(fontsize=8)
    return fig
