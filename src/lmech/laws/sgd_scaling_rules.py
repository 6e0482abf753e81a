"""Law ``sgd-scaling-rules``: which change of learning rate keeps training the same when the batch grows.

The SDE view. SGD with learning rate ``η`` and batch ``B`` follows, to first order in ``η``, the stochastic
differential equation ``dθ = −∇L dt + √(η/B) Σ^{1/2} dW`` (time ``t = η·steps``): ``η/B`` fixes the noise, so
scaling ``η ∝ B`` at a fixed number of epochs (``t ∝ η·E/B`` fixed) leaves the trajectory's law unchanged —
Goyal et al.'s linear scaling rule. The approximation needs the noise to dominate the per-step drift,
which fails once ``B`` passes the critical batch size ``B_crit ≈ B_noise`` (McCandlish et al. 2018). For Adam,
Malladi et al. (2022) derive the SDE and the *square-root* rule: with ``κ = B/B₀``, ``η → √κ η``,
``1 − β_i → κ(1 − β_i)``, ``ε → ε/√κ``; the linear rule ``η → κ η`` does not keep Adam's SDE.

Setting. The tanh MLP (64 → 128 → 10), squared error on one-hot targets and 1,500 digits of the
``critical-batch-size`` law; batches drawn with replacement; ``seeds`` initialisations, each trained at every
batch size from the same start. Every run sees the same number of examples (``epochs × 1,500``), and its final
full training loss is compared, seed by seed, with the base batch ``B₀``'s: ``r(B) = mean_seeds L(B)/L(B₀)``.
``B_noise = tr(HΣ)/(GᵀHG)`` is measured at the end of each optimizer's base run, where the comparison is made.

Checks (tolerance 5 % on the loss ratio, the issue's): SGD with ``η ∝ B`` stays within 5 % for every
``B ≤ B_noise/4`` and departs by more than 5 % at every ``B > B_noise``; Adam with the square-root rule stays
within 5 % for every ``B ≤ B_noise/4``, where Adam with the linear rule (same ``β``, ``ε`` adjustments, learning
rate ``κη``) departs by more than 5 % somewhere.
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
from ..measure.noise_scale import gradient_noise_scale
from ..models import mlp
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records
from ..train.stacked import StackedAdam, StackedMLP, half_squared_error
from .base import Check, Law, LawResult, Reference
from .plots_batch_size import scaling_rules_figure
from .registry import register

NUM_TRAIN = 1500
RULES = ("sgd-linear", "adam-sqrt", "adam-linear")


@dataclass(frozen=True, kw_only=True)
class SgdScalingRulesConfig:
    """The scaling-rules experiment.

    Attributes:
        base_batch: ``B₀``, the batch size the base learning rates are set at.
        batch_sizes: powers of two ``≥ B₀`` including ``B₀``.
        epochs: passes' worth of examples every run sees (``epochs × 1,500``; steps ``= epochs·1500/B``).
        sgd_lr, adam_lr: the learning rates at ``B₀``.
        adam_betas, adam_eps: Adam's ``(β₁, β₂)`` and ``ε`` at ``B₀``; the largest batch must keep
            ``κ(1 − β₁) < 1``.
        tolerance: ``|r(B) − 1|`` that counts as "the same training".
        seeds: initialisations, each trained at every batch size.
        width: hidden width; num_probes: Rademacher probes for ``B_noise``; seed: the first seed.
    """

    base_batch: int = 2
    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128)
    epochs: float = 30.0
    sgd_lr: float = 0.01
    adam_lr: float = 3e-4
    adam_betas: tuple[float, float] = (0.99, 0.9999)
    adam_eps: float = 1e-8
    tolerance: float = 0.05
    seeds: int = 4
    width: int = 128
    num_probes: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.base_batch, int) and self.base_batch >= 1,
                f"base_batch must be an integer >= 1, got {self.base_batch!r}")
        require(self.base_batch in self.batch_sizes, f"batch_sizes must include base_batch {self.base_batch}, "
                                                     f"got {self.batch_sizes}")
        require(len(set(self.batch_sizes)) == len(self.batch_sizes) and len(self.batch_sizes) >= 3,
                f"batch_sizes must be at least 3 distinct sizes, got {self.batch_sizes}")
        for b in self.batch_sizes:
            require(isinstance(b, int) and b >= self.base_batch and b & (b - 1) == 0,
                    f"batch_sizes must be powers of two >= base_batch {self.base_batch}, got {b!r}")
        finite_positive("epochs", self.epochs)
        finite_positive("sgd_lr", self.sgd_lr)
        finite_positive("adam_lr", self.adam_lr)
        require(all(0 <= b < 1 for b in self.adam_betas), f"adam_betas must lie in [0, 1), got {self.adam_betas}")
        kappa = max(self.batch_sizes) / self.base_batch
        require(kappa * (1 - self.adam_betas[0]) < 1 and kappa * (1 - self.adam_betas[1]) < 1,
                f"the square-root rule sets 1 − β to κ(1 − β); at B = {max(self.batch_sizes)} (κ = {kappa:g}) that "
                f"leaves [0, 1) for betas {self.adam_betas}; use smaller batch sizes or betas closer to 1")
        finite_positive("adam_eps", self.adam_eps)
        require(0 < self.tolerance < 1, f"tolerance must be in (0, 1), got {self.tolerance!r}")
        require(isinstance(self.seeds, int) and self.seeds >= 1, f"seeds must be an integer >= 1, got {self.seeds!r}")
        require(isinstance(self.width, int) and self.width >= 1, f"width must be an integer >= 1, got {self.width!r}")
        require(isinstance(self.num_probes, int) and self.num_probes >= 1,
                f"num_probes must be an integer >= 1, got {self.num_probes!r}")
        valid_seed(self.seed)


def hyperparameters(rule: str, config: SgdScalingRulesConfig, batch_size: int) -> dict:
    """The learning rate (and Adam's ``betas``, ``eps``) that ``rule`` prescribes at ``batch_size``.

    >>> c = SgdScalingRulesConfig()
    >>> hyperparameters("adam-sqrt", c, 8)["lr"] == 2 * c.adam_lr, hyperparameters("sgd-linear", c, 8)["lr"] == 4 * c.sgd_lr
    (True, True)
    """
    kappa = batch_size / config.base_batch
    if rule == "sgd-linear":
        return {"lr": config.sgd_lr * kappa}
    betas = tuple(1 - kappa * (1 - b) for b in config.adam_betas)
    lr = config.adam_lr * (math.sqrt(kappa) if rule == "adam-sqrt" else kappa)
    return {"lr": lr, "betas": betas, "eps": config.adam_eps / math.sqrt(kappa)}


def train_to_examples(x: Tensor, y: Tensor, seeds, rule: str, hyper: dict, *, batch_size: int, examples: float,
                      width: int) -> StackedMLP:
    """One MLP per seed, trained at once on shared batches (drawn with replacement) for ``examples/B`` steps."""
    net = StackedMLP([mlp(x.shape[1], [width], y.shape[1], activation="tanh", seed=s) for s in seeds])
    adam = StackedAdam(net, lr=hyper["lr"], betas=hyper["betas"], eps=hyper["eps"]) if rule != "sgd-linear" else None
    gen = torch.Generator().manual_seed(20_000 + 7919 * seeds[0] + batch_size)
    for _ in range(max(1, round(examples / batch_size))):
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        grads = net.gradients(x[idx], y[idx])
        if adam is not None:
            adam.step(grads)
        else:
            with torch.no_grad():
                for leaf, g in zip(net.leaves, grads):
                    leaf -= hyper["lr"] * g
    return net


def _deviation(ratio: dict[int, float], sizes) -> float:
    values = [abs(ratio[b] - 1) for b in sizes]
    return max(values) if values else math.nan


@register
class SgdScalingRules(Law):
    name = "sgd-scaling-rules"
    title = "SDE scaling rules: linear for SGD, square root for Adam, up to the critical batch size"
    pillar = "hyperparameters"
    references = (
        Reference("Goyal et al. Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour. 2017", "1706.02677"),
        Reference("Malladi, Lyu, Panigrahi, Arora. On the SDEs and Scaling Rules for Adaptive Gradient "
                  "Algorithms. NeurIPS 2022", "2205.10287"),
        Reference("Li, Malladi, Arora. On the Validity of Modeling SGD with Stochastic Differential Equations. "
                  "NeurIPS 2021", "2102.12470"),
        Reference("McCandlish, Kaplan, Amodei et al. An Empirical Model of Large-Batch Training. 2018", "1812.06162"),
    )
    statement = ("At a fixed number of epochs, SGD with learning rate ∝ batch size reaches the same loss (within "
                 "5 %) while B ≤ B_crit/4 and departs beyond B_crit; Adam keeps it under the square-root rule "
                 "(η ∝ √B, 1 − β ∝ B, ε ∝ 1/√B) where the linear rule fails.")
    Config = SgdScalingRulesConfig
    presets = {"quick": dict(seeds=3), "full": dict(seeds=6)}

    def run(self, config: SgdScalingRulesConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train, _ = load_digits(NUM_TRAIN, 1797 - NUM_TRAIN, dtype=torch.float32)
        x, y = train.inputs, torch.nn.functional.one_hot(train.labels, 10).float()
        seeds = [config.seed + s for s in range(config.seeds)]
        examples = config.epochs * NUM_TRAIN
        bs = sorted(config.batch_sizes)
        progress.task(f"{self.name}: {config.epochs:g} epochs per run", len(RULES) * len(bs))
        losses: dict[tuple[str, int], np.ndarray] = {}
        base_nets: dict[str, StackedMLP] = {}
        for rule in RULES:
            for b in bs:
                if rule == "adam-linear" and b == config.base_batch:
                    losses[(rule, b)] = losses[("adam-sqrt", b)]  # the same run: both rules give κ = 1
                    progress.advance()
                    continue
                net = train_to_examples(x, y, seeds, rule, hyperparameters(rule, config, b), batch_size=b,
                                        examples=examples, width=config.width)
                with torch.no_grad():
                    losses[(rule, b)] = net.losses(x, y).numpy().astype(np.float64)
                if b == config.base_batch:
                    base_nets[rule] = net
                progress.advance()
        base_nets["adam-linear"] = base_nets["adam-sqrt"]

        noise = {}
        for rule in ("sgd-linear", "adam-sqrt"):
            model = mlp(x.shape[1], [config.width], y.shape[1], activation="tanh", dtype=torch.float64)
            torch.nn.utils.vector_to_parameters(base_nets[rule].member_vector(0), model.parameters())
            noise[rule] = gradient_noise_scale(model, half_squared_error, x.double(), y.double(), hessian=True,
                                               num_probes=config.num_probes, seed=config.seed)
        noise["adam-linear"] = noise["adam-sqrt"]

        ratio = {rule: {b: float(np.mean(losses[(rule, b)] / losses[(rule, config.base_batch)])) for b in bs}
                 for rule in RULES}
        checks, summary, records = [], {}, Records()
        tol = config.tolerance
        for rule in RULES:
            b_noise = noise[rule].b_noise
            within = [b for b in bs if config.base_batch < b <= b_noise / 4]
            beyond = [b for b in bs if b > b_noise]
            summary[f"{rule}: B_noise at the base run's end"] = b_noise
            summary[f"{rule}: B_simple at the base run's end"] = noise[rule].b_simple
            for b in bs:
                summary[f"{rule}: loss ratio L(B)/L(B₀) at B={b}"] = ratio[rule][b]
                for seed, value in zip(seeds, losses[(rule, b)]):
                    records.add(b, "final_loss", float(value), rule=rule, seed=seed)
                records.add(b, "loss_ratio", ratio[rule][b], rule=rule, seed=None)
            span = f"B in {within[0]}..{within[-1]}" if within else "no B"
            if rule == "sgd-linear":
                checks.append(Check.at_most(f"SGD, η ∝ B: max |L(B)/L(B₀) − 1| for B ≤ B_noise/4 = {b_noise / 4:.1f} "
                                            f"({span})", _deviation(ratio[rule], within), tol))
                checks.append(Check.at_least(f"SGD, η ∝ B: min |L(B)/L(B₀) − 1| for B > B_noise = {b_noise:.1f} "
                                             f"({len(beyond)} sizes)",
                                             min((abs(ratio[rule][b] - 1) for b in beyond), default=math.nan), tol))
            elif rule == "adam-sqrt":
                checks.append(Check.at_most(f"Adam, square-root rule: max |L(B)/L(B₀) − 1| for B ≤ B_noise/4 = "
                                            f"{b_noise / 4:.1f} ({span})", _deviation(ratio[rule], within), tol))
            else:
                checks.append(Check.at_least(f"Adam, linear rule: max |L(B)/L(B₀) − 1| for B ≤ B_noise/4 = "
                                             f"{b_noise / 4:.1f} ({span}) — the linear rule must fail",
                                             _deviation(ratio[rule], within), tol))
        curves = pa.Table.from_pylist([{"curve": "tolerance band", "x": float(b), "y": 1 + s * tol, "rule": None}
                                       for b in bs for s in (-1, 1)])
        figure = scaling_rules_figure(bs, ratio, {r: noise[r].b_noise for r in RULES}, tol, config.base_batch)
        return LawResult(records, curves, checks, {"sgd_scaling_rules": figure}, summary)
