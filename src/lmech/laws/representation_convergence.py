"""Law ``representation-convergence``: different networks trained on the same data represent it alike, and the
better a network performs, the more it agrees with the others.

The Platonic Representation Hypothesis (Huh, Cheung, Wang, Isola 2024, arXiv:2405.07987) states that
representations converge across architectures, objectives and modalities, and that alignment grows with
competence (their Figure 2: mutual nearest-neighbour alignment against performance). Here, a population on
one dataset: MLPs of four shapes and small CNNs of two widths on the scikit-learn digits (1,200 training
images), each trained by Adam for a short and a long budget (20 and 400 steps of 64 images) from two seeds
— 24 models whose held-out accuracies span about 0.2 to 0.98. Each model's penultimate representation of the
597 held-out images is compared with every other model's by mutual k-nearest-neighbour alignment (``k = 10``,
:func:`lmech.measure.mutual_knn`) and linear CKA.

Checks:

* the population's mean mutual-kNN alignment is at least 5× the random baseline ``k/(n − 1)``;
* it is above the 99th percentile of a permutation null (each comparison repeated with the examples of one
  representation shuffled, which keeps both representations' geometry and destroys the correspondence);
* Spearman's ρ between a model's held-out accuracy and its mean alignment to the others is at least 0.5;
* and so is the same ρ *within architectures* (each architecture's mean accuracy and alignment removed). The
  pooled ρ alone is confounded by architecture: after a single step of training, when every model is near
  chance (accuracy 0.1-0.3), the pooled ρ is already 0.87, because wide networks both start more accurate
  and keep more of the input's geometry; the within-architecture ρ is then −0.04, and 0.93 after training.

The pixels themselves carry much of this neighbourhood structure: the models' mean alignment with the raw
pixels (0.53 at the quick preset) is about their mean alignment with each other (0.49), so high alignment alone
would not show convergence on this dataset. What does is the trend: alignment with the pixels does not grow
with accuracy (Spearman ρ = −0.22) while alignment with the other models does (ρ = 0.71) — better models move
away from the input's neighbourhoods and towards each other. The summary reports both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from scipy.stats import spearmanr
from torch import Tensor, nn

from ..config import finite_positive, require, valid_seed
from ..data.digits import NUM_EXAMPLES, load_digits
from ..measure.similarity import linear_cka, mutual_knn
from ..models import mlp, small_cnn
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_representation import alignment_figure
from .registry import register

BASELINE_FACTOR = 5.0
SPEARMAN_MIN = 0.5
NULL_QUANTILE = 99.0
ARCHITECTURES = ("mlp-16x1", "mlp-64x2", "mlp-256x2", "mlp-256x3", "cnn-4", "cnn-16")


def build(architecture: str, seed: int) -> nn.Sequential:
    """The population's architectures: ``mlp-WxD`` (``D`` ReLU layers of width ``W``) and ``cnn-C``
    (:func:`lmech.models.small_cnn` with ``C`` channels); the last module is the classifier."""
    kind, _, shape = architecture.partition("-")
    if kind == "mlp":
        width, depth = (int(v) for v in shape.split("x"))
        return mlp(64, [width] * depth, 10, activation="relu", seed=seed)
    return small_cnn(int(shape), seed=seed)


@dataclass(frozen=True, kw_only=True)
class RepresentationConvergenceConfig:
    """The population experiment.

    Attributes:
        architectures: names ``mlp-WxD`` or ``cnn-C``.
        budgets: Adam steps per model (each architecture × budget × seed is one model).
        seeds: seeds per (architecture, budget).
        k: neighbours for mutual kNN.
        n_train: training images (the rest, 1,797 − n_train, are the held-out images compared).
        lr, batch_size: Adam's learning rate and batch.
        permutations: shuffles per comparison in the permutation null (pairs drawn at random).
        seed: the first seed; also seeds the split and the null.
    """

    architectures: tuple[str, ...] = ARCHITECTURES
    budgets: tuple[int, ...] = (20, 400)
    seeds: int = 2
    k: int = 10
    n_train: int = 1200
    lr: float = 1e-3
    batch_size: int = 64
    permutations: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name in self.architectures:
            kind, _, shape = name.partition("-")
            ok = (kind == "mlp" and len(shape.split("x")) == 2 and all(v.isdigit() and int(v) > 0 for v in shape.split("x"))) \
                or (kind == "cnn" and shape.isdigit() and int(shape) > 0)
            require(ok, f"architecture {name!r} must be 'mlp-WxD' (e.g. mlp-64x2) or 'cnn-C' (e.g. cnn-8)")
        require(len(self.budgets) >= 1 and all(isinstance(b, int) and b >= 1 for b in self.budgets),
                f"budgets must be step counts >= 1, got {self.budgets}")
        require(isinstance(self.seeds, int) and self.seeds >= 1, f"seeds must be an integer >= 1, got {self.seeds!r}")
        models = len(self.architectures) * len(self.budgets) * self.seeds
        require(models >= 12, f"the population needs at least 12 models, got {models} "
                              "(architectures × budgets × seeds); add seeds or budgets")
        require(isinstance(self.n_train, int) and 100 <= self.n_train <= NUM_EXAMPLES - 100,
                f"n_train must leave at least 100 held-out images: an integer in 100..{NUM_EXAMPLES - 100}, "
                f"got {self.n_train!r}")
        require(isinstance(self.k, int) and 1 <= self.k < (NUM_EXAMPLES - self.n_train) // 2,
                f"k must be an integer in 1..{(NUM_EXAMPLES - self.n_train) // 2 - 1}, got {self.k!r}")
        finite_positive("lr", self.lr)
        require(isinstance(self.batch_size, int) and self.batch_size >= 1,
                f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        require(isinstance(self.permutations, int) and self.permutations >= 100,
                f"permutations must be an integer >= 100 (for a 99th percentile), got {self.permutations!r}")
        valid_seed(self.seed)


@dataclass(frozen=True)
class Member:
    architecture: str
    budget: int
    seed: int
    accuracy: float
    representation: Tensor


def train_member(architecture: str, budget: int, seed: int, train, test, *, lr: float, batch_size: int) -> Member:
    """Train one model with Adam on minibatches drawn with replacement; its held-out accuracy and penultimate
    representation of the held-out images."""
    model = build(architecture, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(budget):
        idx = torch.randint(0, len(train.inputs), (batch_size,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(train.inputs[idx]), train.labels[idx]).backward()
        opt.step()
    with torch.no_grad():
        accuracy = float((model(test.inputs).argmax(1) == test.labels).double().mean())
        representation = model[:-1](test.inputs)
    return Member(architecture, budget, seed, accuracy, representation)


def within_architecture_spearman(members, accuracy: np.ndarray, alignment: np.ndarray) -> float:
    """Spearman's ρ after removing each architecture's mean from both variables: does a model that is more
    accurate than others *of its own architecture* also align more? (Controls for architecture, which moves
    both accuracy and alignment.)"""
    arch = np.array([m.architecture for m in members])
    acc, ali = accuracy.astype(float).copy(), alignment.astype(float).copy()
    for name in np.unique(arch):
        pick = arch == name
        acc[pick] -= acc[pick].mean()
        ali[pick] -= ali[pick].mean()
    return float(spearmanr(acc, ali).statistic)


@register
class RepresentationConvergence(Law):
    name = "representation-convergence"
    title = "Representation convergence: networks agree on the data, more so the better they are"
    pillar = "universality"
    references = (
        Reference("Huh, Cheung, Wang, Isola. The Platonic Representation Hypothesis. ICML 2024", "2405.07987"),
        Reference("Kornblith, Norouzi, Lee, Hinton. Similarity of Neural Network Representations Revisited. "
                  "ICML 2019", "1905.00414"),
        Reference("Simon, Kunin et al. There Will Be a Scientific Theory of Deep Learning. 2026", "2604.21691"),
    )
    statement = ("Networks of different architectures trained on the same data have aligned representations: "
                 "their mutual k-nearest neighbours agree far above chance, and a model's alignment with the "
                 "others grows with its accuracy (Spearman ρ ≥ 0.5).")
    Config = RepresentationConvergenceConfig
    presets = {"quick": {}, "full": dict(seeds=3, budgets=(20, 100, 400, 1600))}

    def run(self, config: RepresentationConvergenceConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train, test = load_digits(config.n_train, seed=config.seed, dtype=torch.float32)
        plan = list(itertools.product(config.architectures, config.budgets,
                                      [config.seed + s for s in range(config.seeds)]))
        progress.task(f"{self.name}: training {len(plan)} models", len(plan))
        members = []
        for architecture, budget, seed in plan:
            members.append(train_member(architecture, budget, seed, train, test, lr=config.lr,
                                        batch_size=config.batch_size))
            progress.advance()
        n, k = len(members), config.k
        progress.task(f"{self.name}: {n * (n - 1) // 2} comparisons", n * (n - 1) // 2 + config.permutations)
        knn, cka = np.eye(n), np.eye(n)
        for i, j in itertools.combinations(range(n), 2):
            a, b = members[i].representation, members[j].representation
            knn[i, j] = knn[j, i] = mutual_knn(a, b, k)
            cka[i, j] = cka[j, i] = linear_cka(a, b)
            progress.advance()
        rng = np.random.default_rng(config.seed)
        null = []
        for _ in range(config.permutations):
            i, j = rng.choice(n, size=2, replace=False)
            shuffled = members[j].representation[torch.from_numpy(rng.permutation(len(test.inputs)))]
            null.append(mutual_knn(members[i].representation, shuffled, k))
            progress.advance()
        mean_knn = (knn.sum(1) - 1) / (n - 1)
        mean_cka = (cka.sum(1) - 1) / (n - 1)
        accuracy = np.array([m.accuracy for m in members])
        baseline = k / (len(test.inputs) - 1)
        population = float(mean_knn.mean())
        rho = float(spearmanr(accuracy, mean_knn).statistic)
        rho_cka = float(spearmanr(accuracy, mean_cka).statistic)
        rho_within = within_architecture_spearman(members, accuracy, mean_knn)
        pixels = np.array([mutual_knn(m.representation, test.inputs, k) for m in members])
        checks = [
            Check.at_least(f"mean mutual-kNN alignment (k = {k}) over {n} models, in multiples of the random "
                           f"baseline k/(n−1) = {baseline:.4f}", population / baseline, BASELINE_FACTOR),
            Check.at_least(f"mean alignment above the permutation null's {NULL_QUANTILE:g}th percentile "
                           f"({config.permutations} shuffles): alignment − percentile",
                           population - float(np.percentile(null, NULL_QUANTILE)), 0.0),
            Check.at_least("Spearman ρ between held-out accuracy and mean mutual-kNN alignment", rho, SPEARMAN_MIN),
            Check.at_least("the same ρ within architectures (each architecture's means removed)", rho_within,
                           SPEARMAN_MIN),
        ]
        records = Records()
        for i, m in enumerate(members):
            index = {"architecture": m.architecture, "budget": m.budget, "seed": m.seed}
            records.add(i, "test_accuracy", m.accuracy, **index)
            records.add(i, "mean_mutual_knn", float(mean_knn[i]), **index)
            records.add(i, "mean_linear_cka", float(mean_cka[i]), **index)
            records.add(i, "mutual_knn_to_pixels", float(pixels[i]), **index)
        summary = {
            "models": float(n), "mean mutual-kNN alignment": population, "random baseline k/(n−1)": baseline,
            "permutation null, mean": float(np.mean(null)),
            f"permutation null, {NULL_QUANTILE:g}th percentile": float(np.percentile(null, NULL_QUANTILE)),
            "Spearman ρ (accuracy, mutual kNN)": rho, "Spearman ρ (accuracy, linear CKA)": rho_cka,
            "Spearman ρ within architectures (accuracy, mutual kNN)": rho_within,
            "mean linear CKA": float(mean_cka.mean()), "mean mutual-kNN alignment with the raw pixels": float(pixels.mean()),
            "Spearman ρ (accuracy, mutual kNN with the raw pixels)": float(spearmanr(accuracy, pixels).statistic),
            "held-out accuracy, min": float(accuracy.min()), "held-out accuracy, max": float(accuracy.max()),
        }
        curves = pa.table({"curve": ["random baseline"], "x": [0.0], "y": [baseline]})
        figure = alignment_figure(members, mean_knn, mean_cka, baseline, null, rho, rho_cka)
        return LawResult(records, curves, checks, {"representation_convergence": figure}, summary)
