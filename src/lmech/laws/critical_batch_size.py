"""Law ``critical-batch-size``: steps and examples to a target loss trade off along a hyperbola whose corner,
the critical batch size, is the gradient noise scale.

Setting. A tanh MLP (64 → 128 → 10) on 1,500 scikit-learn digits, squared error on one-hot targets, plain
SGD on batches drawn uniformly *with replacement* (the sampling the noise scale is defined for: a batch of
``B`` has gradient covariance ``Σ/B`` at every ``B``, including ``B`` near or above the 1,500 examples, where
an epoch-shuffled batch would have its noise cut by the finite-population factor ``(N − B)/(N − 1)``). At
every batch size, every learning rate of a ``√2``-spaced grid trains from the same initialisation (per
seed) on the same batches, and the full training loss is evaluated on a schedule that never lets more
than 2 % of the steps pass unobserved; the steps to the target are interpolated in ``log`` loss between
two evaluations. ``S(B)`` is the fewest steps over the grid (steps averaged geometrically over seeds);
``E = B S``.

Why squared error: with cross-entropy the loss keeps falling faster the larger the step (the logits'
curvature vanishes as they grow), so the best learning rate at large batch sizes sat at the top of any grid
and large-batch runs reached the target in a dozen erratic, catapult-like steps; squared error keeps a
curvature that bounds the step size, as the model of McCandlish et al. assumes.

Prediction. The points follow ``S = S_min (1 + B_crit/B)`` (:func:`lmech.theory.fit_steps_examples_tradeoff`),
and ``B_crit`` is the gradient noise scale at the target loss: ``B_noise = tr(HΣ)/(GᵀHG)`` and its
Hessian-free simplification ``B_simple = tr(Σ)/|G|²`` (:func:`lmech.measure.gradient_noise_scale`), measured
on the parameters of each batch size's best run at the moment it reached the target and summarised by the
median over batch sizes. Checks: the hyperbola describes the points (RMS log residual ≤ 0.15: the
``√2``-spaced grid alone can cost the best run about 5-10 % of its steps), ``B_crit`` within a factor 3 of
``B_noise`` and of ``B_simple``, and the best learning rate strictly inside the grid at every batch size (an
optimum on the grid's edge would bias ``S``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from ..config import finite_positive, require, valid_seed
from ..data.digits import load_digits
from ..measure.noise_scale import NoiseScale, gradient_noise_scale
from ..models import mlp
from ..progress import NO_PROGRESS, Progress
from ..theory.batch_size import TradeoffFit, fit_steps_examples_tradeoff
from ..train.records import Records
from ..train.stacked import StackedMLP, half_squared_error
from .base import Check, Law, LawResult, Reference
from .plots_batch_size import critical_batch_size_figure
from .registry import register

NUM_TRAIN = 1500
RESIDUAL_TOL = 0.15  # RMS of log S around the fitted hyperbola
NOISE_FACTOR = 3.0  # B_crit against the noise scale
EVAL_GAP = 0.02  # evaluations at most 2 % of the steps apart
SLOWER = 2.0  # stop once every run still short of the target is 2x slower than the best


@dataclass(frozen=True, kw_only=True)
class CriticalBatchSizeConfig:
    """The critical-batch-size experiment.

    Attributes:
        batch_sizes: powers of two spanning at least 6 doublings (``max/min ≥ 32``).
        lrs: SGD learning rates, ascending (``√2``-spaced by default).
        target_loss: the training loss ``½‖f(x) − y‖²`` (mean over examples) to reach.
        width: hidden width of the MLP.
        seeds: independent initialisations and batch orders.
        max_steps: give up on a run after this many steps.
        num_probes: Rademacher probes for ``tr(HΣ)`` in ``B_noise``.
        n_bootstrap: resamples of the seeds for the interval of ``B_crit``.
        seed: the first seed; runs use ``seed, seed + 1, …``.
    """

    batch_sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    lrs: tuple[float, ...] = tuple(2.0 ** (k / 2) for k in range(-11, 1))
    target_loss: float = 0.05
    width: int = 128
    seeds: int = 3
    max_steps: int = 30000
    num_probes: int = 64
    n_bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        require(len(self.batch_sizes) >= 3 and len(set(self.batch_sizes)) == len(self.batch_sizes),
                f"batch_sizes must be at least 3 distinct sizes, got {self.batch_sizes}")
        for b in self.batch_sizes:
            require(isinstance(b, int) and b >= 1 and b & (b - 1) == 0,
                    f"batch_sizes must be powers of two, got {b!r}; e.g. batch_sizes=8,16,32,64,128,256")
        require(max(self.batch_sizes) >= 32 * min(self.batch_sizes),
                f"batch_sizes must span at least 6 powers of two (max/min >= 32), got {min(self.batch_sizes)}.."
                f"{max(self.batch_sizes)}")
        require(len(self.lrs) >= 3 and list(self.lrs) == sorted(set(self.lrs)),
                f"lrs must be at least 3 distinct ascending learning rates, got {self.lrs}")
        for lr in self.lrs:
            finite_positive("lr", lr)
        finite_positive("target_loss", self.target_loss)
        require(isinstance(self.width, int) and self.width >= 1, f"width must be an integer >= 1, got {self.width!r}")
        require(isinstance(self.seeds, int) and self.seeds >= 1, f"seeds must be an integer >= 1, got {self.seeds!r}")
        require(isinstance(self.max_steps, int) and self.max_steps >= 10,
                f"max_steps must be an integer >= 10, got {self.max_steps!r}")
        require(isinstance(self.num_probes, int) and self.num_probes >= 1,
                f"num_probes must be an integer >= 1, got {self.num_probes!r}")
        require(isinstance(self.n_bootstrap, int) and self.n_bootstrap >= 0,
                f"n_bootstrap must be an integer >= 0, got {self.n_bootstrap!r}")
        valid_seed(self.seed)


@dataclass(frozen=True)
class Sweep:
    """Steps to the target for every learning rate at one batch size and seed.

    Attributes:
        steps: shape ``(len(lrs),)``; ``inf`` where a run diverged or gave up.
        crossing: per learning rate, the MLP's parameters (a flat float64 vector) at the first evaluation
            at or below the target, or ``None``.
    """

    steps: np.ndarray
    crossing: list[Tensor | None]


def sgd_to_target(x: Tensor, y: Tensor, lrs, batch_size: int, *, target: float, width: int, seed: int,
                  max_steps: int) -> Sweep:
    """Plain SGD from one initialisation at every learning rate at once (batched matrix products), batches
    of ``batch_size`` drawn with replacement and shared by all learning rates; steps to ``target`` each."""
    net = StackedMLP([mlp(x.shape[1], [width], y.shape[1], activation="tanh", seed=seed) for _ in lrs])
    lr = torch.tensor(lrs, dtype=x.dtype).view(-1, 1, 1)
    gen = torch.Generator().manual_seed(10_000 + seed * 4099 + batch_size)
    members = len(lrs)
    steps = np.full(members, np.inf)
    crossing: list[Tensor | None] = [None] * members
    alive = torch.ones(members, dtype=torch.bool)
    with torch.no_grad():
        previous = net.losses(x, y)
    previous_step, next_eval = 0, 1
    for step in range(1, max_steps + 1):
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        grads = net.gradients(x[idx], y[idx])
        with torch.no_grad():
            for leaf, g in zip(net.leaves, grads):
                leaf -= lr * g
        if step < next_eval:
            continue
        with torch.no_grad():
            current = net.losses(x, y)
        alive &= torch.isfinite(current) & (current < 1e6)
        for m in range(members):
            if math.isinf(steps[m]) and alive[m] and current[m] <= target:
                a, b = math.log(float(previous[m])), math.log(max(float(current[m]), 1e-300))
                frac = (a - math.log(target)) / (a - b) if a > b else 1.0
                steps[m] = previous_step + min(max(frac, 0.0), 1.0) * (step - previous_step)
                crossing[m] = net.member_vector(m)
        previous, previous_step = current, step
        next_eval = step + max(1, int(step * EVAL_GAP))
        done = np.isfinite(steps) | ~alive.numpy()
        best = steps.min()
        if done.all() or (np.isfinite(best) and step > SLOWER * best):
            break
    return Sweep(steps, crossing)


def noise_scale_at(flat: Tensor, x: Tensor, y: Tensor, width: int, num_probes: int, seed: int) -> NoiseScale:
    """``B_simple`` and ``B_noise`` of the MLP with parameters ``flat`` on ``(x, y)``, in float64."""
    model = mlp(x.shape[1], [width], y.shape[1], activation="tanh", dtype=torch.float64)
    torch.nn.utils.vector_to_parameters(flat, model.parameters())
    return gradient_noise_scale(model, half_squared_error, x.double(), y.double(), hessian=True,
                                num_probes=num_probes, seed=seed)


def best_steps(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometric mean over seeds per ``(B, lr)`` (``inf`` if any seed failed), then the best ``lr`` per ``B``.

    Args:
        steps: shape ``(seeds, batch sizes, lrs)``.

    Returns:
        ``(S, best lr index)``, each of shape ``(batch sizes,)``.
    """
    with np.errstate(divide="ignore"):
        mean = np.exp(np.log(steps).mean(axis=0))
    best = np.argmin(mean, axis=1)
    return mean[np.arange(len(best)), best], best


@register
class CriticalBatchSize(Law):
    name = "critical-batch-size"
    title = "Critical batch size: the steps-examples hyperbola and the gradient noise scale"
    pillar = "hyperparameters"
    references = (
        Reference("McCandlish, Kaplan, Amodei et al. An Empirical Model of Large-Batch Training. 2018", "1812.06162"),
        Reference("Goyal et al. Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour. 2017", "1706.02677"),
        Reference("Simon, Kunin et al. There Will Be a Scientific Theory of Deep Learning. 2026", "2604.21691"),
    )
    statement = ("With the learning rate tuned at each batch size B, the steps S and examples E = BS to reach a "
                 "loss satisfy (S/S_min − 1)(E/E_min − 1) = 1; the corner B_crit = E_min/S_min is the gradient "
                 "noise scale B_noise = tr(HΣ)/(GᵀHG) (≈ B_simple = tr(Σ)/|G|²) measured at that loss.")
    Config = CriticalBatchSizeConfig
    presets = {
        "quick": dict(batch_sizes=(8, 16, 32, 64, 128, 256), lrs=tuple(2.0 ** (k / 2) for k in range(-9, -1)),
                      seeds=2, n_bootstrap=200, num_probes=16),
        "full": dict(seeds=4),
    }

    def run(self, config: CriticalBatchSizeConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train, _ = load_digits(NUM_TRAIN, 1797 - NUM_TRAIN, dtype=torch.float32)
        x, y = train.inputs, torch.nn.functional.one_hot(train.labels, 10).float()
        bs, lrs = config.batch_sizes, config.lrs
        seeds = [config.seed + s for s in range(config.seeds)]
        progress.task(f"{self.name}: SGD to loss {config.target_loss:g}, {len(lrs)} learning rates at once",
                      len(seeds) * len(bs))
        steps = np.empty((len(seeds), len(bs), len(lrs)))
        crossings: dict[tuple[int, int, int], Tensor | None] = {}
        for i, seed in enumerate(seeds):
            for j, b in enumerate(bs):
                sweep = sgd_to_target(x, y, lrs, b, target=config.target_loss, width=config.width, seed=seed,
                                      max_steps=config.max_steps)
                steps[i, j] = sweep.steps
                for k, flat in enumerate(sweep.crossing):
                    crossings[(i, j, k)] = flat
                progress.advance()
        s_best, lr_best = best_steps(steps)
        reached = np.isfinite(s_best)
        require(reached.sum() >= 3, f"only {int(reached.sum())} batch sizes reached loss {config.target_loss:g} "
                                    f"within {config.max_steps} steps; raise max_steps or target_loss, or widen lrs")
        fit = fit_steps_examples_tradeoff(np.array(bs)[reached], s_best[reached])
        interval = self._bootstrap(steps, bs, config.n_bootstrap, config.seed)

        progress.task(f"{self.name}: noise scales at loss {config.target_loss:g}", int(reached.sum()))
        noise: dict[int, NoiseScale] = {}
        for j in np.flatnonzero(reached):
            flat = crossings[(0, j, int(lr_best[j]))]
            if flat is not None:
                noise[bs[j]] = noise_scale_at(flat, x, y, config.width, config.num_probes, config.seed)
            progress.advance()
        b_simple = float(np.median([n.b_simple for n in noise.values()]))
        b_noise = float(np.median([n.b_noise for n in noise.values()]))

        records = self._records(steps, seeds, bs, lrs, noise)
        curves = self._curves(fit, bs)
        edge = int(sum(1 for j in np.flatnonzero(reached) if lr_best[j] in (0, len(lrs) - 1)))
        checks = [
            Check.at_most(f"RMS log residual of S around S_min(1 + B_crit/B) over {int(reached.sum())} batch sizes",
                          fit.rms_log_residual, RESIDUAL_TOL),
            Check.at_most(f"B_crit = {fit.b_crit:.1f} against B_noise = {b_noise:.1f}: factor max(r, 1/r)",
                          _factor(fit.b_crit, b_noise), NOISE_FACTOR),
            Check.at_most(f"B_crit = {fit.b_crit:.1f} against B_simple = {b_simple:.1f}: factor max(r, 1/r)",
                          _factor(fit.b_crit, b_simple), NOISE_FACTOR),
            Check.at_most("batch sizes whose best learning rate is at the edge of the grid", edge, 0),
        ]
        summary = {"B_crit = E_min/S_min": fit.b_crit, "B_crit 95% interval, low": interval[0],
                   "B_crit 95% interval, high": interval[1], "S_min (steps)": fit.s_min, "E_min (examples)": fit.e_min,
                   "RMS log residual": fit.rms_log_residual, "B_noise at the target (median over B)": b_noise,
                   "B_simple at the target (median over B)": b_simple}
        for b, n in noise.items():
            summary[f"B={b}: B_simple at the target"] = n.b_simple
            summary[f"B={b}: B_noise at the target"] = n.b_noise
        for j, b in enumerate(bs):
            summary[f"B={b}: steps S to the target (best lr {lrs[int(lr_best[j])]:.3g})"] = float(s_best[j])
        curve_table = pa.Table.from_pylist(curves)
        figure = critical_batch_size_figure(bs, lrs, steps, s_best, fit, b_noise, b_simple, interval)
        return LawResult(records, curve_table, checks, {"critical_batch_size": figure}, summary)

    @staticmethod
    def _bootstrap(steps: np.ndarray, bs, n: int, seed: int) -> tuple[float, float]:
        """95 % interval of ``B_crit``: resample the seeds with replacement, independently per batch size."""
        if n == 0 or steps.shape[0] < 2:
            return math.nan, math.nan
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(n):
            pick = rng.integers(0, steps.shape[0], size=(steps.shape[0], steps.shape[1]))
            resampled = steps[pick, np.arange(steps.shape[1])[None, :]]
            s, _ = best_steps(resampled)
            ok = np.isfinite(s)
            if ok.sum() >= 3:
                values.append(fit_steps_examples_tradeoff(np.array(bs)[ok], s[ok]).b_crit)
        lo, hi = np.percentile(values, [2.5, 97.5])
        return float(lo), float(hi)

    @staticmethod
    def _records(steps, seeds, bs, lrs, noise) -> Records:
        records = Records()
        for i, seed in enumerate(seeds):
            for j, b in enumerate(bs):
                for k, lr in enumerate(lrs):
                    records.add(b, "steps_to_target", steps[i, j, k], seed=seed, lr=lr)
        for b, n in noise.items():
            records.add(b, "b_simple", n.b_simple, seed=seeds[0], lr=None)
            records.add(b, "b_noise", n.b_noise, seed=seeds[0], lr=None)
        return records

    @staticmethod
    def _curves(fit: TradeoffFit, bs) -> list[dict]:
        grid = np.geomspace(min(bs) / 4, max(bs) * 4, 80)
        return [{"curve": "S_min(1 + B_crit/B)", "x": float(e), "y": float(s), "batch_size": float(b)}
                for b, s, e in zip(grid, fit.steps(grid), fit.examples(grid))]


def _factor(a: float, b: float) -> float:
    return max(a / b, b / a) if a > 0 and b > 0 else math.inf
