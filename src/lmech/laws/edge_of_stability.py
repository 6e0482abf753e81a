"""Law ``edge-of-stability``: full-batch GD sharpens until λ_max = 2/η, then hovers there.

Cohen, Kaur, Li, Kolter, Talwalkar, *Gradient Descent on Neural Networks Typically Occurs at the
Edge of Stability*, ICLR 2021, arXiv:2103.00065. Setting adapted from their §3 (a tanh MLP with two
hidden layers of width 200, MSE loss, full-batch GD) to the scikit-learn digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from ..config import finite_positive, one_of, positive, require, valid_seed
from ..data.digits import load_digits
from ..models.mlp import ACTIVATIONS, mlp
from ..progress import NO_PROGRESS, Progress
from ..theory.stability import stability_threshold
from ..train import Records, SharpnessMonitor, TrainConfig, gradient_flow, train
from ..train.losses import half_mse
from .base import Check, Law, LawResult, Reference
from .plots import edge_of_stability_figure
from .registry import register

SHARPENING_RATIO = 1.5  # (a) sharpness at first reaching 2/η over its step-0 value, at least
EDGE_REL_TOL = 0.10  # (b) median sharpness after reaching 2/η, relative to 2/η
LOSS_FALL_RATIO = 0.5  # (c) worst loss over the last half of training, relative to the initial loss
FLOW_REL_TOL = 0.05  # (d) GD loss vs gradient-flow loss before reaching 2/η, relative
MIN_POINTS_AFTER = 5  # (b) needs at least this many sharpness measurements after reaching 2/η


@dataclass(frozen=True, kw_only=True)
class EdgeOfStabilityConfig:
    """The edge-of-stability experiment.

    Attributes:
        n_train: training examples from the digits (standardised per pixel).
        width, depth, activation: the MLP (``depth`` hidden layers of ``width`` units).
        lrs: the step sizes η; choose them so that 2/η is well above the sharpness at step 0.
        steps: GD steps per learning rate.
        sharpness_every: steps between sharpness measurements (on the whole training set).
        num_matvecs, tol: the Lanczos budget and relative residual tolerance per measurement.
        flow_rtol: relative tolerance of the gradient-flow integrator.
        seed: seeds the data split and the initialisation (the same for every η).
    """

    n_train: int = 1000
    width: int = 200
    depth: int = 2
    activation: str = "tanh"
    lrs: tuple[float, ...] = (0.15, 0.2, 0.3)
    steps: int = 1500
    sharpness_every: int = 10
    num_matvecs: int = 60
    tol: float = 1e-3
    flow_rtol: float = 1e-5
    seed: int = 0

    def __post_init__(self) -> None:
        require(1 <= self.n_train <= 1796, f"n_train must be between 1 and 1796, got {self.n_train}")
        require(self.width >= 1, f"width must be >= 1, got {self.width}")
        require(self.depth >= 1, f"depth must be >= 1, got {self.depth}")
        one_of("activation", self.activation, sorted(ACTIVATIONS))
        require(len(self.lrs) >= 1, "lrs must name at least one learning rate, e.g. lrs=0.15,0.2,0.3")
        for lr in self.lrs:
            finite_positive("lr", lr)
        require(len(set(self.lrs)) == len(self.lrs), f"lrs must be distinct, got {self.lrs}")
        require(self.steps >= 2, f"steps must be >= 2, got {self.steps}")
        require(self.sharpness_every >= 1, f"sharpness_every must be >= 1, got {self.sharpness_every}")
        require(self.num_matvecs >= 2, f"num_matvecs must be >= 2, got {self.num_matvecs}")
        positive("tol", self.tol)
        positive("flow_rtol", self.flow_rtol)
        valid_seed(self.seed)


def first_crossing(steps: np.ndarray, sharpness: np.ndarray, threshold: float) -> int | None:
    """Index of the first measurement with sharpness ≥ threshold, or ``None``."""
    hits = np.flatnonzero(sharpness >= threshold)
    return int(hits[0]) if len(hits) else None


@register
class EdgeOfStability(Law):
    name = "edge-of-stability"
    title = "Progressive sharpening and the edge of stability"
    pillar = "simple-laws"
    references = (
        Reference("Cohen, Kaur, Li, Kolter, Talwalkar. Gradient Descent on Neural Networks Typically "
                  "Occurs at the Edge of Stability. ICLR 2021", "2103.00065"),
        Reference("Simon, Kunin et al. There Will Be a Scientific Theory of Deep Learning. 2026", "2604.21691"),
    )
    statement = ("Under full-batch gradient descent with step size η, the sharpness λ_max rises until it "
                 "reaches 2/η, then hovers at 2/η while the loss keeps falling non-monotonically; before "
                 "that, GD tracks gradient flow.")
    Config = EdgeOfStabilityConfig
    presets = {
        "quick": dict(n_train=500, steps=1000, sharpness_every=20),
        "full": dict(n_train=1797 - 297, lrs=(0.1, 0.15, 0.2, 0.3), steps=4000, sharpness_every=10),
    }

    def run(self, config: EdgeOfStabilityConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train_split, _ = load_digits(config.n_train, 0, seed=config.seed)
        data = (train_split.inputs, train_split.onehot)
        records = Records()
        progress.task(f"{self.name}: GD at η = {', '.join(f'{lr:g}' for lr in config.lrs)}", len(config.lrs) * config.steps)
        for lr in config.lrs:
            model = self._model(config)
            monitor = SharpnessMonitor(half_mse, data, num_matvecs=config.num_matvecs, tol=config.tol)
            tc = TrainConfig(optimizer="gd", lr=lr, steps=config.steps, monitor_every=config.sharpness_every)
            records.extend(train(model, half_mse, data, tc, [monitor], index={"lr": lr}, progress=progress))

        checks, curves = [], []
        crossings = {}
        for lr in config.lrs:
            edge = float(stability_threshold(lr))
            steps, sharp = records.series("sharpness", lr=lr)
            hit = first_crossing(steps, sharp, edge)
            crossings[lr] = None if hit is None else int(steps[hit])
            diverged, _ = records.series("diverged", lr=lr)
            if len(diverged):  # no verdict on a run that blew up, except that it failed
                checks.append(Check.at_least(f"η={lr:g} trained without diverging (diverged at step {diverged[0]})",
                                             float("nan"), 0.0))
                crossings[lr] = None
                continue
            checks += self._sharpness_checks(lr, edge, sharp, hit)
            checks += self._loss_checks(lr, records)
            curves.append({"curve": "2/lr", "x": 0.0, "y": edge, "lr": lr})
            curves.append({"curve": "2/lr", "x": float(config.steps), "y": edge, "lr": lr})

        flow_checks, flow_curves = self._flow_checks(config, data, records, crossings, progress)
        checks += flow_checks
        curves += flow_curves
        curve_table = pa.Table.from_pylist(curves)
        figure = edge_of_stability_figure(records, curve_table, config.lrs)
        summary = {f"first step at 2/lr (lr={lr:g})": float("nan") if s is None else s for lr, s in crossings.items()}
        return LawResult(records, curve_table, checks, {"edge_of_stability": figure}, summary)

    @staticmethod
    def _model(config: EdgeOfStabilityConfig) -> torch.nn.Module:
        return mlp(64, [config.width] * config.depth, 10, activation=config.activation, seed=config.seed)

    @staticmethod
    def _sharpness_checks(lr: float, edge: float, sharp: np.ndarray, hit: int | None) -> list[Check]:
        at_cross = float("nan") if hit is None else float(sharp[hit] / sharp[0])
        after = sharp[hit + 1:] if hit is not None else np.zeros(0)
        median = float(np.median(after)) if len(after) >= MIN_POINTS_AFTER else float("nan")
        return [
            Check.at_least(f"η={lr:g} sharpening: λ_max at 2/η ÷ λ_max(0)", at_cross, SHARPENING_RATIO),
            Check.within(f"η={lr:g} edge: median λ_max after 2/η", median, edge, EDGE_REL_TOL),
        ]

    @staticmethod
    def _loss_checks(lr: float, records: Records) -> list[Check]:
        steps, loss = records.series("loss", lr=lr)
        last_half = loss[len(loss) // 2:]
        rises = int(np.sum(np.diff(loss) > 0))
        return [
            Check.at_most(f"η={lr:g} loss falls: max last-half loss ÷ L(0)",
                          float(last_half.max() / loss[0]), LOSS_FALL_RATIO),
            Check.at_least(f"η={lr:g} loss non-monotone: steps it rose", rises, 1),
        ]

    def _flow_checks(self, config, data, records, crossings, progress):
        """(d): GD's loss against gradient flow's, in time t = η·step, up to the first crossing."""
        reached = {lr: s for lr, s in crossings.items() if s}
        if not reached:
            return [Check.at_most("tracks flow: no η reached 2/η", float("nan"), FLOW_REL_TOL)], []
        grid = {lr: np.arange(0, s + 1, config.sharpness_every) for lr, s in reached.items()}
        times = np.unique(np.concatenate([lr * g for lr, g in grid.items()]))
        progress.task(f"{self.name}: gradient flow to t={times[-1]:.1f} (%)", 100)
        flow = gradient_flow(self._model(config), half_mse, data, times, rtol=config.flow_rtol, atol=1e-6,
                             dtype=torch.float32, progress=progress)
        checks, curves = [], []
        for lr, g in grid.items():
            steps, loss = records.series("loss", lr=lr)
            gd = loss[np.searchsorted(steps, g)]
            gf = flow[np.searchsorted(times, lr * g)]
            deviation = float(np.max(np.abs(gd - gf) / gf))
            checks.append(Check.at_most(
                f"η={lr:g} tracks flow: max |L_GD − L_GF| ÷ L_GF", deviation, FLOW_REL_TOL))
            curves += [{"curve": "gradient flow loss", "x": float(k), "y": float(v), "lr": lr} for k, v in zip(g, gf)]
        return checks, curves
