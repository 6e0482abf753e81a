"""The heavy-tailed-spectra law's figure: ESDs against Marchenko–Pastur and their fitted tails; α over training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import pyarrow as pa
import torch
from matplotlib.figure import Figure

from ..measure.spectra import esd
from ..train.records import Records


def _log_histogram(ax, eigenvalues: np.ndarray, bins: np.ndarray, **style) -> None:
    counts, edges = np.histogram(eigenvalues, bins=bins)
    density = counts / (eigenvalues.size * np.diff(edges))  # a density over the whole ESD, not only the bins
    centres = np.sqrt(edges[:-1] * edges[1:])
    keep = density > 0
    ax.plot(centres[keep], density[keep], **style)


def spectra_figure(initial: Sequence[torch.Tensor], trained: Mapping[int, Sequence[torch.Tensor]],
                   square: Sequence[int], records: Records, curves: pa.Table, null_alpha: Mapping[int, Sequence[float]],
                   batches: Sequence[int]) -> Figure:
    """Top, one panel per square layer: the ESD of ``X = WᵀW/N`` on log-log axes (log-spaced bins over the top three
    decades, density over the whole ESD) at initialisation and after training with each batch size, the
    Marchenko–Pastur density at initialisation (black dashes) and each trained ESD's fitted power-law tail (lines).
    Bottom: the fitted α (± Clauset's standard error) against step, with the range of α over the element-wise
    shuffles of the small-batch trained matrix (grey band)."""
    fig = Figure(figsize=(6 * len(square), 9), constrained_layout=True)
    axes = fig.subplots(2, len(square), squeeze=False)
    colours = {batches[0]: "tab:red", batches[1]: "tab:blue"}
    table = curves.to_pylist()
    for col, layer in enumerate(square):
        top, bottom = axes[0, col], axes[1, col]
        spectra = {0: esd(initial[layer]), **{b: esd(ws[layer]) for b, ws in trained.items()}}
        hi = max(s.max() for s in spectra.values())
        bins = np.geomspace(hi * 1e-3, hi * 1.001, 50)  # at Q = 1 the ESD reaches down to 0; show three decades
        _log_histogram(top, spectra[0], bins, color="0.5", marker="o", ms=3, ls="none", label="initialisation")
        for b in batches:
            _log_histogram(top, spectra[b], bins, color=colours[b], marker="o", ms=3, ls="none",
                           label=f"trained, batch {b}")
        mp = [(r["x"], r["y"]) for r in table if r["curve"] == "marchenko-pastur" and r["layer"] == layer and r["y"] > 0]
        top.plot(*zip(*mp), "k--", lw=1.2, label="Marchenko–Pastur at init")
        for b in batches:
            tail = [(r["x"], r["y"]) for r in table if r["curve"] == "power-law tail" and r["layer"] == layer
                    and r["batch_size"] == b]
            alpha = records.series("alpha", batch_size=b, layer=layer)[1][-1]
            top.plot(*zip(*tail), color=colours[b], lw=1.5, label=f"power-law fit, α = {alpha:.2f}")
        top.set_xscale("log")
        top.set_yscale("log")
        top.set_xlabel("eigenvalue λ of WᵀW/N")
        top.set_ylabel("density")
        top.set_title(f"layer {layer} ({initial[layer].shape[0]}×{initial[layer].shape[1]})", fontsize=10)
        top.legend(fontsize=7)
        bottom.axhspan(min(null_alpha[layer]), max(null_alpha[layer]), color="0.85",
                       label=f"element-wise shuffles of trained W ({len(null_alpha[layer])})")
        for b in batches:
            steps, alpha = records.series("alpha", batch_size=b, layer=layer)
            _, sigma = records.series("alpha_sigma", batch_size=b, layer=layer)
            bottom.errorbar(steps, alpha, yerr=sigma, color=colours[b], marker="o", ms=3, lw=1, capsize=2,
                            label=f"batch {b}")
        bottom.set_xscale("symlog", linthresh=10)
        bottom.set_xlabel("SGD step")
        bottom.set_ylabel("fitted tail exponent α (± Clauset s.e.)")
        bottom.legend(fontsize=7)
    return fig
