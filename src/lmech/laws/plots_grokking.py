"""The grokking law's figure: accuracy and loss over steps (log axis), and the embedding's Fourier spectrum."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..train.records import Records


def grokking_figure(records: Records, power: np.ndarray, power_init: np.ndarray, key: Sequence[int], t1: float,
                    t2: float, delay: float) -> Figure:
    """Left: training and test accuracy against step (log axis), with ``t₁`` (training ≥ 99%) and ``t₂`` (test
    ≥ 95%) marked, and the steps ``t₁ … delay·t₁`` shaded, where ``t₂`` would be too early. Middle: training and
    test loss (log-log), and on the right axis the number of frequencies that carry 80% of the embedding's Fourier
    power. Right: the share of the embedding's power (over frequencies ``1 … (p − 1)/2``) at each frequency, at
    the end (bars, key frequencies in red) and at initialisation (line)."""
    fig = Figure(figsize=(16, 4.8), constrained_layout=True)
    acc_ax, loss_ax, spec_ax = fig.subplots(1, 3)
    for name, colour in (("train", "tab:blue"), ("test", "tab:orange")):
        steps, acc = records.series(f"{name}_accuracy")
        keep = steps > 0
        acc_ax.plot(steps[keep], acc[keep], "-", color=colour, label=f"{name} accuracy")
        steps, loss = records.series(f"{name}_loss")
        keep = (steps > 0) & (loss > 0)
        loss_ax.plot(steps[keep], loss[keep], "-", color=colour, label=f"{name} loss")
    for t, label, style in ((t1, "t₁: train ≥ 99%", "--"), (t2, "t₂: test ≥ 95%", ":")):
        if np.isfinite(t) and t > 0:
            acc_ax.axvline(t, color="black", ls=style, lw=1, label=f"{label} (step {t:.0f})")
    if np.isfinite(t1) and t1 > 0:
        acc_ax.axvspan(t1, delay * t1, color="0.9", label=f"t₂ < {delay:g}·t₁ (not delayed enough)")
    acc_ax.set_xscale("log")
    acc_ax.set_xlabel("step")
    acc_ax.set_ylabel("accuracy")
    ratio = t2 / t1 if np.isfinite(t1) and np.isfinite(t2) and t1 > 0 else float("nan")
    acc_ax.set_title(f"memorise, then generalise: t₂/t₁ = {ratio:.1f}", fontsize=10)
    acc_ax.legend(fontsize=8)
    loss_ax.set_xscale("log")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("cross-entropy (nats)")
    count_ax = loss_ax.twinx()
    steps, count = records.series("key_frequencies_80")
    keep = steps > 0
    count_ax.plot(steps[keep], count[keep], "-", color="tab:green", lw=1, label="frequencies for 80% of the power")
    count_ax.set_ylabel("frequencies for 80% of the embedding's power", color="tab:green")
    count_ax.set_ylim(0, len(power))
    handles = loss_ax.get_legend_handles_labels()[0] + count_ax.get_legend_handles_labels()[0]
    loss_ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower left")
    loss_ax.set_title("loss, and the embedding's Fourier concentration", fontsize=10)
    freqs = np.arange(1, len(power))
    share, share_init = power[1:] / power[1:].sum(), power_init[1:] / power_init[1:].sum()
    key_set = {int(f) for f in key}
    spec_ax.bar(freqs, share, color=["tab:red" if k in key_set else "0.6" for k in freqs])
    spec_ax.plot(freqs, share_init, "-", color="black", lw=1)
    handles = [Patch(color="tab:red", label=f"end, key frequencies {sorted(key_set)}"),
               Patch(color="0.6", label="end, other frequencies"), Line2D([], [], color="black", lw=1, label="initialisation")]
    spec_ax.set_xlabel("frequency k (ω = 2πk/p)")
    spec_ax.set_ylabel("share of the embedding's Fourier power")
    spec_ax.set_title("embedding W_E in the Fourier basis of Z_p", fontsize=10)
    spec_ax.legend(handles=handles, fontsize=8)
    return fig
