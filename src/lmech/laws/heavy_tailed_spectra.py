"""Law ``heavy-tailed-spectra``: training turns a layer's Marchenko–Pastur spectrum into a heavier, power-law-like
tail, the more so the smaller the batch.

Martin & Mahoney (2021, arXiv:1810.01075; 2019, arXiv:1901.08276) describe each layer by the empirical spectral
density (ESD) of ``X = WᵀW/N``. At initialisation it follows the Marchenko–Pastur (MP) law; with training it
grows a tail whose power-law exponent ``α`` (fitted by maximum likelihood, ``x_min`` by the KS distance — Clauset,
Shalizi & Newman 2009, arXiv:0706.1062) falls from the large values of random matrices towards 2–4; the element-wise
shuffled ``W`` (same entries, correlations destroyed) returns to MP; and smaller batches give heavier tails (their
"5+1 phases" and batch-size experiments, arXiv:1810.01075 §5, §7).

Experiment: an MLP ``64 → 512 → 512 → 512 → 10`` (ReLU, PyTorch's uniform initialisation of variance
``1/(3·fan_in)``) trained on 1,500 scikit-learn digits by plain SGD at ``lr = 0.05`` (no momentum, no weight decay),
once with batch 2 and once with batch 128, for the same number of steps from the same initialisation (so the large
batch sees 64× more examples). The two square hidden-to-hidden layers (``512 × 512``, ``Q = 1``, 512 eigenvalues)
are checked. The input layer (``512 × 64``) is recorded but not checked: with 64 eigenvalues its fitted ``α`` at
initialisation ranges from 3.6 to 14.8 over seeds 0–9; the ``10 × 512`` readout has 10 eigenvalues.

Checks:

* at initialisation each square layer's ESD is MP with ``Q = 1`` and the known ``σ² = 1/(3·512)``: KS distance ≤ 0.02
  (measured 0.005–0.007; over 200 simulated uniform ``512 × 512`` matrices it never exceeded 0.008, and i.i.d.
  Student-t(2.5) entries, whose ESD is far from MP at this size, give 0.03–0.06);
* after small-batch training each square layer's ``α`` is below every random-matrix value: its ``α`` at
  initialisation and the ``α`` of 19 element-wise shuffles of the trained ``W`` (a permutation test at level 1/21 —
  the random values scatter widely, 3.9 to 19 over seeds, so one random value is not a baseline);
* those shuffles are MP again (KS ≤ 0.02 with ``σ²`` the trained entries' variance; measured ≤ 0.008);
* batch 128 leaves the tail lighter than batch 2: the mean over square layers of ``α₁₂₈ − α₂`` is at least two
  standard errors (Clauset's ``(α − 1)/√n_tail``, combined; over seeds the ``α``s vary less than that);
* the fit recovers the exponent of 10,000 Pareto samples, ``α ∈ {1.5, 2, 3, 4}``, within 0.1 (with 200 samples the
  spread over seeds exceeds 0.1: the tolerance is not loose).

Quick preset, seed 0 (2,000 steps): ``α`` falls from 7.7 and 5.5 at initialisation (shuffles: 6.0–16 and 4.9–17)
to 2.66 and 3.17 with batch 2 and to 3.55 and 3.60 with batch 128 (``α₁₂₈ − α₂ = 0.66 ± 0.22``, z = 3.0). Over
seeds 0–9 every check passes except, at seed 4, the batch check (z = 1.85; the difference is positive in both
layers, 0.59 and 0.24); ``α`` with batch 2 is 2.6–3.0 (layer 1) and 2.8–3.3 (layer 2), with batch 128 3.5–3.7 and
3.4–3.7.

What this is and is not. The fall of ``α`` is mostly carried by a handful of eigenvalues: 9–12 leave the MP bulk
(about one per class) and removing the 10 largest sends ``α`` back to 4–20 for either batch size — M&M's
*bulk + spikes* / *bleeding-out* phases, not a bulk that has itself become heavy-tailed. The small batch does
deform the bulk more (KS distance of the trained ESD to MP with the trained variance: 0.03–0.08 against 0.023–0.028)
and usually lowers the stable rank further (130 → 13–48 against 47–52), while the effective rank (Roy & Vetterli) barely
moves (412 → ~390–406). The tail is only roughly a power law (KS distance of the fit ~0.09 over 100–160
eigenvalues), so ``α`` is the WeightWatcher-style summary number, not evidence of a true power law. In the first
~100 steps ``α`` often rises (the bulk edge sharpens) before it falls. Protocol choices (batch 2 against 128, lr 0.05,
2,000 steps at the quick preset, ``min_tail = 10``, the z ≥ 2 margin) were made after looking at results; seeds 0–9
and a depth-2 network were checked as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from ..config import finite_positive, one_of, require, valid_seed
from ..data.digits import NUM_CLASSES, NUM_EXAMPLES, NUM_FEATURES, load_digits
from ..measure.spectra import esd, fit_power_law, layer_spectrum, permute_entries
from ..models.mlp import ACTIVATIONS, mlp
from ..progress import NO_PROGRESS, Progress
from ..theory.random_matrix import ks_distance_to_marchenko_pastur, marchenko_pastur_density, marchenko_pastur_edges
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_spectra import spectra_figure
from .registry import register

BATCH_GAP_Z = 2.0  # the large-batch α must exceed the small-batch α by two standard errors


@dataclass(frozen=True, kw_only=True)
class HeavyTailedSpectraConfig:
    """The heavy-tailed self-regularisation experiment.

    Attributes:
        width, depth, activation: the MLP ``64 → width × depth → 10``; the ``depth − 1`` square hidden-to-hidden
            layers are checked.
        lr: SGD step size (no momentum, no weight decay).
        small_batch, large_batch: the two batch sizes, trained for the same ``steps`` from the same initialisation.
        steps: SGD steps per run; ``num_records``: ESD measurements after step 0, log-spaced from step 10 to
            ``steps`` (the tail forms in the first few hundred steps).
        n_train: training images (the rest of the 1,797 measure test accuracy).
        shuffles: element-wise shuffles of each trained matrix (the random-matrix null).
        min_tail: the fewest eigenvalues a fitted tail may hold.
        mp_tolerance: the largest KS distance to MP that counts as MP.
        pareto_alphas, pareto_samples, pareto_tolerance: the synthetic check of the fit.
        seed: seeds the split, the initialisation, the batches, the shuffles and the Pareto samples.
    """

    width: int = 512
    depth: int = 3
    activation: str = "relu"
    lr: float = 0.05
    small_batch: int = 2
    large_batch: int = 128
    steps: int = 3000
    num_records: int = 10
    n_train: int = 1500
    shuffles: int = 19
    min_tail: int = 10
    mp_tolerance: float = 0.02
    pareto_alphas: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0)
    pareto_samples: int = 10_000
    pareto_tolerance: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.width, int) and self.width >= 4 * self.min_tail,
                f"width must be an integer >= 4 × min_tail = {4 * self.min_tail} (the ESD has width eigenvalues), "
                f"got {self.width!r}")
        require(isinstance(self.depth, int) and self.depth >= 2,
                f"depth must be an integer >= 2 (at least one square hidden-to-hidden layer), got {self.depth!r}")
        one_of("activation", self.activation, sorted(ACTIVATIONS))
        finite_positive("lr", self.lr)
        for name in ("small_batch", "large_batch"):
            value = getattr(self, name)
            require(isinstance(value, int) and 1 <= value <= self.n_train,
                    f"{name} must be an integer in 1..n_train = {self.n_train}, got {value!r}")
        require(self.small_batch < self.large_batch,
                f"small_batch must be < large_batch, got {self.small_batch} and {self.large_batch}")
        require(isinstance(self.steps, int) and self.steps >= 1, f"steps must be an integer >= 1, got {self.steps!r}")
        require(isinstance(self.num_records, int) and self.num_records >= 1,
                f"num_records must be an integer >= 1, got {self.num_records!r}")
        require(isinstance(self.n_train, int) and 100 <= self.n_train <= NUM_EXAMPLES - 100,
                f"n_train must be an integer in 100..{NUM_EXAMPLES - 100}, got {self.n_train!r}")
        require(isinstance(self.shuffles, int) and self.shuffles >= 1,
                f"shuffles must be an integer >= 1, got {self.shuffles!r}")
        require(isinstance(self.min_tail, int) and self.min_tail >= 2, f"min_tail must be an integer >= 2, got {self.min_tail!r}")
        finite_positive("mp_tolerance", self.mp_tolerance)
        require(len(self.pareto_alphas) >= 1 and all(a > 1 for a in self.pareto_alphas),
                f"pareto_alphas must be exponents > 1 (a density x^-α is normalisable only then), got {self.pareto_alphas}")
        require(isinstance(self.pareto_samples, int) and self.pareto_samples >= 100,
                f"pareto_samples must be an integer >= 100, got {self.pareto_samples!r}")
        finite_positive("pareto_tolerance", self.pareto_tolerance)
        valid_seed(self.seed)


def init_variance(fan_in: int) -> float:
    """The entries' variance under PyTorch's default ``Linear`` initialisation, ``U(±1/√fan_in)``: ``1/(3·fan_in)``."""
    return 1.0 / (3.0 * fan_in)


def pareto_samples(alpha: float, n: int, generator: np.random.Generator, xmin: float = 1.0) -> np.ndarray:
    """``n`` samples of the Pareto density ``(α − 1) x_min^{α−1} x^{-α}`` on ``x ≥ x_min``, by inversion:
    ``x = x_min (1 − U)^{-1/(α − 1)}``."""
    return xmin * (1.0 - generator.random(n)) ** (-1.0 / (alpha - 1.0))


def record_steps(steps: int, num_records: int) -> set[int]:
    """Step 0 and ``num_records`` log-spaced steps from ``min(10, steps)`` to ``steps`` (fewer where they coincide).

    >>> sorted(record_steps(1000, 3))
    [0, 10, 100, 1000]
    """
    return {0, *np.unique(np.geomspace(min(10, steps), steps, num_records).round().astype(int)).tolist()}


def _weights(model: nn.Sequential) -> list[torch.Tensor]:
    return [m.weight for m in model if isinstance(m, nn.Linear)]


def _spectrum_stats(weight: torch.Tensor, min_tail: int) -> dict[str, float]:
    spec = layer_spectrum(weight, min_tail=min_tail)
    ev, fit = spec.eigenvalues, spec.fit
    top = fit_power_law(ev[:-NUM_CLASSES], min_tail=min_tail).alpha if ev.size - NUM_CLASSES >= 4 * min_tail else fit.alpha
    return {"alpha": fit.alpha, "alpha_sigma": fit.sigma, "xmin": fit.xmin, "n_tail": fit.n_tail,
            "power_law_ks": fit.ks_distance, "alpha_without_top_classes": top, "ks_to_mp": spec.ks_to_mp,
            "above_mp_edge": spec.above_mp_edge, "stable_rank": spec.stable_rank, "effective_rank": spec.effective_rank}


def train_run(config: HeavyTailedSpectraConfig, batch_size: int, train, test, records: Records,
              progress: Progress) -> tuple[nn.Sequential, float]:
    """Plain SGD with minibatches drawn with replacement; records every hidden layer's spectrum statistics at
    :func:`record_steps`. Returns the trained model and its test accuracy."""
    model = mlp(NUM_FEATURES, [config.width] * config.depth, NUM_CLASSES, activation=config.activation, seed=config.seed)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed + 1)
    when = record_steps(config.steps, config.num_records)
    for step in range(config.steps + 1):
        if step in when:
            for layer, weight in enumerate(_weights(model)[:-1]):
                for name, value in _spectrum_stats(weight, config.min_tail).items():
                    records.add(step, name, value, batch_size=batch_size, layer=layer)
        if step == config.steps:
            break
        idx = torch.randint(0, len(train.inputs), (batch_size,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(train.inputs[idx]), train.labels[idx]).backward()
        opt.step()
        progress.advance()
    with torch.no_grad():
        accuracy = float((model(test.inputs).argmax(1) == test.labels).double().mean())
    return model, accuracy


@register
class HeavyTailedSpectra(Law):
    name = "heavy-tailed-spectra"
    title = "Heavy-tailed self-regularisation: weight spectra leave Marchenko–Pastur and grow power-law tails"
    pillar = "universality"
    references = (
        Reference("Martin, Mahoney. Implicit Self-Regularization in Deep Neural Networks: Evidence from Random Matrix "
                  "Theory and Implications for Learning. JMLR 2021", "1810.01075"),
        Reference("Martin, Mahoney. Traditional and Heavy-Tailed Self Regularization in Neural Network Models. "
                  "ICML 2019", "1901.08276"),
        Reference("Clauset, Shalizi, Newman. Power-law distributions in empirical data. SIAM Review 2009", "0706.1062"),
        Reference("Marchenko, Pastur. Distribution of eigenvalues for some sets of random matrices. Math. USSR-Sb. 1967"),
    )
    statement = ("At initialisation a layer's spectrum follows Marchenko–Pastur; training gives it a heavy tail whose "
                 "fitted power-law exponent α falls below every random-matrix value, shuffling the trained entries "
                 "restores Marchenko–Pastur, and smaller batches give heavier tails.")
    Config = HeavyTailedSpectraConfig
    presets = {"quick": dict(steps=2000), "full": dict(steps=10_000, num_records=15, shuffles=39)}

    def run(self, config: HeavyTailedSpectraConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train, test = load_digits(config.n_train, seed=config.seed, dtype=torch.float32)
        square = list(range(1, config.depth))
        records = Records()
        initial = [w.detach().clone() for w in _weights(mlp(NUM_FEATURES, [config.width] * config.depth, NUM_CLASSES,
                                                             activation=config.activation, seed=config.seed))]
        batches = (config.small_batch, config.large_batch)
        progress.task(f"{self.name}: SGD with batch {batches[0]} and {batches[1]}", 2 * config.steps)
        trained, accuracy = {}, {}
        for b in batches:
            model, accuracy[b] = train_run(config, b, train, test, records, progress)
            trained[b] = [w.detach().clone() for w in _weights(model)]

        progress.task(f"{self.name}: random-matrix nulls and the Pareto check",
                      len(square) * config.shuffles + len(config.pareto_alphas))
        gen = torch.Generator().manual_seed(config.seed + 2)
        init_ks, null_alpha, null_ks = {}, {}, {}
        for layer in square:
            w0, w = initial[layer], trained[config.small_batch][layer]
            init_ks[layer] = ks_distance_to_marchenko_pastur(esd(w0), 1.0, init_variance(w0.shape[1]))
            sigma2 = float(w.double().var(unbiased=False))
            null_alpha[layer], null_ks[layer] = [], []
            for _ in range(config.shuffles):
                ev = esd(permute_entries(w, gen))
                null_alpha[layer].append(fit_power_law(ev, min_tail=config.min_tail).alpha)
                null_ks[layer].append(ks_distance_to_marchenko_pastur(ev, 1.0, sigma2))
                progress.advance()
        rng = np.random.default_rng(config.seed)
        pareto = {}
        for a in config.pareto_alphas:
            pareto[a] = fit_power_law(pareto_samples(a, config.pareto_samples, rng), min_tail=config.min_tail).alpha
            progress.advance()

        def final(name: str, b: int, layer: int) -> float:
            return float(records.series(name, batch_size=b, layer=layer)[1][-1])

        def first(name: str, b: int, layer: int) -> float:
            return float(records.series(name, batch_size=b, layer=layer)[1][0])

        small, large = config.small_batch, config.large_batch
        gap = float(np.mean([final("alpha", large, la) - final("alpha", small, la) for la in square]))
        gap_se = float(np.sqrt(sum(final("alpha_sigma", b, la) ** 2 for b in batches for la in square)) / len(square))
        checks = [Check.at_most(f"at initialisation: KS distance of the square layers' ESD to Marchenko–Pastur "
                                f"(Q = 1, σ² = 1/(3·{config.width})), worst layer",
                                max(init_ks.values()), config.mp_tolerance)]
        for layer in square:
            random_values = [first("alpha", small, layer), *null_alpha[layer]]
            checks.append(Check.at_most(
                f"layer {layer}, batch {small}: trained α minus the smallest random-matrix α (at initialisation and "
                f"{config.shuffles} element-wise shuffles of the trained W)",
                final("alpha", small, layer) - min(random_values), 0.0))
        checks += [
            Check.at_most(f"element-wise shuffles of the trained square layers: KS distance to Marchenko–Pastur "
                          f"(σ² = the trained entries' variance), worst of {len(square) * config.shuffles}",
                          max(max(v) for v in null_ks.values()), config.mp_tolerance),
            Check.at_least(f"α with batch {large} minus α with batch {small} after {config.steps} steps, mean over the "
                           "square layers, in units of its standard error", gap / gap_se, BATCH_GAP_Z),
            Check.at_most(f"Pareto samples (n = {config.pareto_samples}, α = {', '.join(f'{a:g}' for a in pareto)}): "
                          "largest |α̂ − α|", max(abs(pareto[a] - a) for a in pareto), config.pareto_tolerance),
        ]
        summary: dict[str, float] = {f"test accuracy, batch {b}": accuracy[b] for b in batches}
        summary[f"α(batch {large}) − α(batch {small}), mean over square layers"] = gap
        summary["… its standard error (Clauset's, combined)"] = gap_se
        for layer in range(config.depth):
            for b in batches:
                summary[f"layer {layer}: α after training, batch {b}"] = final("alpha", b, layer)
            summary[f"layer {layer}: α at initialisation"] = first("alpha", small, layer)
        for layer in square:
            summary[f"layer {layer}: shuffled-null α, median"] = float(np.median(null_alpha[layer]))
            summary[f"layer {layer}: shuffled-null α, min"] = float(np.min(null_alpha[layer]))
            summary[f"layer {layer}: KS to MP at initialisation"] = init_ks[layer]
            for b in batches:
                for name in ("alpha_sigma", "n_tail", "power_law_ks", "alpha_without_top_classes", "above_mp_edge",
                             "ks_to_mp", "stable_rank", "effective_rank"):
                    summary[f"layer {layer}, batch {b}: {name}"] = final(name, b, layer)
            summary[f"layer {layer}: stable rank at initialisation"] = first("stable_rank", small, layer)
            summary[f"layer {layer}: effective rank at initialisation"] = first("effective_rank", small, layer)
        for a in pareto:
            summary[f"Pareto α = {a:g}: fitted"] = pareto[a]
        for layer in square:
            for k, v in enumerate(null_alpha[layer]):
                records.add(config.steps, "shuffled_alpha", v, batch_size=small, layer=layer, shuffle=k)
        curves = self._curves(config, initial, trained, square, records)
        figure = spectra_figure(initial, trained, square, records, curves, null_alpha, batches)
        return LawResult(records, curves, checks, {"heavy_tailed_spectra": figure}, summary)

    @staticmethod
    def _curves(config, initial, trained, square, records) -> pa.Table:
        """Marchenko–Pastur at initialisation, and each trained layer's fitted power-law tail scaled to its share
        of the ESD: ``(n_tail/M)·(α − 1)/x_min·(λ/x_min)^{-α}`` on ``[x_min, λ_max]``."""
        rows: dict[str, list] = {"curve": [], "x": [], "y": [], "layer": [], "batch_size": []}

        def add(curve: str, x: np.ndarray, y: np.ndarray, layer: int, batch_size: int) -> None:
            rows["curve"] += [curve] * len(x)
            rows["x"] += x.tolist()
            rows["y"] += y.tolist()
            rows["layer"] += [layer] * len(x)
            rows["batch_size"] += [batch_size] * len(x)

        for layer in square:
            sigma2 = init_variance(initial[layer].shape[1])
            x = np.geomspace(marchenko_pastur_edges(1.0, sigma2)[1] * 1e-3, marchenko_pastur_edges(1.0, sigma2)[1], 200)
            add("marchenko-pastur", x, marchenko_pastur_density(x, 1.0, sigma2), layer, 0)
            for b, ws in trained.items():
                alpha, xmin, n_tail = (float(records.series(name, batch_size=b, layer=layer)[1][-1])
                                       for name in ("alpha", "xmin", "n_tail"))
                ev = esd(ws[layer])
                x = np.geomspace(xmin, ev.max(), 50)
                add("power-law tail", x, n_tail / ev.size * (alpha - 1) / xmin * (x / xmin) ** (-alpha), layer, b)
        return pa.table(rows)
