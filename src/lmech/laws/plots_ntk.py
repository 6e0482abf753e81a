"""The figure of the ``ntk-infinite-width`` law: three panels, dots on curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from ..train.records import Records


def _curve(curves: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in curves.to_pylist() if r["curve"] == name]
    return np.array([r["x"] for r in rows]), np.array([r["y"] for r in rows])


def _rows(records: Records, observable: str) -> list[dict]:
    return [r for r in records.rows if r["observable"] == observable]


def ntk_infinite_width_figure(records: Records, curves: pa.Table, config) -> Figure:
    """(a) NTK error at initialisation against width, log-log, with the fitted line and a width^(−1/2)
    guide; (b) the wide network's test loss (dots) on kernel gradient flow's (line), and final test
    outputs against their prediction; (c) the NTK's movement against width, NTK vs μP."""
    fig = Figure(figsize=(14, 8.5), constrained_layout=True)
    (a, b, b2), (b3, c, c2) = fig.subplots(2, 3)

    rows = _rows(records, "ntk_relative_error")
    a.loglog([r["width"] for r in rows], [r["value"] for r in rows], "o", ms=4, alpha=0.7, label="measured (per seed)")
    a.loglog(*_curve(curves, "fit"), "-", color="C1", label="least-squares fit")
    a.loglog(*_curve(curves, "width^-1/2"), "--", color="grey", label="∝ width^(−1/2)")
    a.set_xlabel("width")
    a.set_ylabel("‖Θ_emp − Θ_∞‖_F / ‖Θ_∞‖_F")
    a.set_title("(a) NTK at initialisation")
    a.legend(fontsize=8)

    widest = config.wide_widths[-1]
    steps, loss = records.series("test_loss", width=widest, seed=0)
    b.plot(config.lr * steps, loss, "o", label=f"width {widest} network")
    b.plot(*_curve(curves, "kernel test loss"), "-", color="black", label="kernel gradient flow (Θ_∞)")
    b.set_xlabel("time t = lr × step")
    b.set_ylabel("test loss ½‖f − y‖²")
    b.set_title("(b) training is kernel regression")
    b.legend(fontsize=8)

    x, y = _curve(curves, "final test outputs")
    b2.plot(x, y, ".", ms=3, alpha=0.5)
    lim = [min(x.min(), y.min()), max(x.max(), y.max())] if len(x) else [0, 1]
    b2.plot(lim, lim, "-", color="black", lw=1)
    b2.set_xlabel("predicted test output (kernel gradient flow)")
    b2.set_ylabel("network's test output")
    b2.set_title(f"(b) outputs at t = {config.lr * config.steps:g}")

    x, y = _curve(curves, "output deviation")
    b3.loglog(x, y, "o-", label="measured (max over t, mean over seeds)")
    if len(x):
        b3.loglog(x, y[0] * (x / x[0]) ** -0.5, "--", color="grey", label="∝ width^(−1/2)")
    b3.axhline(0.05, color="C3", lw=1, label="tolerance 5%")
    b3.set_xlabel("width")
    b3.set_ylabel("‖f_net − f_kernel‖ / ‖f_kernel‖ on test inputs")
    b3.set_title("(b) distance to the infinite-width prediction")
    b3.legend(fontsize=8)

    for param, label in (("ntk", "NTK parametrisation (lazy)"), ("mean-field", "μP output scale (rich)")):
        x, y = _curve(curves, f"{param} change")
        c.loglog(x, y, "o-", label=label)
        if param == "ntk" and len(x):
            c.loglog(x, y[0] * (x / x[0]) ** -1.0, ":", color="grey", label="∝ 1/width")
            c.loglog(x, y[0] * (x / x[0]) ** -0.5, "--", color="grey", label="∝ width^(−1/2)")
        rows = [r for r in _rows(records, "final_train_loss") if r["parametrization"] == param]
        c2.semilogx([r["width"] for r in rows], [r["value"] for r in rows], "o-", label=label)
    c.set_xlabel("width")
    c.set_ylabel("‖Θ_T − Θ_0‖_F / ‖Θ_0‖_F")
    c.set_title("(c) kernel movement during training")
    c.legend(fontsize=8)
    c2.set_xlabel("width")
    c2.set_ylabel("training loss at t")
    c2.set_title("(c) both parametrisations train")
    c2.legend(fontsize=8)
    return fig
