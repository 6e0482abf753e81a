"""The figure of the ``fourier-feature-order`` law: the loss staircase on AGF's plateau levels, and each
frequency's fitted fraction and power in the weights over time."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from ..train.records import Records

MAX_DOTS = 120  # loss records drawn as dots


def _thin(steps: np.ndarray, values: np.ndarray, num: int = MAX_DOTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``num`` records, evenly spaced in log time (records at step 0 dropped: the axis is logarithmic)."""
    keep = steps > 0
    steps, values = steps[keep], values[keep]
    if len(steps) <= num:
        return steps, values
    idx = np.unique(np.searchsorted(np.log(steps), np.linspace(np.log(steps[0]), np.log(steps[-1]), num)))
    idx = idx[idx < len(steps)]
    return steps[idx], values[idx]


def fourier_feature_order_figure(records: Records, curves: pa.Table, config, power: np.ndarray,
                                 order: np.ndarray) -> Figure:
    """Three panels on a common log-time axis ``t = lr × step``: (top) the training loss (dots) with AGF's plateau
    levels ``L_m`` (dashed, coloured by the frequency whose acquisition ends the plateau) and the measured plateau
    points (open circles); (middle) each frequency's fitted fraction ``φ_k`` with its acquisition time (``φ_k = ½``);
    (bottom) each frequency's power in the weights ``U, V, W``. One colour per frequency, in the predicted order."""
    colours = matplotlib.colormaps["viridis"]
    colour = {int(k): colours(r / max(len(order) - 1, 1) * 0.9) for r, k in enumerate(order)}
    fig = Figure(figsize=(9.5, 10.5), constrained_layout=True)
    ax_loss, ax_fit, ax_weight = fig.subplots(3, 1, sharex=True)
    lr = config.lr

    steps, loss = _thin(*records.series("loss"))
    ax_loss.plot(lr * steps, loss, "o", ms=2.5, color="0.25", label="GD loss")
    levels = [r for r in curves.to_pylist() if r["curve"] == "plateau_level"]
    for row in levels:
        m = int(row["x"])
        nxt = int(order[m]) if m < len(order) else None
        ax_loss.axhline(row["y"], ls="--", lw=1.0, color=colour[nxt] if nxt is not None else "0.5",
                        label=f"AGF level L_{m}" + (f" (until k = {nxt})" if nxt is not None else ""))
    mark_steps, mark_loss = records.series("plateau_loss")
    ax_loss.plot(lr * mark_steps, mark_loss, "o", ms=8, mfc="none", mec="C3", label="measured plateau")
    positive = [r["y"] for r in levels if r["y"] > 0]
    ax_loss.set_yscale("log")
    ax_loss.set_ylim(bottom=0.3 * min(positive + [float(loss.min()) if len(loss) else 1.0]))
    ax_loss.set_ylabel("loss  mean (y − f)²")
    ax_loss.set_title(f"Z_{config.p}, width {config.width}, init scale {config.init_scale:g}: the AGF staircase")
    ax_loss.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    for k in order:
        k = int(k)
        steps, fit = _thin(*records.series("fitted_fraction", frequency=k), num=400)
        ax_fit.plot(lr * steps, fit, "-", lw=1.4, color=colour[k], label=f"k = {k}, P = {power[k]:.2f}")
        _, acquired = records.series("acquisition_time", frequency=k)
        if len(acquired) and np.isfinite(acquired[0]):
            ax_fit.plot([acquired[0]], [0.5], "v", ms=7, color=colour[k])
        steps, wp = _thin(*records.series("weight_power", frequency=k), num=400)
        ax_weight.plot(lr * steps, wp, "-", lw=1.4, color=colour[k])
    ax_fit.axhline(0.5, color="0.6", ls=":", lw=0.8)
    ax_fit.set_ylabel("fitted fraction φ_k = ⟨f_k, y_k⟩ / ‖y_k‖²")
    ax_fit.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="predicted order\n(▼: acquired)",
                  title_fontsize=7)
    ax_weight.set_yscale("log")
    ax_weight.set_ylabel("power of U, V, W at frequency k")
    ax_weight.set_xlabel("time t = lr × step")
    ax_weight.set_xscale("log")
    return fig
