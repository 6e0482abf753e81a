"""Law ``factored-belief-geometry``: a transformer trained on a product of independent hidden processes holds each
process's belief state in its own subspace of the residual stream, using the sum of the factors' dimensions rather
than their product.

Shai, Riechers et al. (2026), *Transformers learn factored representations*, arXiv:2602.02385: for tokens emitted
by ``F`` independent HMMs side by side, the optimal predictor needs the joint belief ``η = η^{(1)} ⊗ ⋯ ⊗ η^{(F)}``;
a representation linear in it spans ``Π_f s_f − 1`` dimensions, a factored one ``Σ_f (s_f − 1)`` in one subspace per
factor, and is lossless because the factors are independent. Transformers trained by next-token prediction learn
the factored one. Belief states are read from the residual stream by linear regression as in Shai et al. (2024),
arXiv:2405.15943 (Mess3: ``x = 0.05, α = 0.85``, context 10, as there).

The experiment: ``factors`` copies of Mess3 (3 states, 3 tokens each; joint vocabulary ``3^F``), a pre-LayerNorm
transformer (:class:`lmech.models.Transformer`) trained by Adam on fresh sequences every step (the process is the
data: no sample is seen twice). On ``num_eval`` held-out sequences, the residual stream after the last block at
every position ``t = 1 … context`` is regressed on the exact beliefs after ``t`` tokens (:mod:`lmech.data.hmm`):

* **decodability** — held-out R² of a linear probe (small ridge) from the residual stream to each factor's belief
  (:func:`lmech.measure.linear_probe`), and to the joint belief for comparison;
* **orthogonality** — the principal angles between the subspaces the factors are written into
  (:func:`lmech.measure.factor_encodings`: the activations, centred at each position, regressed on all factors'
  simplex coordinates at once). Random subspaces of a wide space are nearly orthogonal by themselves (two random
  planes in ``R^64`` have every angle ≥ 75° with probability 0.69, and a random linear map of the factor beliefs into
  ``R^64`` gives 82°), so the residual stream is narrow, ``d_model = 16``, where that probability is 0.10 and the
  median smallest angle 64°; the measured angle is compared with random planes in ``R^{d_model}``
  (:func:`lmech.measure.chance_of_orthogonality`). At ``d_model = 64`` the law's other checks hold as well (R²
  0.991–0.993, dimension 4, angle 81–83°) but the angle is no larger than the untrained network's (80°);
* **dimension** — the principal components of the part of the activations that is linear in the *joint* belief
  needed for ``variance_frac`` of its variance (:func:`lmech.measure.explained_dimension`): factored ``Σ (s_f − 1)``
  (4 for two Mess3), joint ``Π s_f − 1`` (8).

Checks: each factor's held-out R² ≥ ``r2_min`` (0.9) and its unexplained variance ``1 − R²`` at least
``learned_ratio`` (5) times smaller than at initialisation (an untrained transformer's residual stream already
decodes the beliefs in part — R² 0.4–0.65 at ``d_model = 16``, 0.90 at 64 — since it holds the recent tokens and
Mess3's belief is close to a linear function of them, so R² alone does not show learning); every principal angle
between two factors' subspaces ≥ ``min_angle`` (75°), and the chance that two random planes of ``R^{d_model}`` are
as orthogonal ≤ ``chance_max`` (5%); the dimension is nearer the sum than the product (for two Mess3: ≤ 5).

Measured (``lmech run factored-belief-geometry --quick``: 2 layers, ``d_model`` 16, 2,000 Adam steps, about 1 min on
one thread), seeds 0 / 1 / 2 / 3: R² 0.973–0.978 per factor (0.34–0.64 at initialisation; ``1 − R²`` 15–16× smaller
at seed 0); smallest angle 81.4° / 83.0° / 86.4° / 81.7°, up from 59.6° / 57.1° / 34.5° / 32.4° at initialisation
(chance in ``R^16`` ≤ 0.014); dimension 4 at every seed (the 4th component reaches 96.8–99.1% of the belief-linear
variance; 5–7 at initialisation, so the dimension alone does not show learning either); the joint belief decodes
worse than either factor (R² 0.76–0.80), as a factored representation predicts and a joint one would not; 1–3% of
the belief-linear variance is interaction (not linear in the factor beliefs); loss 0.009 nats per token above the
optimum. The default (4 layers, 5,000 steps, about 5 min): R² 0.989 / 0.988 (``1 − R²`` 40× / 38× smaller), angle
83.6° (chance 0.004), dimension 4. Tolerances: 0.9, 75° and "nearer the sum" are the issue's; ``variance_frac``
0.95 is the usual PCA convention — at 0.98 seed 3 gives 5, at 0.99 most seeds 5–6. Three factors at ``d_model = 64``
(``--quick --set factors=3 --set d_model=64 --set n_heads=4``): R² 0.985–0.987, angles ≥ 85.9°, dimension 6
where the joint belief would need 26. A random linear map of the joint belief into ``R^64`` gives dimension 8 and
fails; of the factor beliefs, 4 (tested). What is not tested here: the paper's other half, that factoring persists
when the factors are *not* independent (at a cost in loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor, nn

from ..config import finite_positive, require, valid_seed
from ..data.hmm import ProductProcess, mess3
from ..measure.belief_geometry import (
    chance_of_orthogonality,
    explained_dimension,
    factor_encodings,
    simplex_coordinates,
    variance_dimension,
)
from ..measure.probes import linear_probe, principal_angles
from ..models.transformer import Transformer
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_beliefs import belief_figure
from .registry import register


@dataclass(frozen=True, kw_only=True)
class FactoredBeliefGeometryConfig:
    """The process, the transformer, its training and the measurement.

    Attributes:
        factors: number of independent Mess3 processes (≥ 2); the joint vocabulary is ``3^factors``.
        x, alpha: Mess3's parameters (:func:`lmech.data.hmm.mess3`).
        context: tokens the transformer sees; sequences of ``context + 1`` tokens are sampled.
        d_model, n_layers, n_heads: the transformer (``d_mlp = 4·d_model``, GELU).
        steps, batch_size, lr: Adam on a fresh batch of sequences every step.
        eval_every: steps between held-out evaluations (loss and geometry).
        num_eval: held-out sequences; the probes see ``num_eval · context`` residual vectors.
        ridge: the probes' ridge ``λ`` (:func:`lmech.measure.linear_probe`).
        variance_frac: variance fraction that defines a dimension.
        r2_min: held-out R² each factor's probe must reach.
        learned_ratio: how many times smaller ``1 − R²`` must be than at initialisation.
        min_angle: degrees every principal angle between two factors' subspaces must reach.
        chance_max: the most probability random subspaces may have of being as orthogonal.
        seed: seeds the model, the training batches and the held-out sequences.
    """

    factors: int = 2
    x: float = 0.05
    alpha: float = 0.85
    context: int = 10
    d_model: int = 16
    n_layers: int = 4
    n_heads: int = 2
    steps: int = 5_000
    batch_size: int = 256
    lr: float = 1e-3
    eval_every: int = 250
    num_eval: int = 4_000
    ridge: float = 1e-6
    variance_frac: float = 0.95
    r2_min: float = 0.9
    learned_ratio: float = 5.0
    min_angle: float = 75.0
    chance_max: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.factors, int) and 2 <= self.factors <= 4,
                f"factors must be an integer in 2..4 (the joint vocabulary is 3^factors), got {self.factors!r}")
        for name in ("context", "d_model", "n_layers", "n_heads", "batch_size", "eval_every", "num_eval"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                    f"{name} must be an integer >= 1, got {value!r}")
        require(isinstance(self.steps, int) and self.steps >= 0, f"steps must be an integer >= 0, got {self.steps!r}")
        divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0]
        require(self.d_model % self.n_heads == 0,
                f"n_heads must divide d_model = {self.d_model} (each head is d_model / n_heads wide), got "
                f"n_heads = {self.n_heads}; use one of {divisors} or change d_model")
        require(self.num_eval * self.context >= 10 * self.d_model,
                f"num_eval · context = {self.num_eval * self.context} residual vectors are too few to probe "
                f"d_model = {self.d_model} dimensions; use num_eval ≥ {math.ceil(10 * self.d_model / self.context)}")
        finite_positive("lr", self.lr)
        finite_positive("learned_ratio", self.learned_ratio)
        require(math.isfinite(self.ridge) and self.ridge >= 0, f"ridge must be finite and >= 0, got {self.ridge!r}")
        for name in ("variance_frac", "r2_min", "chance_max"):
            value = getattr(self, name)
            require(0 < value < 1, f"{name} must be in (0, 1), got {value!r}")
        require(0 < self.min_angle <= 90, f"min_angle must be in (0, 90] degrees, got {self.min_angle!r}")
        valid_seed(self.seed)
        self.process()  # raises ConfigError naming a bad x or alpha

    def process(self) -> ProductProcess:
        """The product of ``factors`` identical Mess3 processes (raises ConfigError for bad ``x`` or ``alpha``)."""
        return ProductProcess(tuple(mess3(self.x, self.alpha) for _ in range(self.factors)))


@dataclass(frozen=True)
class Geometry:
    """What the residual stream holds, at one step. Angles in degrees."""

    r2: list[float]  # per factor, held-out
    joint_r2: float
    angles: list[float]  # every principal angle between every pair of factor subspaces
    dimension: int  # components of the joint-belief-linear part for variance_frac
    fractions: Tensor  # their cumulative variance fractions
    belief_share: float  # share of the centred activations' variance linear in the joint belief
    interaction_share: float  # share of that not linear in the factor beliefs
    activation_dimension: int  # D_act
    held_out: list[tuple[Tensor, Tensor]]  # per factor: held-out row indices and the probe's predicted beliefs


class BeliefData:
    """Held-out sequences with their exact beliefs, arranged as rows ``(sequence, position)``."""

    def __init__(self, process: ProductProcess, config: FactoredBeliefGeometryConfig) -> None:
        tokens, _ = process.sample(config.num_eval, config.context + 1, seed=config.seed + 104_729)
        self.tokens, self.context = tokens, config.context
        seen = slice(1, config.context + 1)  # beliefs after 1 … context tokens, the residual at positions 0 … context−1
        self.factor_beliefs = [b[:, seen].reshape(-1, b.shape[-1]) for b in process.factor_beliefs(tokens)]
        self.joint = process.beliefs(tokens)[:, seen].reshape(-1, math.prod(f.num_states for f in process.factors))
        hmm = process.as_hmm()
        nxt = hmm.next_token_probs(hmm.beliefs(tokens)[:, seen])
        self.optimal_loss = float(-nxt.gather(2, tokens[:, 1:, None]).log().mean())


def residual_stream(model: Transformer, tokens: Tensor) -> Tensor:
    """The residual stream after the last block, shape ``(n, length, d_model)``, float64."""
    out: dict[str, Tensor] = {}
    hook = model.blocks[-1].register_forward_hook(lambda _m, _i, o: out.__setitem__("r", o.detach()))
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        hook.remove()
    return out["r"].double()


def geometry(resid: Tensor, data: BeliefData, config: FactoredBeliefGeometryConfig) -> Geometry:
    """Probe, angle and dimension measurements of a residual stream of shape ``(n, context, d)``."""
    d = resid.shape[-1]
    raw = resid.reshape(-1, d)
    centred = (resid - resid.mean(0, keepdim=True)).reshape(-1, d)  # the position's mean removed
    probes = [linear_probe(raw, b, ridge=config.ridge, seed=config.seed) for b in data.factor_beliefs]
    joint_r2 = linear_probe(raw, data.joint, ridge=config.ridge, seed=config.seed).r2
    coords = [simplex_coordinates(b) for b in data.factor_beliefs]
    encodings = factor_encodings(centred, coords)
    angles = [math.degrees(float(a)) for i in range(len(encodings)) for j in range(i + 1, len(encodings))
              for a in principal_angles(encodings[i], encodings[j])]
    dimension, fractions, belief_share = explained_dimension(centred, simplex_coordinates(data.joint),
                                                             config.variance_frac)
    factored_share = explained_dimension(centred, torch.cat(coords, 1), config.variance_frac)[2]
    act_dim = variance_dimension(centred, config.variance_frac)[0]
    held_out = [(p.test_index, p.predict(raw)[p.test_index]) for p in probes]
    return Geometry([p.r2 for p in probes], joint_r2, angles, dimension, fractions, belief_share,
                    1 - factored_share / belief_share, act_dim, held_out)


@register
class FactoredBeliefGeometry(Law):
    name = "factored-belief-geometry"
    title = "Transformers hold independent processes' beliefs in separate, orthogonal subspaces"
    pillar = "universality"
    references = (
        Reference("Shai, Amdahl-Culleton, Christensen, Bigelow, Rosas, Boyd, Alt, Ray, Riechers. Transformers learn "
                  "factored representations. 2026", "2602.02385"),
        Reference("Shai, Marzen, Teixeira, Gietelink Oldenziel, Riechers. Transformers represent belief state "
                  "geometry in their residual stream. NeurIPS 2024", "2405.15943"),
    )
    statement = ("Trained on a product of independent hidden Markov processes, a transformer's residual stream holds "
                 "each factor's belief state linearly (held-out R² ≥ 0.9), in mutually orthogonal subspaces, using "
                 "about the sum of the factors' dimensions rather than their product.")
    Config = FactoredBeliefGeometryConfig
    presets = {"quick": dict(n_layers=2, steps=2_000, eval_every=250), "full": dict(steps=20_000, eval_every=1_000)}

    def run(self, config: FactoredBeliefGeometryConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        process = config.process()
        data = BeliefData(process, config)
        model = Transformer(vocab=process.num_tokens, context=config.context, d_model=config.d_model,
                            n_layers=config.n_layers, n_heads=config.n_heads, seed=config.seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        gen = torch.Generator().manual_seed(config.seed + 1)
        records = Records()
        sizes = [f.num_states for f in process.factors]
        sum_dim, product_dim = sum(s - 1 for s in sizes), math.prod(sizes) - 1

        def evaluate(step: int) -> Geometry:
            resid = residual_stream(model, data.tokens[:, :-1])
            with torch.no_grad():
                logits = model.unembed(model.ln_f(resid.float()))
            loss = float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                                     data.tokens[:, 1:].reshape(-1)))
            geo = geometry(resid, data, config)
            records.add(step, "eval_loss", loss)
            records.add(step, "loss_above_optimum", loss - data.optimal_loss)
            for f, r2 in enumerate(geo.r2):
                records.add(step, "probe_r2", r2, factor=f + 1)
            records.add(step, "joint_probe_r2", geo.joint_r2)
            records.add(step, "min_angle_deg", min(geo.angles))
            records.add(step, "belief_dimension", geo.dimension)
            records.add(step, "activation_dimension", geo.activation_dimension)
            records.add(step, "interaction_share", geo.interaction_share)
            return geo

        progress.task(f"{self.name}: Adam on {config.factors} × Mess3 ({process.num_tokens} tokens)", config.steps)
        initial = final = evaluate(0)
        for step in range(1, config.steps + 1):
            tokens, _ = process.sample(config.batch_size, config.context + 1, generator=gen)
            logits = model(tokens[:, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"training diverged at step {step} (loss {value}); lower lr={config.lr}")
            records.add(step, "train_loss", value)
            if step % config.eval_every == 0 or step == config.steps:
                final = evaluate(step)
            progress.advance()

        min_angle = min(final.angles)
        plane = sizes[0] - 1  # every factor is Mess3: a 2-d subspace each
        chance = chance_of_orthogonality((plane, plane), config.d_model, math.radians(min_angle), seed=config.seed)
        nearer_sum = (sum_dim + product_dim - 1) // 2  # the largest dimension closer to the sum than to the product
        checks = []
        for f, (r2, r2_init) in enumerate(zip(final.r2, initial.r2)):
            checks.append(Check.at_least(f"factor {f + 1}: held-out R² of a linear probe from the final residual "
                                         f"stream to its belief state", r2, config.r2_min))
            checks.append(Check.at_least(
                f"factor {f + 1}: (1 − R²) at initialisation / (1 − R²) after training (the untrained residual stream "
                f"already gives R² = {r2_init:.3f})", (1 - r2_init) / max(1 - r2, 1e-12), config.learned_ratio))
        checks.append(Check.at_least(
            f"smallest principal angle between two factors' subspaces (degrees; {min(initial.angles):.1f} at "
            f"initialisation)", min_angle, config.min_angle))
        checks.append(Check.at_most(
            f"chance that two random {plane}-dimensional subspaces of the residual stream R^{config.d_model} have every "
            f"principal angle ≥ {min_angle:.1f}°", chance, config.chance_max))
        checks.append(Check.at_most(
            f"dimension of the joint-belief-linear activations ({config.variance_frac:.0%} of variance): factored "
            f"predicts Σ(s−1) = {sum_dim}, joint Π s − 1 = {product_dim}; bound: nearer the sum", final.dimension,
            nearer_sum))

        summary = {
            "loss above the optimum (nats per token)": records.series("loss_above_optimum")[1][-1],
            "optimal loss (nats per token)": data.optimal_loss,
            "joint-belief probe R²": final.joint_r2,
            "joint-belief probe R² at initialisation": initial.joint_r2,
            "belief dimension at initialisation": initial.dimension,
            f"activation dimension D_act ({config.variance_frac:.0%} of the position-centred variance)":
                final.activation_dimension,
            "smallest principal angle at initialisation (degrees)": min(initial.angles),
            "share of activation variance linear in the joint belief": final.belief_share,
            "share of that not linear in the factor beliefs (interaction)": final.interaction_share,
            "principal angles (degrees)": ", ".join(f"{a:.1f}" for a in final.angles),
        }
        for f, (r2, r2_init) in enumerate(zip(final.r2, initial.r2)):
            summary[f"factor {f + 1}: probe R² (at initialisation)"] = f"{r2:.4f} ({r2_init:.4f})"
        shown = min(product_dim + 2, len(final.fractions), len(initial.fractions))
        ks = np.arange(1, shown + 1, dtype=float)
        curves = pa.table({"curve": ["cumulative variance, trained"] * shown + ["cumulative variance, initial"] * shown,
                           "x": np.concatenate([ks, ks]),
                           "y": np.concatenate([final.fractions[:shown].numpy(), initial.fractions[:shown].numpy()])})
        figure = belief_figure(data, final, initial.fractions, records, sum_dim, product_dim, config.variance_frac)
        return LawResult(records, curves, checks, {"factored_belief_geometry": figure}, summary)

