"""The group-composition-depth law's figures: depth needed against sequence length, and trained accuracy against
depth."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before pyplot; reports render without a display

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def depth_figure(ks: Sequence[int], smallest: Mapping[tuple[str, int], float], groups: Sequence[str],
                 max_depth: int, checked_ks: Sequence[int] = ()) -> Figure:
    """Nonlinear layers (or recurrent steps) needed against ``k``: the constructed RNN's ``k − 1`` steps, the tree
    MLP's ``⌈log₂ k⌉`` layers, the bound ``⌈log₂ k⌉ + 1`` (solid where checked, at ``checked_ks``; dotted where
    only reported), and the smallest trained depth per group (an open marker at ``max_depth + 1`` where no depth
    tried reached the target)."""
    fig = Figure(figsize=(6.5, 4.8), constrained_layout=True)
    ax = fig.subplots()
    grid = np.arange(2, max(ks) + 1)
    log_depth = np.array([(int(k) - 1).bit_length() for k in grid])
    ax.plot(grid, grid - 1, color="tab:red", label="constructed RNN: k − 1 recurrent steps")
    ax.step(grid, log_depth, where="post", color="tab:blue", label="constructed tree MLP: ⌈log₂ k⌉ layers")
    ax.step(grid, log_depth + 1, where="post", color="black", ls=":", lw=1, label="⌈log₂ k⌉ + 1 (reported only)")
    checked = [k for k in sorted(checked_ks) if k in ks]
    if checked:
        upto = grid <= max(checked)
        ax.step(grid[upto], log_depth[upto] + 1, where="post", color="black", lw=1.5,
                label=f"bound checked at k ∈ {tuple(checked)}: ⌈log₂ k⌉ + 1")
    markers = ("o", "s", "^", "D")
    for g, name in enumerate(groups):
        shift = 1 + 0.06 * (g - (len(groups) - 1) / 2)
        for k in ks:
            depth = smallest.get((name, k), math.inf)
            found = math.isfinite(depth)
            ax.scatter(k * shift, depth if found else max_depth + 1, s=60, marker=markers[g % len(markers)],
                       color=f"C{g + 2}", facecolors=f"C{g + 2}" if found else "none", zorder=3,
                       label=f"trained ReLU MLP, {name} (open, drawn at {max_depth + 1}: no depth tried reached)"
                       if k == ks[0]
                       else None)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ks), [str(k) for k in ks])
    ax.set_xlabel("sequence length k")
    ax.set_ylabel("nonlinear layers / recurrent steps")
    ax.set_title("Depth to compose k group elements", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def accuracy_figure(runs: Sequence, orders: Mapping[str, int], target: float) -> Figure:
    """Test accuracy of each trained MLP against its depth, one panel per group (``orders``: name → ``|G|``) and one
    line per ``k``; the dotted verticals mark ``⌈log₂ k⌉``, the grey line chance ``1/|G|``."""
    groups = list(orders)
    fig = Figure(figsize=(5 * len(groups), 4.2), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(1, len(groups), sharey=True))
    for ax, name in zip(axes, groups):
        mine = [r for r in runs if r.group == name]
        for i, k in enumerate(sorted({r.k for r in mine})):
            pts = sorted((r.depth, r.test_accuracy) for r in mine if r.k == k)
            depths, accs = zip(*pts)
            ax.plot(depths, accs, "o-", color=f"C{i}", label=f"k = {k}")
            ax.axvline((k - 1).bit_length(), color=f"C{i}", ls=":", lw=1)
        ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:.0%}")
        ax.axhline(1 / orders[name], color="0.6", lw=1, label=f"chance 1/|G| = {1 / orders[name]:.2f}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1.03)
        ax.set_xlabel("hidden layers of the trained ReLU MLP")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy")
    return fig
