"""Law ``mup-lr-transfer``: under muP the best learning rate stays put as the network widens; under SP it moves.

Theory. Adam's update has entries of size about ``η`` whatever the gradient's scale, so a layer whose fan-in
grows with the width ``n`` changes its outputs by about ``η n`` per step once its update aligns with its input
(Yang et al. 2022, *Tensor Programs V*, arXiv:2203.03466, §5 and Table 3; Everett et al. 2024, arXiv:2407.05872).
In the standard parametrisation (SP) with one global learning rate the hidden and readout layers' updates
therefore grow ``∝ η n``, and the largest useful ``η`` shrinks ``∝ 1/n``: the optimum moves *down*, by up to one
factor of 2 per doubling of the width. muP scales those layers' Adam rates by ``1/m`` and ``m^{-1/2}``
(``m = n / base width``; :mod:`lmech.models.parametrization`, exponents ``c_adam``) together with its
multipliers, so every layer's feature update stays ``Θ(1)`` as ``n → ∞``: training converges to a
width-independent limit, the optimal base learning rate transfers across widths, and at a fixed number of steps
a wider network, being closer to that limit, trains at least as well ("wider is better"; TP V §1, Figures 1
and 3). The claim is about the *training* loss at a fixed budget, so that is what the law measures and checks;
the held-out loss is recorded beside it.

Setting. The scikit-learn digits (1,500 training images of 1,797, standardised per pixel; 297 held out), an MLP
``64 → n → n → 10`` with ReLU and cross-entropy, widths ``n = 64, 128, 256, 512, 1,024`` (16×) with base width 64,
where SP and muP coincide. Adam (``torch.optim.Adam``'s ``β = (0.9, 0.999)``, ``ε = 10⁻⁸``) with the per-layer
rates of :func:`lmech.models.param_groups` at a constant learning rate, for a fixed 100 steps of minibatches of 32
(about two epochs). The budget is short on purpose: the loss at the optimum is still about 0.03, where the
tuning curve has a clear minimum; after 300-400 steps the loss nears 10⁻³, the curve flattens and seed noise
picks the argmin. The rate is constant because decaying it (``schedule="linear"``) flattens muP's curve above
the optimum (measured: within 10 % over a factor 4 of ``η``), which locates the optimum worse than the loss
spikes of a constant rate blur the loss at it. The base learning rate ``η`` runs over a log₂ grid ``2⁻¹³ … 2⁻⁴``
whose spacing, a factor of 2, is one *grid step*. Every (seed, learning rate) of one width and parametrisation
trains at once, stacked (:class:`LrSweepMLP`); a seed fixes the initialisation and the batch order, which all
learning rates, widths and both parametrisations of that seed share. The observable is the final training loss
on all 1,500 training images, averaged over 4 seeds; a learning rate where any seed's loss is non-finite counts
as ``+∞``.

Optimum. :func:`parabola_optimum` fits a parabola to ``log loss`` against ``log₂ η`` through the grid minimum and
its two neighbours (log loss because the tuning curve spans orders of magnitude and is nearer a parabola in it;
the vertex lies within half a step of the grid minimum). A minimum on the grid's edge or beside a diverged
learning rate is not located, and fails the checks that use it. The *loss at the optimum* is the best grid
point's seed-mean loss, and its standard error ``se`` the seeds' standard deviation there over ``√seeds``.

Checks (the issue's, in grid steps of a factor 2): under muP ``|log₂ η*(n) − log₂ η*(64)| ≤ 1`` step for every
width; the loss at the optimum is lower at width 1,024 than at 64, and rises from no width to the next by more
than ``2 √(se₁² + se₂²)`` (the gain per doubling, measured 2-12 % one grid step below the optimum, is smaller
than the seed noise at the optimum, a standard deviation of 15-50 % of the loss, so the rule asks for no
*significant* reversal rather than a drop at every step); under SP the optimum moves *down* by at least 2 steps
from width 64 to 1,024 (the theory's ``η* ∝ 1/n`` would give 4).

Transformer (``full`` only; ``transformer=True``). A decoder-only :class:`lmech.models.Transformer` models the
digits autoregressively: each 8×8 image is a sequence of its 64 pixels in row-major order, tokens ``0..16`` (the raw
pixel values, vocabulary 17), and the model predicts pixels 2..64 from the ones before them (next-token
cross-entropy, 63 predictions per image). Same split (1,500 training images, 297 held out), 2 pre-LN blocks, GELU,
``d_mlp = 4 d_model``, widths ``d_model = 16, 64, 256`` (16×) with base width 16; ``n_heads = 4`` is fixed, so
``d_head = d_model/4`` grows (4 → 64) and muP's attention logit scale ``1/d_head`` (relative to the base model;
:func:`lmech.models.parametrize`) applies. Adam as above on :func:`lmech.models.param_groups`' per-role rates, the
MLP's ``schedule`` (constant), a fixed 100 steps of 16 images (about one epoch), the grid ``2⁻¹¹ … 2⁻⁴``, 2 seeds (a
seed fixes the initialisation and the batch order). The observable is the final loss on a fixed 256 of the training
images (the held-out loss, on 256 held-out images, beside it); the optimum and the four checks are the MLP's, named
``transformer: …``. At the base width SP and muP are the same model, so muP reuses SP's runs there. Measured (one
thread, ``seed=0``): SP's optimum ``log₂ η* = −5.30, −7.32, −9.83`` at ``d_model = 16, 64, 256`` (down 4.5 grid
steps, slope −1.13 against ``log₂ d_model``; the theory's ``1/n`` gives 4), muP's ``−5.30, −5.21, −5.26`` (within
0.09 of a step); muP's loss at the optimum ``1.605, 1.530, 1.518`` nats per pixel (standard errors ≤ 0.004), the
held-out loss alike (``1.610, 1.533, 1.526``), below the 1.70 nats of each pixel's own marginal distribution (2.09
for one marginal over all pixels), so the models use the pixels before the one they predict. Seconds per training
step on one thread (16 images): about 0.03 at ``d_model`` 16, 0.05 at 64, 0.1 at 128, 0.25 at 256 and 1.1 at 512,
which is why the sweep stops at 256; it takes about 20 minutes.

Presets: ``quick`` three widths 64, 256, 1,024 with 3 seeds and the grid ``2⁻¹³ … 2⁻⁵`` (about 45 s on one
thread); the default about 90 s; ``full`` 6 seeds for the MLP plus the transformer sweep, about 22 minutes on one
thread (the MLP part about 130 s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import one_of, require, valid_seed
from ..data.digits import load_digits
from ..models import Transformer, mlp, param_groups, parametrize
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records
from ..train.stacked import StackedMLP
from .base import Check, Law, LawResult, Reference
from .plots_mup import TransferRow, lr_transfer_figure
from .registry import register

NUM_TRAIN = 1500
NUM_TEST = 1797 - NUM_TRAIN
PIXEL_LEVELS = 17  # the digits' pixels are integers 0..16: the transformer's vocabulary
PARAMETRIZATIONS = ("sp", "mup")
ACTIVATIONS = ("relu", "tanh")
SCHEDULES = ("linear", "constant")
MUP_TOLERANCE = 1.0  # grid steps the muP optimum may move
SP_MIN_SHIFT = 2.0  # grid steps the SP optimum must move down
RISE_TOLERANCE = 2.0  # standard errors the loss at the optimum may rise by from one width to the next


@dataclass(frozen=True, kw_only=True)
class MupLrTransferConfig:
    """The learning-rate transfer experiment.

    Attributes:
        widths: hidden widths ``n``, ascending (the issue asks for a span of at least 16×); the first is the
            reference the optimum's movement is measured from.
        base_width: the width at which muP equals SP (usually the first of ``widths``).
        log2_lr_range: ``(lowest, highest)`` exponent of the base learning rate grid ``2^k``.
        grid_step: spacing of the grid in ``log₂ η`` (1 = factors of 2); the checks count in these steps.
        steps: Adam steps of every run (a fixed budget).
        schedule: ``"linear"`` (the rate decays linearly to 0 over the budget) or ``"constant"``.
        batch_size: examples per step, drawn without replacement, reshuffled every epoch.
        seeds: initialisations (and batch orders) per width and parametrisation, at least 2.
        activation: ``"relu"`` or ``"tanh"``.
        seed: the first seed; runs use ``seed, seed + 1, …``.
        transformer: whether to run the transformer sweep (next-pixel prediction on the digits) as well.
        transformer_widths: its ``d_model``, ascending; each a multiple of ``transformer_heads``.
        transformer_base_width: the ``d_model`` at which muP equals SP.
        transformer_heads: attention heads, fixed, so ``d_head = d_model / heads`` grows with the width.
        transformer_layers: blocks.
        transformer_log2_lr_range: ``(lowest, highest)`` exponent of its learning-rate grid (spacing ``grid_step``).
        transformer_steps: Adam steps of every transformer run.
        transformer_batch_size: images (sequences) per step.
        transformer_seeds: initialisations (and batch orders) per width and parametrisation, at least 2.
        transformer_eval_size: the final losses are measured on the first this many training images and the first
            this many held-out ones.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    base_width: int = 64
    log2_lr_range: tuple[float, float] = (-13.0, -4.0)
    grid_step: float = 1.0
    steps: int = 100
    schedule: str = "constant"
    batch_size: int = 32
    seeds: int = 4
    activation: str = "relu"
    seed: int = 0
    transformer: bool = False
    transformer_widths: tuple[int, ...] = (16, 64, 256)
    transformer_base_width: int = 16
    transformer_heads: int = 4
    transformer_layers: int = 2
    transformer_log2_lr_range: tuple[float, float] = (-11.0, -4.0)
    transformer_steps: int = 100
    transformer_batch_size: int = 16
    transformer_seeds: int = 2
    transformer_eval_size: int = 256

    def __post_init__(self) -> None:
        require(isinstance(self.grid_step, (int, float)) and math.isfinite(self.grid_step) and self.grid_step > 0,
                f"grid_step must be finite and > 0, got {self.grid_step!r}")
        for prefix in ("", "transformer_"):
            widths, base = getattr(self, f"{prefix}widths"), getattr(self, f"{prefix}base_width")
            require(len(widths) >= 2 and all(_is_int(w) and w >= 1 for w in widths),
                    f"{prefix}widths must be at least 2 integers >= 1, got {widths!r}")
            require(all(a < b for a, b in zip(widths, widths[1:])),
                    f"{prefix}widths must be strictly ascending, got {widths!r}")
            require(_is_int(base) and base >= 1, f"{prefix}base_width must be an integer >= 1, got {base!r}")
            lo_hi = getattr(self, f"{prefix}log2_lr_range")
            require(len(lo_hi) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in lo_hi)
                    and lo_hi[0] < lo_hi[1],
                    f"{prefix}log2_lr_range must be (lowest, highest) finite exponents with lowest < highest, "
                    f"got {lo_hi!r}")
            span = (lo_hi[1] - lo_hi[0]) / self.grid_step
            require(abs(span - round(span)) < 1e-9 and round(span) >= 4,
                    f"{prefix}log2_lr_range {lo_hi} must span a whole number (>= 4) of grid steps of {self.grid_step}; "
                    f"got {span:g} steps")
            steps, batch, seeds = (getattr(self, f"{prefix}{k}") for k in ("steps", "batch_size", "seeds"))
            require(_is_int(steps) and steps >= 1, f"{prefix}steps must be an integer >= 1, got {steps!r}")
            require(_is_int(batch) and 1 <= batch <= NUM_TRAIN,
                    f"{prefix}batch_size must be an integer in [1, {NUM_TRAIN}], got {batch!r}")
            require(_is_int(seeds) and seeds >= 2,
                    f"{prefix}seeds must be an integer >= 2 (the loss check needs a standard error), got {seeds!r}")
        require(isinstance(self.transformer, bool), f"transformer must be True or False, got {self.transformer!r}")
        heads = self.transformer_heads
        require(_is_int(heads) and heads >= 1, f"transformer_heads must be an integer >= 1, got {heads!r}")
        require(all(w % heads == 0 for w in (*self.transformer_widths, self.transformer_base_width)),
                f"transformer_widths {self.transformer_widths} and transformer_base_width {self.transformer_base_width} "
                f"must be multiples of transformer_heads ({heads})")
        require(_is_int(self.transformer_layers) and self.transformer_layers >= 1,
                f"transformer_layers must be an integer >= 1, got {self.transformer_layers!r}")
        require(_is_int(self.transformer_eval_size) and 1 <= self.transformer_eval_size <= NUM_TEST,
                f"transformer_eval_size must be an integer in [1, {NUM_TEST}], got {self.transformer_eval_size!r}")
        one_of("activation", self.activation, ACTIVATIONS)
        one_of("schedule", self.schedule, SCHEDULES)
        valid_seed(self.seed)

    @property
    def log2_lrs(self) -> np.ndarray:
        """The grid of ``log₂ η``."""
        return _grid(self.log2_lr_range, self.grid_step)

    @property
    def transformer_log2_lrs(self) -> np.ndarray:
        """The transformer's grid of ``log₂ η``."""
        return _grid(self.transformer_log2_lr_range, self.grid_step)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _grid(lo_hi: tuple[float, float], step: float) -> np.ndarray:
    lo, hi = lo_hi
    return lo + step * np.arange(round((hi - lo) / step) + 1)


# ---------------------------------------------------------------------------------------------------------------
# The optimum of a tuning curve


@dataclass(frozen=True)
class Optimum:
    """Where a tuning curve ``loss(log₂ η)`` is lowest.

    Attributes:
        log2_lr: the parabola's vertex (or the grid minimum when ``bracketed`` is False; NaN if every point
            diverged).
        loss: the lowest grid loss.
        fitted_loss: the parabola's value at its vertex (``exp`` of the fitted log loss).
        bracketed: whether the grid minimum has finite neighbours on both sides, so the parabola was fitted.
    """

    log2_lr: float
    loss: float
    fitted_loss: float
    bracketed: bool


def parabola_optimum(log2_lrs: Sequence[float], losses: Sequence[float]) -> Optimum:
    """The optimum of a tuning curve from the parabola through its grid minimum and two neighbours.

    With ``y = log loss`` at ``x_{k-1}, x_k, x_{k+1}`` (``k`` the grid minimum of the finite losses; NaN and
    infinite losses, diverged runs, count as ``+∞``) the parabola ``y = a x² + b x + c`` has its vertex at
    ``x* = −b/(2a)`` and value ``c − b²/(4a)``; on an even grid with spacing ``h``,

    .. math::  x^* = x_k + \\frac{h}{2}\\, \\frac{y_{k-1} - y_{k+1}}{y_{k-1} - 2 y_k + y_{k+1}},

    within ``h/2`` of ``x_k`` because ``y_k`` is the lowest of the three.

    Args:
        log2_lrs: the grid, ascending, of shape (n_lrs,).
        losses: the loss at each grid point, of shape (n_lrs,).

    Raises:
        ConfigError: shapes that differ, fewer than 3 points, or a grid that is not ascending.

    >>> opt = parabola_optimum([0.0, 1.0, 2.0], [math.e, 1.0, math.e ** 2])   # log loss 1, 0, 2
    >>> round(opt.log2_lr, 6), round(math.log(opt.fitted_loss), 6), opt.bracketed   # 5/6 and -1/24
    (0.833333, -0.041667, True)
    """
    x = np.asarray(log2_lrs, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    require(x.ndim == 1 and x.shape == y.shape and len(x) >= 3,
            f"log2_lrs and losses must be 1-D of one length >= 3, got shapes {x.shape} and {y.shape}")
    require(bool(np.all(np.diff(x) > 0)), f"log2_lrs must be ascending, got {x.tolist()}")
    y = np.where(np.isfinite(y), y, np.inf)
    if not np.isfinite(y).any():
        return Optimum(math.nan, math.inf, math.inf, False)
    k = int(np.argmin(y))
    if k == 0 or k == len(y) - 1 or not (np.isfinite(y[k - 1]) and np.isfinite(y[k + 1])):
        return Optimum(float(x[k]), float(y[k]), float(y[k]), False)
    xs, ys = x[k - 1 : k + 2] - x[k], np.log(y[k - 1 : k + 2])
    a, b, c = np.polyfit(xs, ys, 2)
    if a <= 0:  # three equal losses: no curvature to place a vertex with
        return Optimum(float(x[k]), float(y[k]), float(y[k]), True)
    return Optimum(float(x[k] - b / (2 * a)), float(y[k]), float(math.exp(c - b * b / (4 * a))), True)


# ---------------------------------------------------------------------------------------------------------------
# Every (seed, learning rate) of one width and parametrisation, trained at once


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> Tensor:
    """The examples of each step, of shape (steps, batch_size): epochs of a random permutation (a private
    generator seeded with ``seed``), a fresh one whenever fewer than ``batch_size`` examples are left."""
    gen = torch.Generator().manual_seed(seed)
    order, cursor, rows = torch.randperm(n, generator=gen), 0, []
    for _ in range(steps):
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        rows.append(order[cursor : cursor + batch_size])
        cursor += batch_size
    return torch.stack(rows) if rows else torch.zeros(0, batch_size, dtype=torch.long)


class LrSweepMLP(StackedMLP):
    """The members ``(seed, lr)`` of one parametrised MLP family, stacked so one step trains them all.

    Member ``i = s · len(lrs) + j`` is ``parametrize(mlp(in, [width] * depth, out, activation), parametrization,
    base_width=..., seed=seeds[s])`` trained by ``torch.optim.Adam(param_groups(model, lrs[j], "adam"))``.
    Each layer ``y = α_W x W + α_b b`` keeps its weights stacked as (members, fan_in, fan_out) and its biases as
    (members, 1, fan_out), so a forward pass is one ``torch.baddbmm`` per layer; each member's slice of each
    tensor is one parameter group of a fused ``torch.optim.Adam`` with that member's rate for that layer's role.

    Raises:
        ConfigError: no seeds or no learning rates, or anything :func:`lmech.models.parametrize` rejects.
    """

    def __init__(self, in_features: int, width: int, out_features: int, parametrization: str, *, base_width: int,
                 lrs: Sequence[float], seeds: Sequence[int], depth: int = 2, activation: str = "relu"):
        require(len(lrs) >= 1 and len(seeds) >= 1, f"need at least one lr and one seed, got {lrs!r} and {seeds!r}")
        one_of("activation", activation, ACTIVATIONS)
        self.lrs, self.seeds = [float(lr) for lr in lrs], list(seeds)
        models, rates = [], []
        for seed in self.seeds:
            model = parametrize(mlp(in_features, [width] * depth, out_features, activation=activation, seed=seed),
                                parametrization, base_width=base_width, seed=seed)
            layers = [m for m in model if isinstance(m, nn.Linear)]
            models.append(model)
            for lr in self.lrs:
                rate = {id(p): g["lr"] for g in param_groups(model, lr, "adam") for p in g["params"]}
                rates.append([(rate[id(m.weight)], rate[id(m.bias)]) for m in layers])
        super().__init__([model for model in models for _ in self.lrs])
        self._rates = rates  # per member, per layer: (weight lr, bias lr)

    def losses(self, x: Tensor, labels: Tensor, leaves: Sequence[Tensor] | None = None) -> Tensor:
        """Each member's mean cross-entropy, shape (members,); ``labels`` of shape (batch,) or (members, batch)."""
        logits = self.forward(x, leaves)
        labels = labels if labels.dim() == 2 else labels.expand(self.members, len(labels))
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape).mean(1)

    def member_state(self, i: int) -> dict[str, Tensor]:
        """Member ``i``'s parameters named as in the ``nn.Sequential`` it stands for (``"0.weight"``, …)."""
        state = {}
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            state[f"{2 * k}.weight"], state[f"{2 * k}.bias"] = w[i].T.clone(), b[i, 0].clone()
        return state

    def train(self, inputs: Tensor, labels: Tensor, *, steps: int, batch_size: int, schedule: str = "constant") -> None:
        """``steps`` Adam steps on minibatches of ``(inputs, labels)``; every member of seed ``s`` sees the batches
        :func:`batch_indices` draws with that seed. Step ``t = 0, …, steps − 1`` uses each rate times
        :func:`lr_factor` (``"linear"``: ``1 − t/steps``, as ``torch.optim.lr_scheduler.LambdaLR`` stepped after
        every step; ``"constant"``: 1). Non-finite members stay non-finite and touch no other."""
        one_of("schedule", schedule, SCHEDULES)
        order = torch.stack([batch_indices(len(inputs), batch_size, steps, s) for s in self.seeds])
        member_seed = torch.arange(self.members) // len(self.lrs)
        leaves, n = self.leaves, len(self.weights)
        slices = [list(leaf.unbind(0)) for leaf in leaves]
        groups = [{"params": [piece], "lr": self._rates[i][k % n][k // n]}
                  for k, pieces in enumerate(slices) for i, piece in enumerate(pieces)]
        base = [g["lr"] for g in groups]
        adam = _adam(groups)
        for t in range(steps):
            factor = lr_factor(schedule, t, steps)
            for group, lr in zip(adam.param_groups, base):
                group["lr"] = lr * factor
            idx = order[member_seed, t]  # (members, batch_size)
            params = [leaf.detach().requires_grad_() for leaf in leaves]
            loss = self.losses(inputs[idx], labels[idx], params)
            grads = torch.autograd.grad(loss.sum(), params)
            for pieces, grad in zip(slices, grads):
                for piece, g in zip(pieces, grad.unbind(0)):
                    piece.grad = g
            adam.step()
        for pieces in slices:
            for piece in pieces:
                piece.grad = None


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The multiplier of every learning rate at ``step`` (0-based) of ``steps``: ``1 − step/steps`` for
    ``"linear"`` (decay to 0 at the end of the budget), 1 for ``"constant"``.

    >>> [lr_factor("linear", t, 4) for t in range(4)]
    [1.0, 0.75, 0.5, 0.25]
    """
    return 1.0 - step / steps if schedule == "linear" else 1.0


def _adam(groups: list[dict]) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``groups``, fused (one pass over each tensor) where this torch supports it on
    the parameters' device."""
    try:
        return torch.optim.Adam(groups, fused=True)
    except RuntimeError:  # older torch: no fused Adam on CPU
        return torch.optim.Adam(groups)


# ---------------------------------------------------------------------------------------------------------------
# The transformer: next-pixel prediction on the digits


def next_pixel_loss(model: nn.Module, images: Tensor) -> Tensor:
    """Mean cross-entropy of predicting pixels ``2, …, 64`` of each image (row-major, tokens ``0..16``) from the
    pixels before them; ``images`` of shape (batch, 64), integer."""
    logits = model(images[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), images[:, 1:].flatten())


def train_transformer(images: Tensor, *, width: int, parametrization: str, base_width: int, lr: float, seed: int,
                      steps: int, batch_size: int, heads: int = 4, layers: int = 2,
                      schedule: str = "constant") -> tuple[nn.Module, bool]:
    """``parametrize(Transformer(d_model=width, …), parametrization, base_width=..., seed=seed)`` trained by
    ``torch.optim.Adam(param_groups(model, lr, "adam"))`` on :func:`next_pixel_loss` for ``steps`` steps of the
    minibatches :func:`batch_indices` draws with ``seed``, the rate times :func:`lr_factor` at each step.

    ``n_heads = heads`` is fixed, so ``d_head = width / heads`` grows with the width and muP's attention logit
    scale ``1/d_head`` (relative to the base model) applies; ``d_mlp = 4 · width``, GELU.

    Returns:
        The model and whether training diverged (a non-finite minibatch loss, after which it stopped).
    """
    model = parametrize(Transformer(vocab=PIXEL_LEVELS, context=images.shape[1] - 1, d_model=width, n_layers=layers,
                                    n_heads=heads, seed=seed), parametrization, base_width=base_width, seed=seed)
    adam = torch.optim.Adam(param_groups(model, lr, "adam"))
    base = [g["lr"] for g in adam.param_groups]
    for t, idx in enumerate(batch_indices(len(images), batch_size, steps, seed)):
        for group, rate in zip(adam.param_groups, base):
            group["lr"] = rate * lr_factor(schedule, t, steps)
        loss = next_pixel_loss(model, images[idx])
        if not torch.isfinite(loss):
            return model, True
        adam.zero_grad()
        loss.backward()
        adam.step()
    return model, False


@torch.no_grad()
def evaluate_pixels(model: nn.Module, images: Tensor, chunk: int = 64) -> float:
    """:func:`next_pixel_loss` over all of ``images`` (every prediction weighted equally), in chunks."""
    total = sum(next_pixel_loss(model, images[i : i + chunk]).item() * len(images[i : i + chunk])
                for i in range(0, len(images), chunk))
    return total / len(images)


# ---------------------------------------------------------------------------------------------------------------
# The law


def transfer_checks(optima: dict[str, list[Optimum]], best: dict[str, np.ndarray], se: dict[str, np.ndarray],
                    widths: Sequence[int], step: float, prefix: str = "") -> list[Check]:
    """The four checks of the module docstring, each name starting with ``prefix`` (e.g. ``"transformer: "``)."""
    def shift(opts: list[Optimum]) -> np.ndarray:
        located = all(o.bracketed for o in opts)
        return np.array([(o.log2_lr - opts[0].log2_lr) / step if located else math.nan for o in opts])

    mup, sp = shift(optima["mup"]), shift(optima["sp"])
    drift = float(np.max(np.abs(mup))) if np.all(np.isfinite(mup)) else math.nan
    rises = [(best["mup"][k + 1] - best["mup"][k]) / math.hypot(se["mup"][k], se["mup"][k + 1])
             if se["mup"][k] + se["mup"][k + 1] > 0 else (math.inf if best["mup"][k + 1] > best["mup"][k] else 0.0)
             for k in range(len(widths) - 1)]
    span = f"widths {widths[0]} → {widths[-1]}"
    return [
        Check.at_most(f"{prefix}muP: max over widths of |log₂ η*(n) − log₂ η*({widths[0]})|, in grid steps "
                      f"({span}; η* from the parabola in log loss; an unlocated optimum fails)", drift, MUP_TOLERANCE),
        Check.at_most(f"{prefix}muP, wider is better: loss at the optimum, width {widths[-1]} over width {widths[0]} "
                      "(best grid point, mean over seeds)", float(best["mup"][-1] / best["mup"][0]), 1.0),
        Check.at_most(f"{prefix}muP, wider is better: largest rise of the loss at the optimum from one width to the next, "
                      "in standard errors √(se₁² + se₂²) over seeds", float(max(rises)), RISE_TOLERANCE),
        Check.at_least(f"{prefix}SP: downward move of the optimum from width {widths[0]} to {widths[-1]}, in grid steps "
                       f"(theory: up to log₂({widths[-1]}/{widths[0]}) = {math.log2(widths[-1] / widths[0]):g}, η* ∝ 1/n)",
                       float(-sp[-1]), SP_MIN_SHIFT),
    ]


@register
class MupLrTransfer(Law):
    name = "mup-lr-transfer"
    title = "muP: the best learning rate transfers across widths, and wider is better; under SP it drifts down"
    pillar = "hyperparameters"
    references = (
        Reference("Yang, Hu, Babuschkin et al. Tensor Programs V: Tuning Large Neural Networks via Zero-Shot "
                  "Hyperparameter Transfer. NeurIPS 2021", "2203.03466"),
        Reference("Yang, Hu. Tensor Programs IV: Feature Learning in Infinite-Width Neural Networks. ICML 2021",
                  "2011.14522"),
        Reference("Everett, Xiao, Wortsman et al. Scaling Exponents Across Parameterizations and Optimizers. "
                  "ICML 2024", "2407.05872"),
    )
    statement = ("Training MLPs on the digits with Adam for a fixed budget, the loss-minimising base learning rate "
                 "moves by at most one factor-2 grid step from width 64 to 1,024 under muP, where the loss at the "
                 "optimum falls with width, and moves down by at least two steps under SP (theory: η* ∝ 1/width); "
                 "the full preset holds a 2-block transformer predicting the digits' next pixel, d_model 16 to 256, to "
                 "the same checks.")
    Config = MupLrTransferConfig
    presets = {
        "quick": dict(widths=(64, 256, 1024), seeds=3, log2_lr_range=(-13.0, -5.0)),
        "full": dict(seeds=6, transformer=True),
    }

    def run(self, config: MupLrTransferConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        train, test = load_digits(NUM_TRAIN, NUM_TEST, dtype=torch.float32)
        grid = config.log2_lrs
        lrs = [2.0 ** k for k in grid]
        seeds = [config.seed + s for s in range(config.seeds)]
        widths = list(config.widths)
        progress.task(f"{self.name}: {len(lrs)} learning rates × {len(seeds)} seeds per width",
                      len(PARAMETRIZATIONS) * len(widths))
        records = Records()
        train_loss = {p: np.zeros((len(widths), len(seeds), len(lrs))) for p in PARAMETRIZATIONS}
        for p in PARAMETRIZATIONS:
            for a, width in enumerate(widths):
                net = LrSweepMLP(64, width, 10, p, base_width=config.base_width, lrs=lrs, seeds=seeds,
                                 activation=config.activation)
                net.train(train.inputs, train.labels, steps=config.steps, batch_size=config.batch_size,
                          schedule=config.schedule)
                with torch.no_grad():
                    final = {"train_loss": net.losses(train.inputs, train.labels),
                             "test_loss": net.losses(test.inputs, test.labels)}
                for name, values in final.items():
                    values = values.double().view(len(seeds), len(lrs)).numpy()
                    if name == "train_loss":
                        train_loss[p][a] = values
                    for s, seed in enumerate(seeds):
                        for j, k in enumerate(grid):
                            records.add(config.steps, name, values[s, j], parametrization=p, width=width,
                                        log2_lr=float(k), seed=seed)
                progress.advance()

        summary: dict[str, float] = {}
        sweep = _analyse(train_loss, grid, widths, seeds, config.steps, records, summary, name="", label="")
        checks = transfer_checks(*sweep[:3], widths, config.grid_step)
        curves = _prediction_curves(sweep[0], widths, config.grid_step, label="")
        rows = [TransferRow(grid, widths, sweep[3], {p: [o.log2_lr for o in sweep[0][p]] for p in PARAMETRIZATIONS},
                            config.steps, "MLP 64 → n → n → 10 on the digits")]
        if config.transformer:
            rows.append(self._transformer(config, records, summary, checks, curves, progress))
        figure = lr_transfer_figure(rows, grid_step=config.grid_step)
        return LawResult(records, pa.Table.from_pylist(curves), checks, {"mup_lr_transfer": figure}, summary)

    def _transformer(self, config: MupLrTransferConfig, records: Records, summary: dict[str, float], checks: list[Check],
                     curves: list[dict], progress: Progress) -> TransferRow:
        """The transformer sweep: records, summary entries, checks and prediction curves added in place; its figure
        row returned. At the base width SP and muP are one model (every multiplier and rate factor is 1), so muP
        reuses SP's runs there."""
        train, test = load_digits(NUM_TRAIN, NUM_TEST, standardize=False)
        images = train.inputs.long()
        held = {"transformer_train_loss": images[: config.transformer_eval_size],
                "transformer_test_loss": test.inputs.long()[: config.transformer_eval_size]}
        grid = config.transformer_log2_lrs
        seeds = [config.seed + s for s in range(config.transformer_seeds)]
        widths = list(config.transformer_widths)
        base = config.transformer_base_width
        runs = [(p, a) for p in PARAMETRIZATIONS for a, w in enumerate(widths) if not (p == "mup" and w == base)]
        progress.task(f"{self.name}: transformer, {len(grid)} learning rates × {len(seeds)} seeds per width",
                      len(runs) * len(seeds) * len(grid))
        losses = {name: {p: np.full((len(widths), len(seeds), len(grid)), np.inf) for p in PARAMETRIZATIONS}
                  for name in held}
        for p, a in runs:
            for s, seed in enumerate(seeds):
                for j, k in enumerate(grid):
                    model, diverged = train_transformer(
                        images, width=widths[a], parametrization=p, base_width=base, lr=2.0 ** k, seed=seed,
                        steps=config.transformer_steps, batch_size=config.transformer_batch_size,
                        heads=config.transformer_heads, layers=config.transformer_layers, schedule=config.schedule)
                    for name, data in held.items():
                        losses[name][p][a, s, j] = math.inf if diverged else evaluate_pixels(model, data)
                    progress.advance()
        for a, w in enumerate(widths):
            if w == base:
                for name in held:
                    losses[name]["mup"][a] = losses[name]["sp"][a]
        for name in held:
            for p in PARAMETRIZATIONS:
                for a, width in enumerate(widths):
                    for s, seed in enumerate(seeds):
                        for j, k in enumerate(grid):
                            records.add(config.transformer_steps, name, losses[name][p][a, s, j], parametrization=p,
                                        width=width, log2_lr=float(k), seed=seed)
        sweep = _analyse(losses["transformer_train_loss"], grid, widths, seeds, config.transformer_steps, records,
                         summary, name="transformer_", label="transformer, ")
        checks.extend(transfer_checks(*sweep[:3], widths, config.grid_step, prefix="transformer: "))
        curves.extend(_prediction_curves(sweep[0], widths, config.grid_step, label="transformer, "))
        return TransferRow(grid, widths, sweep[3], {p: [o.log2_lr for o in sweep[0][p]] for p in PARAMETRIZATIONS},
                           config.transformer_steps, f"{config.transformer_layers}-block transformer, next pixel of digits",
                           width_label="width d_model")


def _analyse(train_loss: dict[str, np.ndarray], grid: np.ndarray, widths: Sequence[int], seeds: Sequence[int], steps: int,
             records: Records, summary: dict[str, float], *, name: str,
             label: str) -> tuple[dict[str, list[Optimum]], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Optima, losses at the optimum and their standard errors from final training losses of shape (widths, seeds,
    lrs) per parametrisation; records (observables prefixed ``name``) and summary entries (prefixed ``label``)
    added in place. Returns ``(optima, best, se, mean)``, ``mean`` the seed-mean losses of shape (widths, lrs)."""
    mean, optima, best, se = {}, {}, {}, {}
    for p in PARAMETRIZATIONS:
        losses = np.where(np.isfinite(train_loss[p]), train_loss[p], np.inf)
        with np.errstate(invalid="ignore"):
            mean[p] = losses.mean(axis=1)  # (widths, lrs); +∞ where any seed diverged
        optima[p] = [parabola_optimum(grid, mean[p][a]) for a in range(len(widths))]
        at = [int(np.argmin(mean[p][a])) for a in range(len(widths))]
        best[p] = np.array([mean[p][a, j] for a, j in enumerate(at)])
        with np.errstate(invalid="ignore"):  # every learning rate diverged: NaN, and the checks fail
            se[p] = np.array([losses[a, :, j].std(ddof=1) / math.sqrt(len(seeds)) for a, j in enumerate(at)])
        for a, (width, opt) in enumerate(zip(widths, optima[p])):
            index = dict(parametrization=p, width=width, seed=None, log2_lr=None)
            records.add(steps, f"{name}log2_lr_optimum", opt.log2_lr, **index)
            records.add(steps, f"{name}loss_at_optimum", best[p][a], **index)
            records.add(steps, f"{name}loss_at_optimum_se", se[p][a], **index)
            records.add(steps, f"{name}optimum_bracketed", float(opt.bracketed), **index)
            for s, seed in enumerate(seeds):
                own = parabola_optimum(grid, losses[a, s])
                records.add(steps, f"{name}log2_lr_optimum", own.log2_lr, parametrization=p, width=width, seed=seed,
                            log2_lr=None)
            summary[f"{label}{p}: log2 η* at width {width}"] = opt.log2_lr
            summary[f"{label}{p}: loss at the optimum at width {width}"] = float(best[p][a])
        located = [o.log2_lr for o in optima[p]]
        if all(math.isfinite(v) for v in located):
            summary[f"{label}{p}: slope of log2 η* against log2 width"] = float(np.polyfit(np.log2(widths), located, 1)[0])
    return optima, best, se, mean


def _prediction_curves(optima: dict[str, list[Optimum]], widths: Sequence[int], step: float, *, label: str) -> list[dict]:
    """The predicted ``log₂ η*`` against width: muP flat at the first width's optimum (± one grid step), SP
    falling ``∝ 1/width`` from the first width's."""
    span = np.log2(np.asarray(widths, dtype=float) / widths[0])
    mup0, sp0 = optima["mup"][0].log2_lr, optima["sp"][0].log2_lr
    return ([{"curve": f"{label}muP: log2 η* of the first width{suffix}", "x": float(w), "y": mup0 + s * step,
              "parametrization": "mup"} for w in widths for s, suffix in ((-1, " − 1 step"), (0, ""), (1, " + 1 step"))]
            + [{"curve": f"{label}SP: log2 η* ∝ −log2 width from the first width", "x": float(w), "y": sp0 - d,
                "parametrization": "sp"} for w, d in zip(widths, span)])
