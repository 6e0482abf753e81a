"""Law ``ntk-infinite-width``: wide networks in the NTK parametrisation are their kernel.

Jacot, Gabriel, Hongler 2018 (arXiv:1806.07572, Theorems 1–2): as every hidden width grows, the
empirical NTK at initialisation converges to a deterministic kernel Θ_∞ and stays fixed during
training, so gradient flow on the squared loss is kernel regression in closed form. Lee et al. 2019
(arXiv:1902.06720, eq. (9)) give the test outputs at time t; the finite-width corrections are
O(width^{-1/2}) (Hanin & Nica 2019, arXiv:1909.05989). Chizat, Oyallon, Bach 2019
(arXiv:1812.07956) call this regime *lazy*; with a mean-field (μP) output scale 1/width and a
learning rate ∝ width the same network learns features and its kernel moves at O(1) (Yang & Hu
2021, arXiv:2011.14522, Tensor Programs IV — μP in the NTK-style abc form).

How fast the kernel moves in the lazy regime: Lee et al. 2019 (Theorem 2.1) bound the change by
O(width^{-1/2}); the perturbative theory of wide networks (Dyer & Gur-Ari 2020, arXiv:1909.11304;
Huang & Yau 2020, arXiv:1909.08156; Roberts, Yaida, Hanin 2022, arXiv:2106.10165) finds that the
NTK's time derivative is O(1/width), so the change over a fixed training time is ∝ width^{-1}. The
law checks the 1/width rate (slope in [−1.2, −0.8]), which implies the bound.

The finite-width corrections to the kernel at initialisation, and with them the distance between a
trained network's outputs and the infinite-width prediction, are O(width^{-1/2}) with a constant
that grows with depth (Hanin & Nica 2019, arXiv:1909.05989); the default network has one hidden
layer so that widths where that distance is below 5% (≳ 8,000) train in seconds on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from ..config import finite_positive, non_negative, one_of, require, valid_seed
from ..data.digits import load_digits
from ..measure.ntk import empirical_ntk, relative_kernel_change
from ..models.ntk import ntk_mlp
from ..progress import NO_PROGRESS, Progress
from ..theory.ntk_kernels import infinite_width_kernels
from ..train import Records, TrainConfig, train
from ..train.losses import half_mse
from .base import Check, Law, LawResult, Reference
from .plots_ntk import ntk_infinite_width_figure
from .registry import register

SLOPE_RANGE = (-0.6, -0.4)  # (a): fitted log-log slope of the kernel's finite-width error against width
OUTPUT_REL_TOL = 0.05  # (b): relative L2 distance of test outputs to the kernel prediction
LAZY_RANGE = (-1.2, -0.8)  # (c) NTK: the kernel change falls as width^(-1): the dNTK is O(1/n) (Dyer & Gur-Ari;
# Huang & Yau), which implies Lee et al.'s bound, width^(-1/2)
RICH_MIN_SLOPE = -0.1  # (c) μP: the kernel change does not fall with width (slope at least this)
ACTIVATIONS = ("relu", "erf")


@dataclass(frozen=True, kw_only=True)
class NTKInfiniteWidthConfig:
    """The infinite-width experiment on the digits (standardised per pixel, one-hot targets).

    Attributes:
        depth, activation, weight_var, bias_var: the fully connected network (``depth`` hidden
            layers), in the NTK parametrisation: ``z = (σ_w/√fan_in) W a + σ_b b``, ``W, b ~ N(0, 1)``.
            With ``depth >= 2`` every hidden-to-hidden layer has width² weights: at the default
            widths (up to 16,384) that is minutes to an hour of training; shrink ``wide_widths``
            and expect (b) to need wider networks, as its deviation grows with depth.
        n_kernel: inputs on which (a) compares the NTK at initialisation with Θ_∞.
        widths: the widths of (a); ``seeds`` networks per width (in (a) and (b)).
        n_train, n_test: the digits of (b) and (c).
        wide_widths: the widths of (b)'s networks; the widest must meet the 5% tolerance. The
            fitted slope of the deviation against width is reported (``output_deviation_slope``;
            the leading finite-width correction is ∝ width^(−1/2), Hanin & Nica 2019,
            arXiv:1909.05989).
        lr, time: (b) and (c) train by full-batch GD on ``½‖f − y‖²`` (mean over examples) at step
            ``lr`` to gradient-flow time ``t = lr × steps = time``; ``checkpoints`` evenly spaced
            times at which (b) compares test outputs.
        change_widths: the widths of (c); the μP networks train at ``mup_lr × width``.
        seed: seeds the data split and every initialisation.
    """

    depth: int = 1
    activation: str = "relu"
    weight_var: float = 2.0
    bias_var: float = 0.1
    n_kernel: int = 100
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)
    seeds: int = 3
    n_train: int = 200
    n_test: int = 200
    wide_widths: tuple[int, ...] = (2048, 4096, 8192, 16384)
    lr: float = 0.5
    time: float = 40.0
    checkpoints: int = 8
    change_widths: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096)
    mup_lr: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.depth >= 1, f"depth must be >= 1 hidden layer, got {self.depth}")
        one_of("activation", self.activation, ACTIVATIONS)
        finite_positive("weight_var", self.weight_var)
        non_negative("bias_var", self.bias_var)
        require(self.n_kernel >= 2, f"n_kernel must be >= 2, got {self.n_kernel}")
        for name in ("widths", "change_widths"):
            widths = getattr(self, name)
            require(len(widths) >= 3 and all(w >= 1 for w in widths) and list(widths) == sorted(set(widths)),
                    f"{name} must be >= 3 distinct increasing widths >= 1 (a slope needs them), got {widths}")
        require(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        require(self.n_train >= 2 and self.n_test >= 1 and max(self.n_train, self.n_kernel) + self.n_test <= 1796,
                f"max(n_train, n_kernel) + n_test must be at most 1796 of the 1797 digits (n_train >= 2, "
                f"n_test >= 1), got max({self.n_train}, {self.n_kernel}) + {self.n_test}")
        require(len(self.wide_widths) >= 1 and all(w >= 1 for w in self.wide_widths)
                and list(self.wide_widths) == sorted(set(self.wide_widths)),
                f"wide_widths must be distinct increasing widths >= 1, got {self.wide_widths}")
        finite_positive("lr", self.lr)
        finite_positive("time", self.time)
        require(self.time >= self.lr, f"time must be at least one step (lr = {self.lr}), got {self.time}")
        require(self.checkpoints >= 1, f"checkpoints must be >= 1, got {self.checkpoints}")
        finite_positive("mup_lr", self.mup_lr)
        valid_seed(self.seed)

    @property
    def steps(self) -> int:
        return max(1, round(self.time / self.lr))


def loglog_slope(widths, values) -> float:
    """Least-squares slope of ``log values`` against ``log widths``."""
    return float(np.polyfit(np.log(np.asarray(widths, float)), np.log(np.asarray(values, float)), 1)[0])


def kernel_gradient_flow(ntk_train: np.ndarray, ntk_test_train: np.ndarray, f0_train: np.ndarray,
                         f0_test: np.ndarray, targets: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Test outputs of gradient flow on ``½ mean_i ‖f(x_i) − y_i‖²`` with a constant kernel Θ:

    .. math::  f_t(X_*) = f_0(X_*) - \\Theta(X_*, X)\\, \\Theta(X, X)^{-1}
               \\big(I - e^{-\\Theta(X, X)\\, t / n}\\big) \\big(f_0(X) - Y\\big)

    (Lee et al. 2019, arXiv:1902.06720, eq. (9), with the mean over ``n`` examples), evaluated in the
    eigenbasis of Θ(X, X) with ``(1 − e^{−λt/n})/λ`` written through ``expm1`` (exact as λ → 0).

    Args:
        ntk_train: Θ(X, X) per output, of shape (n, n). ntk_test_train: Θ(X_*, X), (n_*, n).
        f0_train, f0_test: outputs at initialisation, (n, k) and (n_*, k). targets: Y, (n, k).
        times: gradient-flow times t = lr × steps, of shape (T,).

    Returns:
        Test outputs of shape (T, n_*, k).
    """
    n = len(ntk_train)
    lam, q = np.linalg.eigh(ntk_train)
    lam = np.clip(lam, 0.0, None)
    residual = q.T @ (f0_train - targets)
    out = []
    for t in times:
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(lam > 0, -np.expm1(-lam * t / n) / lam, t / n)
        out.append(f0_test - ntk_test_train @ (q @ (gain[:, None] * residual)))
    return np.stack(out)


class _TestOutputs:
    """A monitor keeping the model's outputs on held-out inputs (and recording the test loss)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        self.inputs, self.targets, self.outputs = inputs, targets, {}

    def __call__(self, model: torch.nn.Module, step: int) -> dict[str, float]:
        with torch.no_grad():
            out = model(self.inputs)
        self.outputs[step] = out.double().numpy()
        return {"test_loss": float(half_mse(out, self.targets))}


@register
class NTKInfiniteWidth(Law):
    name = "ntk-infinite-width"
    title = "The infinite-width limit: the NTK converges, stays put, and predicts training"
    pillar = "tractable-limits"
    references = (
        Reference("Jacot, Gabriel, Hongler. Neural Tangent Kernel: Convergence and Generalization in Neural "
                  "Networks. NeurIPS 2018", "1806.07572"),
        Reference("Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein, Pennington. Wide Neural Networks of Any "
                  "Depth Evolve as Linear Models Under Gradient Descent. NeurIPS 2019", "1902.06720"),
        Reference("Arora, Du, Hu, Li, Salakhutdinov, Wang. On Exact Computation with an Infinitely Wide Neural "
                  "Net. NeurIPS 2019", "1904.11955"),
        Reference("Chizat, Oyallon, Bach. On Lazy Training in Differentiable Programming. NeurIPS 2019", "1812.07956"),
        Reference("Yang, Hu. Tensor Programs IV: Feature Learning in Infinite-Width Neural Networks. ICML 2021",
                  "2011.14522"),
    )
    statement = ("In the NTK parametrisation the empirical NTK at initialisation converges to the analytic "
                 "infinite-width kernel with error ∝ width^(−1/2); a wide network trained by GD on the squared "
                 "loss follows kernel gradient flow with that kernel; during training the kernel moves ∝ 1/width "
                 "(lazy; within Lee et al.'s width^(−1/2) bound), but does not fall with width under a "
                 "mean-field (μP) output scale (rich).")
    Config = NTKInfiniteWidthConfig
    presets = {
        "quick": dict(widths=(64, 256, 1024, 4096), seeds=2, n_kernel=64, n_train=100, n_test=100,
                      wide_widths=(2048, 8192, 16384), change_widths=(128, 512, 2048), checkpoints=5),
        "full": dict(widths=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384), seeds=5, n_train=400, n_test=400,
                     wide_widths=(2048, 4096, 8192, 16384, 32768), change_widths=(128, 256, 512, 1024, 2048, 4096, 8192)),
    }

    def run(self, config: NTKInfiniteWidthConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train_split, test_split = load_digits(max(config.n_train, config.n_kernel), config.n_test, seed=config.seed)
        records, curves = Records(), []
        checks = self._convergence(config, train_split.inputs[: config.n_kernel], records, curves, progress)
        checks += self._kernel_regression(config, train_split, test_split, records, curves, progress)
        checks += self._lazy_and_rich(config, train_split, records, curves, progress)
        table = pa.Table.from_pylist(curves)
        figure = ntk_infinite_width_figure(records, table, config)
        summary = {c.name: c.measured for c in checks}
        slopes = [r["value"] for r in records.rows if r["observable"] == "output_deviation_slope"]
        if slopes:
            summary["(b) fitted slope of the output deviation against width"] = slopes[0]
        return LawResult(records, table, checks, {"ntk_infinite_width": figure}, summary)

    def _net(self, config, width: int, seed: int, parametrization: str = "ntk") -> torch.nn.Module:
        return ntk_mlp(64, [width] * config.depth, 10, activation=config.activation, weight_var=config.weight_var,
                       bias_var=config.bias_var, parametrization=parametrization, seed=seed)

    def _analytic(self, config, x1: torch.Tensor, x2: torch.Tensor | None = None) -> np.ndarray:
        return infinite_width_kernels(x1.double().numpy(), None if x2 is None else x2.double().numpy(),
                                      depth=config.depth, activation=config.activation,
                                      weight_var=config.weight_var, bias_var=config.bias_var).ntk

    def _convergence(self, config, x, records, curves, progress) -> list[Check]:
        """(a) ‖Θ_emp(width) − Θ_∞‖_F / ‖Θ_∞‖_F at initialisation, per width and seed."""
        limit = self._analytic(config, x)
        progress.task(f"{self.name}: NTK at initialisation, widths {config.widths[0]}–{config.widths[-1]}",
                      len(config.widths) * config.seeds)
        means = []
        for width in config.widths:
            errors = []
            for s in range(config.seeds):
                net = self._net(config, width, seed=config.seed * 1000 + s)
                kernel = empirical_ntk(net, x).double().numpy() / 10.0  # per output: the trace over 10
                errors.append(np.linalg.norm(kernel - limit) / np.linalg.norm(limit))
                records.add(0, "ntk_relative_error", errors[-1], width=width, seed=s)
                progress.advance()
            means.append(float(np.mean(errors)))
        slope = loglog_slope(config.widths, means)
        intercept = float(np.mean(np.log(means)) - slope * np.mean(np.log(config.widths)))
        curves += [{"curve": "fit", "x": float(w), "y": float(np.exp(intercept) * w**slope), "part": "a"}
                   for w in config.widths]
        curves += [{"curve": "width^-1/2", "x": float(w), "y": means[0] * (w / config.widths[0]) ** -0.5, "part": "a"}
                   for w in config.widths]
        return [Check.at_least("(a) NTK at init → Θ_∞: slope of error vs width ≥ −0.6", slope, SLOPE_RANGE[0]),
                Check.at_most("(a) NTK at init → Θ_∞: slope of error vs width ≤ −0.4", slope, SLOPE_RANGE[1])]

    def _kernel_regression(self, config, train_split, test_split, records, curves, progress) -> list[Check]:
        """(b) Wide networks' test outputs against kernel gradient flow with Θ_∞, at every checkpoint."""
        x, y = train_split.inputs[: config.n_train], train_split.onehot[: config.n_train]
        ntk_train, ntk_test = self._analytic(config, x), self._analytic(config, test_split.inputs, x)
        every = max(1, config.steps // config.checkpoints)
        progress.task(f"{self.name}: GD on widths {', '.join(map(str, config.wide_widths))} to t = {config.time:g}",
                      len(config.wide_widths) * config.seeds * config.steps)
        worst, mean_worst = [], []
        for width in config.wide_widths:
            per_seed = []
            for s in range(config.seeds):
                net = self._net(config, width, seed=config.seed * 1000 + 900 + s)
                monitor = _TestOutputs(test_split.inputs, test_split.onehot)
                with torch.no_grad():
                    f0_train = net(x).double().numpy()
                tc = TrainConfig(optimizer="gd", lr=config.lr, steps=config.steps, monitor_every=every)
                records.extend(train(net, half_mse, (x, y), tc, [monitor], index={"width": width, "seed": s},
                                     progress=progress))
                steps = np.array(sorted(monitor.outputs))
                predicted = kernel_gradient_flow(ntk_train, ntk_test, f0_train, monitor.outputs[0],
                                                 y.double().numpy(), config.lr * steps)
                deviations = []
                for step, pred in zip(steps, predicted):
                    deviations.append(float(np.linalg.norm(monitor.outputs[int(step)] - pred) / np.linalg.norm(pred)))
                    records.add(int(step), "test_output_deviation", deviations[-1], width=width, seed=s)
                per_seed.append(max(deviations))
                if s == 0:
                    shown = (steps, predicted, monitor.outputs)
            worst.append(max(per_seed))
            mean_worst.append(float(np.mean(per_seed)))
        # The widest network's (seed 0) test loss on the predicted curve, and its final outputs against the prediction.
        steps, predicted, outputs = shown
        test_y = test_split.onehot.double().numpy()
        curves += [{"curve": "kernel test loss", "x": float(config.lr * s),
                    "y": float(0.5 * np.mean(np.sum((p - test_y) ** 2, 1))), "part": "b"} for s, p in zip(steps, predicted)]
        final_pred, final = predicted[-1].ravel(), outputs[int(steps[-1])].ravel()
        stride = max(1, len(final) // 500)
        curves += [{"curve": "final test outputs", "x": float(p), "y": float(m), "part": "b"}
                   for p, m in zip(final_pred[::stride], final[::stride])]
        curves += [{"curve": "output deviation", "x": float(w), "y": d, "part": "b"}
                   for w, d in zip(config.wide_widths, mean_worst)]
        widest = config.wide_widths[-1]
        checks = [Check.at_most(f"(b) width {widest}: max relative L2 distance of test outputs to kernel gradient "
                                f"flow over t ≤ {config.time:g}, worst of {config.seeds} networks", worst[-1],
                                OUTPUT_REL_TOL)]
        if len(config.wide_widths) >= 2:  # reported, not checked: about −0.45 to −0.5 (leading order −1/2)
            records.add(config.steps, "output_deviation_slope", loglog_slope(config.wide_widths, mean_worst))
        return checks

    def _lazy_and_rich(self, config, train_split, records, curves, progress) -> list[Check]:
        """(c) ‖Θ_T − Θ_0‖_F / ‖Θ_0‖_F after training to the same time, NTK and μP, per width."""
        x, y = train_split.inputs[: config.n_train], train_split.onehot[: config.n_train]
        progress.task(f"{self.name}: NTK movement over training, NTK and μP", 2 * len(config.change_widths))
        slopes = {}
        for param in ("ntk", "mean-field"):
            changes = []
            for width in config.change_widths:
                net = self._net(config, width, seed=config.seed * 1000 + 500, parametrization=param)
                lr = config.lr if param == "ntk" else config.mup_lr * width
                before = empirical_ntk(net, x)
                run = train(net, half_mse, (x, y), TrainConfig(optimizer="gd", lr=lr, steps=config.steps,
                                                               monitor_every=config.steps),
                            index={"width": width, "parametrization": param})
                changes.append(relative_kernel_change(before, empirical_ntk(net, x)))
                records.add(config.steps, "ntk_relative_change", changes[-1], width=width, parametrization=param)
                _, loss = run.series("loss", width=width, parametrization=param)
                records.add(config.steps, "final_train_loss", float(loss[-1]), width=width, parametrization=param)
                progress.advance()
            slopes[param] = loglog_slope(config.change_widths, changes)
            curves += [{"curve": f"{param} change", "x": float(w), "y": float(c), "part": "c"}
                       for w, c in zip(config.change_widths, changes)]
        return [
            Check.at_least("(c) NTK parametrisation (lazy): slope of kernel change vs width ≥ −1.2 (∝ 1/width)",
                           slopes["ntk"], LAZY_RANGE[0]),
            Check.at_most("(c) NTK parametrisation (lazy): slope of kernel change vs width ≤ −0.8 (∝ 1/width)",
                          slopes["ntk"], LAZY_RANGE[1]),
            Check.at_least("(c) μP output scale (rich): slope of kernel change vs width ≥ −0.1",
                           slopes["mean-field"], RICH_MIN_SLOPE),
        ]
