"""Law ``deep-linear-modes``: deep linear networks learn the task's singular modes one at a time.

Saxe, McClelland & Ganguli 2014 (arXiv:1312.6120, eqs. (6)–(9)): with whitened inputs, a linear
network ``W = W_L ⋯ W_1`` trained by gradient flow from a small, balanced and aligned start learns
each singular mode ``s_μ u_μ v_μᵀ`` of the input–output map along its own sigmoid, larger ``s`` first,
so the loss falls in a staircase; Arora, Cohen & Hazan 2018 (arXiv:1802.06509, Theorem 1) and Kunin
et al. 2024 (arXiv:2406.06158, §3) rest this on the balancedness ``W_{l+1}ᵀW_{l+1} − W_l W_lᵀ`` that
gradient flow conserves. The curves are :mod:`lmech.theory.deep_linear`'s.

From a *random* small start the theory still applies once each mode has aligned, with an effective
initial strength computed from the initial weights (:func:`lmech.theory.effective_init_strength`): at depth 2 the
linearised dynamics grow ``c_μ = (W_1 v_μ + W_2ᵀ u_μ)/2`` as ``e^{s_μ t}`` and the network aligns
before the mode is learned (silent alignment: Atanasov, Bordelon & Pehlevan 2021, arXiv:2111.00034),
so ``a₀ = |c_μ|²``; at depth ``L ≥ 3`` there is no linear phase, and the effective strength is that of
the balanced network whose small-weight (saturation-free) dynamics blow up at the same time as the
mode's own. Those live exactly in a two-dimensional subspace of every hidden layer when the
hidden-to-hidden layers are scaled random orthogonal matrices (the random orthogonal initial
conditions of Saxe et al. 2014, who also show that scaled Gaussian ones behave differently).

Checks, for each depth: (a) aligned start: ``max_{t,μ} |a_μ(t) − a_μ^pred(t)| ≤ 2 %`` of ``max s`` over
every recorded time; (b) random start: the time each mode first reaches half its final strength
``s_μ/2`` (interpolated between records) is within 10 % of :func:`mode_learning_times` at the effective
``a₀``, and the modes get there in decreasing order of ``s``; (c) random start: the balancedness
``D_l = W_{l+1}ᵀW_{l+1} − W_l W_lᵀ`` changes by at most ``1e-2 ‖D_l(0)‖_F`` (GD breaks this conservation
law of gradient flow at O(lr); from the balanced, aligned start of (a) every layer's gradient is itself
balanced and GD keeps ``D_l = 0`` to rounding, so there it is reported, not checked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from ..config import finite_positive, require, valid_seed
from ..progress import NO_PROGRESS, Progress
from ..theory.deep_linear import effective_init_strength, mode_learning_times, mode_trajectories, staircase_loss
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_deep_linear import deep_linear_modes_figure
from .registry import register

TRAJECTORY_TOL = 0.02  # (a) max |a_measured − a_predicted| over modes and recorded times, ÷ max s
LEARNING_TIME_REL_TOL = 0.10  # (b) time to reach s_μ/2 from a random start, relative to the prediction
BALANCEDNESS_TOL = 1e-2  # (c) max change of D_l = W_{l+1}ᵀW_{l+1} − W_l W_lᵀ ÷ ‖D_l(0)‖_F (random start)
INITS = ("aligned", "random")
FINAL_FRACTION = 0.99  # training runs to `horizon` × the time the weakest aligned mode reaches 99%
CURVE_POINTS = 400  # points of each predicted curve
BALANCED = 1e-12  # ‖D_l(0)‖_F below this × ‖W_l W_lᵀ‖_F: a balanced start, drift measured against the final size


@dataclass(frozen=True, kw_only=True)
class DeepLinearModesConfig:
    """The deep linear network experiment.

    Attributes:
        singular_values: the planted ``s_μ`` of the teacher ``M = U diag(s) Vᵀ``, strictly decreasing.
        in_features, out_features: input and output dimension (at least the number of modes; the
            extra directions carry no signal).
        n_samples: training inputs, Gaussian then exactly whitened (``XᵀX/n = I``), so the empirical
            loss ``½ mean_n ‖y − W x‖²`` with ``y = M x`` is the population loss of the theory.
        width: the hidden width ``h`` of every hidden layer (at least the number of modes).
        depths: the numbers of weight matrices ``L ≥ 2`` to train.
        init_strength: ``a₀``, the product's initial strength per mode; every layer starts at strength
            ``w = a₀^{1/L}``. Aligned start: ``W_1 = w R_1 Vᵀ``, ``W_l = w R_l R_{l-1}ᵀ``,
            ``W_L = w U R_{L-1}ᵀ`` (``R_l`` random orthonormal columns), balanced. Random start: the
            first and last layers i.i.d. ``N(0, 2w²/h)`` (so ``E|c_μ|² = w²``), hidden-to-hidden layers
            ``w`` times a random orthogonal matrix.
        lr: the GD step; time is ``t = lr × step`` (small, so that GD tracks gradient flow).
        horizon: train to this multiple of the predicted time at which the weakest mode of the
            aligned start reaches 99 % of its ``s``.
        record_every: steps between recorded mode strengths, losses and balancedness.
        seed: seeds the teacher, the inputs and both initialisations.
    """

    singular_values: tuple[float, ...] = (4.0, 2.5, 1.6, 1.0)
    in_features: int = 6
    out_features: int = 5
    n_samples: int = 64
    width: int = 128
    depths: tuple[int, ...] = (2, 3)
    init_strength: float = 1e-3
    lr: float = 5e-4
    horizon: float = 1.2
    record_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        s = self.singular_values
        require(len(s) >= 1, "singular_values must name at least one mode, e.g. singular_values=4,2.5,1.6,1")
        for value in s:
            finite_positive("each singular value", value)
        require(all(a > b for a, b in zip(s, s[1:])), f"singular_values must be strictly decreasing, got {s}")
        modes = len(s)
        require(self.in_features >= modes, f"in_features must be >= the number of modes ({modes}), got {self.in_features}")
        require(self.out_features >= modes,
                f"out_features must be >= the number of modes ({modes}), got {self.out_features}")
        require(self.n_samples >= self.in_features,
                f"n_samples must be >= in_features ({self.in_features}) to whiten the inputs, got {self.n_samples}")
        require(self.width >= modes, f"width must be >= the number of modes ({modes}), got {self.width}")
        require(len(self.depths) >= 1, "depths must name at least one depth, e.g. depths=2,3")
        for depth in self.depths:
            require(isinstance(depth, int) and depth >= 2, f"each depth must be an integer >= 2, got {depth!r}")
        require(len(set(self.depths)) == len(self.depths), f"depths must be distinct, got {self.depths}")
        finite_positive("init_strength", self.init_strength)
        require(self.init_strength < 0.5 * min(s),
                f"init_strength must be < half the smallest singular value ({0.5 * min(s):g}): the theory "
                f"starts small, got {self.init_strength}")
        finite_positive("lr", self.lr)
        require(self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}")
        require(self.record_every >= 1, f"record_every must be >= 1, got {self.record_every}")
        valid_seed(self.seed)


def _orthonormal(rows: int, cols: int, gen: torch.Generator) -> np.ndarray:
    """A random matrix with orthonormal columns (Haar, by QR with the signs fixed), shape (rows, cols)."""
    q, r = np.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=torch.float64).numpy())
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class Task:
    """The teacher ``M = U diag(s) Vᵀ`` and whitened data ``(X, Y = X Mᵀ)``."""

    s: np.ndarray  # (M,)
    u: np.ndarray  # (out_features, M), orthonormal columns
    v: np.ndarray  # (in_features, M), orthonormal columns
    inputs: torch.Tensor  # (n_samples, in_features), XᵀX/n = I
    targets: torch.Tensor  # (n_samples, out_features)


def make_task(config: DeepLinearModesConfig, gen: torch.Generator) -> Task:
    s = np.asarray(config.singular_values, dtype=float)
    u = _orthonormal(config.out_features, len(s), gen)
    v = _orthonormal(config.in_features, len(s), gen)
    x = np.sqrt(config.n_samples) * _orthonormal(config.n_samples, config.in_features, gen)
    teacher = u @ np.diag(s) @ v.T
    return Task(s, u, v, torch.from_numpy(x), torch.from_numpy(x @ teacher.T))


def aligned_init(task: Task, width: int, depth: int, strength: float, gen: torch.Generator) -> list[np.ndarray]:
    """Balanced layers whose product is ``strength · U Vᵀ``: ``W_1 = w R_1 Vᵀ``, ``W_l = w R_l R_{l-1}ᵀ``,
    ``W_L = w U R_{L-1}ᵀ`` with ``w = strength^{1/L}`` and random orthonormal ``R_l`` of shape (h, M)."""
    w = strength ** (1.0 / depth)
    frames = [task.v] + [_orthonormal(width, len(task.s), gen) for _ in range(depth - 1)] + [task.u]
    return [w * frames[i + 1] @ frames[i].T for i in range(depth)]


def random_init(task: Task, width: int, depth: int, strength: float, gen: torch.Generator) -> list[np.ndarray]:
    """First and last layers i.i.d. ``N(0, 2w²/h)``, hidden-to-hidden layers ``w`` × random orthogonal."""
    w = strength ** (1.0 / depth)
    sigma = w * np.sqrt(2.0 / width)
    d_in, d_out = task.v.shape[0], task.u.shape[0]
    first = sigma * torch.randn(width, d_in, generator=gen, dtype=torch.float64).numpy()
    middle = [w * _orthonormal(width, width, gen) for _ in range(depth - 2)]
    last = sigma * torch.randn(d_out, width, generator=gen, dtype=torch.float64).numpy()
    return [first, *middle, last]


@dataclass
class Run:
    """What one training run recorded: steps and times ``lr × step`` (T,), mode strengths (T, M),
    losses (T,), balancedness drift (T, L−1), and the step at which the loss became non-finite."""

    steps: np.ndarray
    times: np.ndarray
    strengths: np.ndarray
    loss: np.ndarray
    drift: np.ndarray
    diverged_at: int | None

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None


def linear_network_gradients(layers: list[torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The loss ``½ mean_n ‖y_n − W_L⋯W_1 x_n‖²``, the product ``W = W_L⋯W_1`` and the gradients
    ``∂L/∂W_l = (W_L⋯W_{l+1})ᵀ E (W_{l-1}⋯W_1)ᵀ`` with ``E = (W X − Y)ᵀ X / n`` (by hand: five times
    faster than autograd on matrices this small).

    Args:
        layers: ``[W_1, …, W_L]``, of shapes (h, in_features), …, (out_features, h).
        inputs, targets: of shapes (n, in_features) and (n, out_features).
    """
    below = [None]  # below[l] = W_{l-1}⋯W_1 (None for the identity)
    for w in layers[:-1]:
        below.append(w if below[-1] is None else w @ below[-1])
    product = layers[-1] if below[-1] is None else layers[-1] @ below[-1]
    residual = inputs @ product.T - targets
    loss = 0.5 * (residual * residual).sum() / len(inputs)
    error = residual.T @ inputs / len(inputs)
    grads, above = [], None  # above = W_L⋯W_{l+1}
    for w, lower in zip(reversed(layers), reversed(below)):
        left = error if above is None else above.T @ error
        grads.append(left if lower is None else left @ lower.T)
        above = w if above is None else above @ w
    return loss, product, grads[::-1]


def train_deep_linear(layers: list[np.ndarray], task: Task, lr: float, steps: int, record_every: int,
                      progress: Progress = NO_PROGRESS) -> Run:
    """Full-batch GD on ``½ mean_n ‖y − W_L⋯W_1 x‖²`` (float64), recording every ``record_every`` steps
    and at the last.

    The balancedness drift of layer pair ``l`` is ``‖D_l(t) − D_l(0)‖_F`` with
    ``D_l = W_{l+1}ᵀW_{l+1} − W_l W_lᵀ``, relative to ``‖D_l(0)‖_F``; where the start is balanced
    (``‖D_l(0)‖_F`` below ``1e-12`` of the layers' own ``‖W_l W_lᵀ‖_F``) it is relative to the size the
    terms reach, ``½(‖W_{l+1}ᵀW_{l+1}‖_F + ‖W_l W_lᵀ‖_F)`` at the end of training.
    """
    params = [torch.tensor(w) for w in layers]
    layers_at_start = [w.clone() for w in params[:-1]]
    u, v = torch.from_numpy(task.u), torch.from_numpy(task.v)

    def gram_pairs() -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(b.T @ b, a @ a.T) for a, b in zip(params, params[1:])]

    d0 = [upper - lower for upper, lower in gram_pairs()]
    recorded, strengths, losses, changes = [], [], [], []
    diverged_at = None
    for step in range(steps + 1):
        loss, product, grads = linear_network_gradients(params, task.inputs, task.targets)
        if not torch.isfinite(loss):
            diverged_at = step
            break
        if step % record_every == 0 or step == steps:
            progress.advance(step - (recorded[-1] if recorded else 0))
            recorded.append(step)
            strengths.append(torch.einsum("om,oi,im->m", u, product, v).numpy().copy())
            losses.append(float(loss))
            changes.append([float(torch.linalg.norm(up - lo - d)) for (up, lo), d in zip(gram_pairs(), d0)])
        if step == steps:
            break
        for w, g in zip(params, grads):
            w.sub_(g, alpha=lr)
    final = [0.5 * float(torch.linalg.norm(up) + torch.linalg.norm(lo)) for up, lo in gram_pairs()]
    scale = [float(torch.linalg.norm(d)) if torch.linalg.norm(d) > BALANCED * torch.linalg.norm(w @ w.T) else f
             for d, w, f in zip(d0, layers_at_start, final)]
    drift = np.asarray(changes, dtype=float).reshape(len(changes), len(scale))
    drift = drift / np.asarray(scale) if np.all(np.isfinite(scale)) and diverged_at is None else np.full_like(drift, np.nan)
    steps_at = np.asarray(recorded, dtype=np.int64)
    return Run(steps_at, lr * steps_at, np.asarray(strengths).reshape(len(recorded), -1), np.asarray(losses),
               drift, diverged_at)


def first_crossings(times: np.ndarray, values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The first time each column of ``values`` (T, K) reaches its ``levels[k]``, linearly interpolated between
    records; ``times[0]`` if already there, ``nan`` if never."""
    out = np.full(values.shape[1], np.nan)
    for m, level in enumerate(np.broadcast_to(levels, values.shape[1])):
        hits = np.flatnonzero(values[:, m] >= level)
        if len(hits) and hits[0] > 0:
            k = hits[0]
            out[m] = np.interp(level, values[k - 1: k + 1, m], times[k - 1: k + 1])
        elif len(hits):
            out[m] = times[0]
    return out


def half_times(times: np.ndarray, strengths: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The first time each mode reaches ``s_μ/2``, linearly interpolated between records; ``nan`` if never."""
    return first_crossings(times, strengths, 0.5 * np.asarray(s))


def _prediction(s: np.ndarray, times: np.ndarray, depth: int, a0: np.ndarray) -> np.ndarray:
    """``mode_trajectories``, or all-``nan`` where the effective start is outside the theory's range."""
    if not (np.all(np.isfinite(a0)) and np.all(a0 > 0) and np.all(a0 < s)):
        return np.full((len(times), len(s)), np.nan)
    return mode_trajectories(s, times, depth=depth, init_strength=a0)


@register
class DeepLinearModes(Law):
    name = "deep-linear-modes"
    title = "Deep linear networks learn singular modes one at a time"
    pillar = "solvable-settings"
    references = (
        Reference("Saxe, McClelland, Ganguli. Exact solutions to the nonlinear dynamics of learning in deep "
                  "linear neural networks. ICLR 2014", "1312.6120"),
        Reference("Arora, Cohen, Hazan. On the Optimization of Deep Networks: Implicit Acceleration by "
                  "Overparameterization. ICML 2018", "1802.06509"),
        Reference("Kunin, Raventós, Dominé, Chen, Klindt, Saxe, Ganguli. Get rich quick: exact solutions reveal "
                  "how unbalanced initializations promote rapid feature learning. NeurIPS 2024", "2406.06158"),
        Reference("Atanasov, Bordelon, Pehlevan. Neural Networks as Kernel Learners: The Silent Alignment "
                  "Effect. ICLR 2022", "2111.00034"),
    )
    statement = ("Trained by gradient flow on whitened inputs from a small start, a deep linear network learns "
                 "each singular mode s_μ of the task along the sigmoid a_μ(t) solving da/dt = L a^{2−2/L}(s_μ − a), "
                 "larger s_μ first, so the loss falls in a staircase; the balancedness W_{l+1}ᵀW_{l+1} − W_l W_lᵀ "
                 "is conserved.")
    Config = DeepLinearModesConfig
    presets = {
        "quick": dict(init_strength=1e-2, lr=7.5e-4, record_every=40),
        "full": dict(singular_values=(4.0, 3.0, 2.2, 1.6, 1.2, 0.8), in_features=8, out_features=8, width=256,
                     depths=(2, 3, 4), record_every=100),
    }

    def run(self, config: DeepLinearModesConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        gen = torch.Generator().manual_seed(config.seed)
        task = make_task(config, gen)
        records, curves, checks, summary = Records(), [], [], {}
        for depth in config.depths:
            t_final = mode_learning_times(task.s[-1:], depth=depth, init_strength=config.init_strength,
                                          fraction=FINAL_FRACTION)[0]
            steps = int(np.ceil(config.horizon * t_final / config.lr))
            for init in INITS:
                checks += self._run_one(config, task, depth, init, steps, gen, records, curves, summary, progress)
        table = pa.Table.from_pylist(curves)
        figure = deep_linear_modes_figure(records, table, config)
        return LawResult(records, table, checks, {"deep_linear_modes": figure}, summary)

    def _run_one(self, config, task, depth, init, steps, gen, records, curves, summary, progress) -> list[Check]:
        """Train one (depth, start), record it, and return its checks: (a) for the aligned start,
        (b) and (c) for the random one."""
        s = task.s
        if init == "aligned":
            layers = aligned_init(task, config.width, depth, config.init_strength, gen)
            a0 = np.full(len(s), config.init_strength)
        else:
            layers = random_init(task, config.width, depth, config.init_strength, gen)
            a0 = effective_init_strength(layers, task.u, task.v, config.init_strength ** (1.0 / depth))
        progress.task(f"{self.name}: GD, depth {depth}, {init} start", steps)
        run = train_deep_linear(layers, task, config.lr, steps, config.record_every, progress)
        index = {"depth": depth, "init": init}
        self._record(records, run, s, a0, index)
        curves += self._curves(s, np.linspace(0.0, steps * config.lr, CURVE_POINTS), depth, a0, index)

        predicted = _prediction(s, run.times, depth, a0)
        finite = not run.diverged and bool(np.all(np.isfinite(predicted)))
        deviation = float(np.max(np.abs(run.strengths - predicted)) / s.max()) if finite else float("nan")
        drift = float(np.max(run.drift)) if run.drift.size and not run.diverged else float("nan")
        summary[f"L={depth} {init}: max |a − a_pred| ÷ max s"] = deviation
        summary[f"L={depth} {init}: balancedness drift"] = drift
        final = float(np.min(run.strengths[-1] / s)) if len(run.steps) else float("nan")
        summary[f"L={depth} {init}: min final a_μ ÷ s_μ"] = final  # (b)'s "final strength" is s_μ
        if init == "aligned":  # (c) is reported, not checked: GD keeps D_l = 0 here whatever the step
            return [Check.at_most(f"L={depth} aligned: trajectories, max_t,μ |a_μ − a_μ^pred| ÷ max s",
                                  deviation, TRAJECTORY_TOL)]
        checks = self._learning_time_checks(depth, run, a0, s, summary)
        checks.append(Check.at_most(f"L={depth} random: balancedness conserved, max_t,l ‖D_l(t) − D_l(0)‖_F ÷ ‖D_l(0)‖_F",
                                    drift, BALANCEDNESS_TOL))
        return checks

    @staticmethod
    def _record(records: Records, run: Run, s: np.ndarray, a0: np.ndarray, index: dict) -> None:
        for m in range(len(s)):
            records.add(0, "effective_init_strength", a0[m], **index, mode=m, s=float(s[m]))
        for k, step in enumerate(run.steps):
            for m, value in enumerate(run.strengths[k]):
                records.add(step, "mode_strength", value, **index, mode=m, s=float(s[m]))
            records.add(step, "loss", run.loss[k], **index)
            for layer, value in enumerate(run.drift[k]):
                records.add(step, "balancedness_drift", value, **index, layer=layer + 1)
        if run.diverged:
            records.add(run.diverged_at, "diverged", 1.0, **index)

    @staticmethod
    def _curves(s: np.ndarray, grid: np.ndarray, depth: int, a0: np.ndarray, index: dict) -> list[dict]:
        predicted = _prediction(s, grid, depth, a0)
        rows = [{"curve": "mode_strength", "x": float(t), "y": float(a), **index, "mode": m, "s": float(s[m])}
                for m in range(len(s)) for t, a in zip(grid, predicted[:, m])]
        if np.all(np.isfinite(predicted)):
            loss = staircase_loss(s, predicted, total_output_variance=float(np.sum(s**2)))
            rows += [{"curve": "loss", "x": float(t), "y": float(v), **index, "mode": None, "s": None}
                     for t, v in zip(grid, loss)]
        return rows

    @staticmethod
    def _learning_time_checks(depth: int, run: Run, a0: np.ndarray, s: np.ndarray, summary: dict) -> list[Check]:
        measured = half_times(run.times, run.strengths, s) if not run.diverged else np.full(len(s), np.nan)
        valid = np.all(np.isfinite(a0)) and np.all(a0 > 0) and np.all(a0 < 0.5 * s)
        predicted = mode_learning_times(s, depth=depth, init_strength=a0) if valid else np.full(len(s), np.nan)
        checks = [Check.within(f"L={depth} random: mode {m} (s={s[m]:g}) reaches s/2 at t", measured[m], predicted[m],
                               LEARNING_TIME_REL_TOL) for m in range(len(s))]
        ratios = measured[1:] / measured[:-1]
        order = float(np.min(ratios)) if len(s) > 1 and np.all(np.isfinite(ratios)) else float("nan")
        if len(s) > 1:
            checks.append(Check.at_least(f"L={depth} random: learned in decreasing order of s, min t_(μ+1)/t_μ",
                                         order, 1.0))
        summary[f"L={depth} random: max |t_half ÷ t_half_pred − 1|"] = float(np.max(np.abs(measured / predicted - 1)))
        return checks
