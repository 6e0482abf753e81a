"""Law ``mup-coord-check``: under muP every layer's coordinates keep their size as the network widens; under
SP with the same base learning rate the updates blow up with width.

The coordinate check of Yang et al. (Tensor Programs V, arXiv:2203.03466, §D.1 and Figure 5) trains networks
of growing width for a few steps from the same base hyperparameters and records the mean absolute
coordinate of every layer's output (:func:`lmech.measure.coord_check`). A parametrisation with a
feature-learning infinite-width limit keeps them ``Θ(1)``; SP at a fixed learning rate does not (TP IV,
arXiv:2011.14522, §3: SP is stable at a fixed rate only if it stops learning features as width grows).

Setting. The scikit-learn digits (256 training images, full batch), a tanh MLP ``64 → w → w → 10``,
cross-entropy, Adam at base learning rate ``η = 10⁻²``, base width 128, widths 128 to 2,048, steps 0-5, both
parametrisations from :func:`lmech.models.parametrize` (``"mup"`` and ``"sp"``), seeds averaged.

Checks.

* muP: for every layer, the largest over steps 1-5 of ``max_w / min_w`` of its mean |activation| is below 1.3
  (the issue's factor; measured ≤ 1.13, the readout at step 1).
* muP: the same for every layer's mean |update| ``|αΔW x|`` (measured ≤ 1.1).
* SP: the hidden or the output layer's mean |update| ``|αΔW x|`` (steps 1-5 averaged) grows with width with
  a fitted log-log slope ≥ 0.3 (measured 0.9 and 0.65): SP does not transfer.
* Spectral condition (Yang, Simon, Bernstein 2023, arXiv:2310.17813, Condition 1): under muP, for every weight
  matrix, ``‖αW_l‖₂ / √(fan_out/fan_in)`` and ``‖αΔW_l‖₂ / √(fan_out/fan_in)`` after the last step have a
  log-log slope against width within ±0.15. The input layer's ``‖W‖₂`` carries a finite-width correction:
  for an ``n × 64`` Gaussian matrix ``‖W‖₂ ≈ σ(√n + √64)``, not ``σ√n``, which alone makes its normalised norm
  fall from 1.71 at ``n = 128`` to 1.17 at 2,048 at initialisation (slope −0.14); under SP the hidden and
  readout slopes are 0.6-0.9, which this tolerance rejects by a wide margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from ..config import finite_positive, require, valid_seed
from ..data.digits import load_digits
from ..measure.coord_check import coord_check, spectral_norms, width_slopes
from ..models import mlp, parametrize
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_coord_check import coord_check_figure
from .registry import register

ACTIVATION_FACTOR = 1.3  # muP: max/min over widths of a layer's mean |activation|, steps 1..T
SP_SLOPE = 0.3  # SP: log-log slope of the hidden or output update against width, at least
SPECTRAL_SLOPE = 0.15  # muP: |slope| of the normalised spectral norms against width, at most
PARAMETRIZATIONS = ("mup", "sp")


@dataclass(frozen=True, kw_only=True)
class MupCoordCheckConfig:
    """The coordinate check.

    Attributes:
        widths: hidden widths, at least 3, spanning at least 16× (the issue: 128 to ≥ 2,048).
        base_width: the width at which muP and SP coincide.
        lr: Adam's base learning rate.
        steps: Adam steps ``T`` (rows at steps ``0..T``; checks on ``1..T``).
        num_examples: digits in the full batch.
        seeds: initialisations averaged at each width.
        seed: the first seed.
    """

    widths: tuple[int, ...] = (128, 256, 512, 1024, 2048)
    base_width: int = 128
    lr: float = 1e-2
    steps: int = 5
    num_examples: int = 256
    seeds: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        require(len(self.widths) >= 3 and list(self.widths) == sorted(set(self.widths)),
                f"widths must be at least 3 distinct ascending widths, got {self.widths}")
        require(all(isinstance(w, int) and w >= 1 for w in self.widths), f"widths must be integers >= 1, got {self.widths}")
        require(self.widths[-1] >= 16 * self.widths[0],
                f"widths must span at least 16x (e.g. 128..2048), got {self.widths[0]}..{self.widths[-1]}")
        require(isinstance(self.base_width, int) and self.base_width >= 1,
                f"base_width must be an integer >= 1, got {self.base_width!r}")
        finite_positive("lr", self.lr)
        require(isinstance(self.steps, int) and self.steps >= 1, f"steps must be an integer >= 1, got {self.steps!r}")
        require(isinstance(self.num_examples, int) and 2 <= self.num_examples <= 1797,
                f"num_examples must be an integer in 2..1797, got {self.num_examples!r}")
        require(isinstance(self.seeds, int) and self.seeds >= 1, f"seeds must be an integer >= 1, got {self.seeds!r}")
        valid_seed(self.seed)


def _per_width(records: Records, observable: str, steps) -> dict[str, dict[int, dict[int, float]]]:
    """``{layer: {step: {width: mean over seeds}}}`` for ``observable`` at ``steps``."""
    values: dict[str, dict[int, dict[int, list[float]]]] = {}
    for row in records.rows:
        if row["observable"] == observable and row["step"] in steps and row["layer"]:
            values.setdefault(row["layer"], {}).setdefault(row["step"], {}).setdefault(row["width"], []).append(row["value"])
    return {layer: {step: {w: float(np.mean(v)) for w, v in per.items()} for step, per in by_step.items()}
            for layer, by_step in values.items()}


def activation_spread(records: Records, steps, observable: str = "activation") -> dict[str, float]:
    """Per layer: ``max`` over ``steps`` of ``max_w / min_w`` of its mean |``observable``| (seeds averaged)."""
    out = {}
    for layer, by_step in _per_width(records, observable, steps).items():
        out[layer] = max(max(per.values()) / min(per.values()) for per in by_step.values())
    return out


def update_slopes(records: Records, steps) -> dict[str, float]:
    """Per layer: the log-log slope against width of its mean |update|, averaged over ``steps`` first."""
    out = {}
    for layer, by_step in _per_width(records, "update", steps).items():
        widths = sorted(next(iter(by_step.values())))
        mean = [np.mean([by_step[s][w] for s in by_step]) for w in widths]
        if all(m > 0 for m in mean):
            out[layer] = float(np.polyfit(np.log(widths), np.log(mean), 1)[0])
    return out


def normalised_spectral_slopes(records: Records, scales: Mapping[int, Mapping[str, float]], step: int
                               ) -> dict[tuple[str, str], float]:
    """``{(observable, layer): slope}`` of ``log(norm / √(fan_out/fan_in))`` against ``log width`` at ``step``."""
    out = {}
    for observable in ("spectral_norm", "update_spectral_norm"):
        for layer, by_step in _per_width(records, observable, {step}).items():
            per = by_step[step]
            widths = sorted(per)
            y = [per[w] / scales[w][layer] for w in widths]
            if all(v > 0 for v in y):
                out[(observable, layer)] = float(np.polyfit(np.log(widths), np.log(y), 1)[0])
    return out


@register
class MupCoordCheck(Law):
    name = "mup-coord-check"
    title = "muP coordinate check: every layer's coordinates keep their size as width grows"
    pillar = "hyperparameters"
    references = (
        Reference("Yang et al. Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter "
                  "Transfer. 2022", "2203.03466"),
        Reference("Yang & Hu. Tensor Programs IV: Feature Learning in Infinite-Width Neural Networks. ICML 2021",
                  "2011.14522"),
        Reference("Yang, Simon, Bernstein. A Spectral Condition for Feature Learning. 2023", "2310.17813"),
        Reference("Everett et al. Scaling Exponents Across Parameterizations and Optimizers. ICML 2024", "2407.05872"),
    )
    statement = ("Trained from the same base hyperparameters, a muP network's activations and updates keep a "
                 "width-independent coordinate size in every layer, and its weights and their updates have "
                 "spectral norms ∝ √(fan_out/fan_in); in SP at the same base learning rate the updates grow "
                 "with width.")
    Config = MupCoordCheckConfig
    presets = {"quick": dict(num_examples=128), "full": dict(widths=(128, 256, 512, 1024, 2048, 4096), seeds=3)}

    def run(self, config: MupCoordCheckConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train, _ = load_digits(config.num_examples, 1797 - config.num_examples, dtype=torch.float32)
        data = (train.inputs, train.labels)
        seeds = [config.seed + s for s in range(config.seeds)]
        checked = set(range(1, config.steps + 1))
        records, results = Records(), {}
        progress.task(f"{self.name}: {config.steps} Adam steps at {len(config.widths)} widths", 2 * len(config.widths))
        for name in PARAMETRIZATIONS:
            def make(width: int, seed: int, name: str = name) -> torch.nn.Module:
                return parametrize(mlp(64, [width, width], 10, activation="tanh", seed=seed), name,
                                   base_width=config.base_width, seed=seed)

            part = Records()
            for width in config.widths:
                part.extend(coord_check(make, [width], data, loss_fn=torch.nn.functional.cross_entropy, lr=config.lr,
                                        optimizer="adam", steps=config.steps, seeds=seeds, spectral=(0, config.steps)))
                progress.advance()
            for row in part.rows:
                row["parametrization"] = name
            records.extend(part)
            scales = {w: {layer: v["spectral_scale"] for layer, v in spectral_norms(make(w, config.seed)).items()}
                      for w in config.widths}
            results[name] = {"spread": activation_spread(part, checked),
                             "update_spread": activation_spread(part, checked, "update"),
                             "updates": update_slopes(part, checked),
                             "spectral": normalised_spectral_slopes(part, scales, config.steps),
                             "activation_slopes": width_slopes(part, "activation", step=config.steps)}
        checks = self.compare(results)
        summary = {}
        for name, r in results.items():
            for layer, v in r["update_spread"].items():
                summary[f"{name}: layer {layer} mean |update|, max/min over widths (steps 1-{config.steps})"] = v
            for layer, v in r["spread"].items():
                summary[f"{name}: layer {layer} mean |activation|, max/min over widths (steps 1-{config.steps})"] = v
            for layer, v in r["updates"].items():
                summary[f"{name}: layer {layer} mean |update| log-log slope against width"] = v
            for (obs, layer), v in r["spectral"].items():
                summary[f"{name}: layer {layer} {obs} / √(fan_out/fan_in), log-log slope"] = v
        figure = coord_check_figure(records, config.widths, config.steps)
        return LawResult(records, pa.table({"curve": [], "x": [], "y": []}), checks, {"mup_coord_check": figure}, summary)

    @staticmethod
    def compare(results) -> list[Check]:
        mup, sp = results["mup"], results["sp"]
        order = sorted(mup["spread"], key=int)
        role = {layer: "input" if i == 0 else "readout" if i == len(order) - 1 else "hidden"
                for i, layer in enumerate(order)}
        checks = [Check.at_most(f"muP {role[layer]} layer {layer}: mean |activation|, max/min over widths, worst step",
                                mup["spread"][layer], ACTIVATION_FACTOR) for layer in order]
        if "update_spread" in mup:
            worst = max(mup["update_spread"], key=mup["update_spread"].get)
            checks.append(Check.at_most(f"muP: mean |αΔW x| of every layer, max/min over widths, worst layer and step "
                                        f"({role.get(worst, '')} layer {worst})", mup["update_spread"][worst],
                                        ACTIVATION_FACTOR))
        growing = {layer: sp["updates"][layer] for layer in order[1:] if layer in sp["updates"]}  # hidden and readout
        best = max(growing, key=growing.get) if growing else ""
        checks.append(Check.at_least(f"SP: largest update log-log slope of the hidden and output layers "
                                     f"({role.get(best, '')} layer {best})", growing.get(best, math.nan), SP_SLOPE))
        worst = max(mup["spectral"].items(), key=lambda kv: abs(kv[1]))
        checks.append(Check.at_most(f"muP spectral condition: max |slope| of ‖αW‖₂ and ‖αΔW‖₂ over √(fan_out/fan_in) "
                                    f"(worst: {worst[0][0]} of layer {worst[0][1]})", abs(worst[1]), SPECTRAL_SLOPE))
        return checks
