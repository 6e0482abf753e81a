"""Neural scaling laws: the Chinchilla loss surface, its fits, and compute-optimal allocation.

Hoffmann et al. (2022, arXiv:2203.15556, "Training Compute-Optimal Large Language Models") model the
final loss of a language model with ``N`` parameters trained on ``D`` tokens as

.. math::

    L(N, D) = E + \\frac{A}{N^\\alpha} + \\frac{B}{D^\\beta}            \\qquad \\text{(their eq. (2))}

and estimate it three ways. *Approach 3* (their §3.3 and App. D.2) fits the five constants by
minimising the Huber loss (``δ = 10⁻³``) between predicted and observed *log* loss, summed over the runs,
with the predicted log loss written as a log-sum-exp of ``a − α log N``, ``b − β log D`` and ``e``
(``A = eᵃ``, ``B = eᵇ``, ``E = eᵉ``), by L-BFGS from a grid of initialisations, keeping the best.
Besiroglu et al. (2024, arXiv:2404.10102, "Chinchilla Scaling: A replication attempt") redid this fit
on data extracted from Hoffmann et al.'s Figure 4 and found ``E = 1.8172, A = 482.01, B = 2085.43,
α = 0.3478, β = 0.3658`` (their Table 1, standard errors 0.03, 124.58, 1293.23, 0.02, 0.02) where
Hoffmann et al. had reported ``E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28``.
*Approach 2* (their §3.2) fits a parabola to each isoFLOP profile to locate the loss-optimal model size
and then power laws ``N_opt ∝ C^a``, ``D_opt ∝ C^b`` across budgets.

:func:`fit_chinchilla` runs every initialisation at once: one L-BFGS iteration is a handful of numpy
operations on arrays of shape ``(initialisations, points)``, and the bootstrap refits run as one more
batch (resampling is a multinomial weight on each point), so the 4,500-point grid and 1,000 bootstrap
refits take seconds where a loop of ``scipy.optimize.minimize`` calls takes minutes
(``benchmarks/bench_scaling_fit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..config import require

__all__ = [
    "Approach2Fit", "ChinchillaFit", "PowerLawFit", "chinchilla_init_grid", "chinchilla_loss", "compute_equivalent_factor",
    "compute_optimal", "fit_approach2", "fit_chinchilla", "fit_power_law", "frontier_loss",
]

CONSTANTS = ("E", "A", "B", "alpha", "beta")


def _positive_1d(name: str, values, size: int | None = None) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    require(x.ndim == 1 and x.size > 0, f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    require(size is None or x.size == size, f"{name} must have one entry per run ({size}), got {x.size}")
    bad = np.flatnonzero(~(np.isfinite(x) & (x > 0)))
    if bad.size:
        require(False, f"{name} must be finite and > 0, got {float(x[bad[0]])!r} at index {bad[0]}; drop that run or fix it")
    return x


def chinchilla_loss(n_params, tokens, *, E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """The Chinchilla loss surface ``L(N, D)`` (Hoffmann et al. 2022, arXiv:2203.15556, eq. (2)).

    .. math::

        L(N, D) = E + A N^{-\\alpha} + B D^{-\\beta}

    Args:
        n_params: model sizes ``N`` (parameters), any shape broadcastable with ``tokens``.
        tokens: training tokens ``D``.
        E, A, B, alpha, beta: the constants (``E`` in the loss's units, nats per token for Hoffmann et al.).

    Returns:
        The predicted loss, of the broadcast shape.

    >>> round(float(chinchilla_loss(1e10, 1e10, E=1.0, A=100.0, B=100.0, alpha=0.5, beta=0.5)), 12)
    1.002
    """
    n, d = np.asarray(n_params, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    return E + A * n**-alpha + B * d**-beta


def compute_optimal(compute, *, A: float, B: float, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The loss-optimal model size and token count at a compute budget, under ``C = 6 N D``.

    .. math::

        N_{opt}(C) = G \\Big(\\frac{C}{6}\\Big)^{\\frac{\\beta}{\\alpha+\\beta}}, \\quad
        D_{opt}(C) = G^{-1} \\Big(\\frac{C}{6}\\Big)^{\\frac{\\alpha}{\\alpha+\\beta}}, \\quad
        G = \\Big(\\frac{\\alpha A}{\\beta B}\\Big)^{\\frac{1}{\\alpha+\\beta}},

    the minimiser of ``L(N, C/(6N))`` (``E`` does not move it). Hoffmann et al. (2022, arXiv:2203.15556),
    eq. (4).

    Args:
        compute: budgets ``C`` in FLOP, any shape.
        A, B, alpha, beta: the fitted constants (``alpha, beta > 0``).

    Returns:
        ``(n_opt, d_opt)``, each of the shape of ``compute``; ``6 n_opt d_opt = C``.

    Raises:
        ConfigError: for a constant or budget that is not finite and > 0.

    With ``α = β`` and ``A = B`` the optimum is ``N = D = (C/6)^{1/2}``:

    >>> n, d = compute_optimal(6e20, A=400.0, B=400.0, alpha=0.3, beta=0.3)
    >>> round(float(n) / 1e10, 12), round(float(d) / 1e10, 12)
    (1.0, 1.0)
    """
    for name, v in (("A", A), ("B", B), ("alpha", alpha), ("beta", beta)):
        require(np.isfinite(v) and v > 0, f"{name} must be finite and > 0, got {v!r}")
    c = np.asarray(compute, dtype=np.float64)
    require(bool(np.all(np.isfinite(c) & (c > 0))), f"compute must be finite and > 0 FLOP, got {c.min()!r}")
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    return g * (c / 6.0) ** (beta / (alpha + beta)), (c / 6.0) ** (alpha / (alpha + beta)) / g


def frontier_loss(compute, *, E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """The loss of the compute-optimal model at budget ``C``: ``L*(C) = L(N_opt(C), D_opt(C))``.

    .. math::

        L^*(C) = E + \\Big(1 + \\frac{\\alpha}{\\beta}\\Big) A\\, N_{opt}(C)^{-\\alpha}
               = E + K C^{-\\gamma}, \\qquad \\gamma = \\frac{\\alpha\\beta}{\\alpha+\\beta},

    since at the optimum ``β B D^{−β} = α A N^{−α}`` and both terms fall as ``C^{−γ}``.

    Args:
        compute: budgets ``C`` in FLOP, any shape.
        E, A, B, alpha, beta: the constants (``A, B, alpha, beta > 0``).

    Returns:
        ``L*(C)``, of the shape of ``compute``.

    Raises:
        ConfigError: as :func:`compute_optimal`.

    Source:
        Hoffmann et al. (2022), arXiv:2203.15556, eqs. (2) and (4).

    >>> round(float(frontier_loss(6e20, E=1.0, A=400.0, B=400.0, alpha=0.5, beta=0.5)), 12)
    1.008
    """
    n_opt, d_opt = compute_optimal(compute, A=A, B=B, alpha=alpha, beta=beta)
    return chinchilla_loss(n_opt, d_opt, E=E, A=A, B=B, alpha=alpha, beta=beta)


def compute_equivalent_factor(predicted, measured, compute, *, E: float, A: float, B: float, alpha: float,
                              beta: float) -> np.ndarray:
    """A loss error expressed as compute: the factor by which the budget must change, along the fitted
    compute-optimal frontier, to change the loss by the ratio the prediction missed by.

    .. math::

        f = \\max\\Big(\\frac{C'}{C}, \\frac{C}{C'}\\Big), \\qquad
        L^*(C') = L^*(C)\\,\\frac{\\hat L}{L}
        \\;\\Longleftrightarrow\\;
        \\frac{C'}{C} = \\Big(\\frac{L^*(C) - E}{L^*(C)\\,\\hat L / L - E}\\Big)^{1/\\gamma}, \\quad
        \\gamma = \\frac{\\alpha\\beta}{\\alpha+\\beta}

    with :func:`frontier_loss` ``L*(C) = E + K C^{−γ}``; ``f = ∞`` when ``L*(C) L̂/L ≤ E`` (no budget reaches
    that loss). ``f = 2`` means the error equals what doubling (or halving) the compute changes near ``C``:
    the law could not tell this run from one with twice its budget. Unlike a relative error it compares
    datasets whose losses are on different scales or fall at different rates.

    Args:
        predicted: ``L̂``, the law's loss for each run, shape ``(n,)``, > 0.
        measured: ``L``, the observed loss, shape ``(n,)``, > 0.
        compute: each run's budget ``C`` in FLOP (``6ND``), shape ``(n,)``, > 0.
        E, A, B, alpha, beta: the fitted constants that define the frontier.

    Returns:
        ``f ≥ 1`` per run, shape ``(n,)`` (dimensionless, a factor of compute).

    Raises:
        ConfigError: for values that are not finite and > 0, or unequal lengths.

    A prediction that is off by the loss of the frontier at half the budget is off by a factor 2:

    >>> k = dict(E=1.0, A=400.0, B=400.0, alpha=0.5, beta=0.5)
    >>> c = np.array([6e20])
    >>> round(float(compute_equivalent_factor(frontier_loss(c / 2, **k), frontier_loss(c, **k), c, **k)[0]), 9)
    2.0
    """
    c = _positive_1d("compute", compute)
    y_hat, y = _positive_1d("predicted", predicted, c.size), _positive_1d("measured", measured, c.size)
    require(np.isfinite(E) and E > 0, f"E must be finite and > 0, got {E!r}")
    star = frontier_loss(c, E=E, A=A, B=B, alpha=alpha, beta=beta)
    target = star * y_hat / y
    reachable = target > E
    ratio = (star - E) / np.where(reachable, target - E, 1.0)
    log_f = np.abs(np.log(ratio)) * (alpha + beta) / (alpha * beta)
    return np.where(reachable, np.exp(log_f), np.inf)


# --- the batched Huber objective on log loss and a batched L-BFGS -------------------------------------------------


class _HuberLogSumExp:
    """``Σ_i w_i Huber_δ(LSE_j(c_j − s_j x_ij [, e]) − log y_i)`` for a batch of parameter rows.

    Parameter row layout: ``(c_1..c_J, s_1..s_J[, e])``; ``weights`` (one row per problem) are bootstrap
    multiplicities. Rows are evaluated in chunks that fit in cache.
    """

    def __init__(self, features: np.ndarray, log_y: np.ndarray, delta: float, offset: bool,
                 weights: np.ndarray | None = None, chunk: int = 64):
        self.x, self.log_y, self.delta, self.offset = features, log_y, delta, offset  # x: (J, n)
        self.weights, self.chunk, self.num_terms = weights, chunk, features.shape[0]

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, g = np.empty(len(theta)), np.empty_like(theta)
        for lo in range(0, len(theta), self.chunk):
            hi = lo + self.chunk
            w = None if self.weights is None else self.weights[rows[lo:hi]]
            with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
                f[lo:hi], g[lo:hi] = self._eval(theta[lo:hi], w)
        return f, g

    def _eval(self, theta: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        j, delta = self.num_terms, self.delta
        terms = theta[:, :j, None] - theta[:, j:2 * j, None] * self.x  # (k, J, n): c_j − s_j x_ij
        if j == 1 and not self.offset:
            r, expd, total = terms[:, 0] - self.log_y, np.ones_like(terms), 1.0
        else:  # no max-shift: the terms are logs of loss components; a trial step that overflows gets f = inf
            expd = np.exp(terms, out=terms)
            total = expd.sum(axis=1)
            if self.offset:
                total += np.exp(theta[:, 2 * j, None])
            r = np.log(total)
            r -= self.log_y  # residual in log loss
        psi = np.clip(r, -delta, delta)  # Huber'(r)
        # Huber(r) = ψ²/2 + δ(|r| − |ψ|): r²/2 inside |r| ≤ δ, δ(|r| − δ/2) outside
        huber = 0.5 * psi * psi + delta * (np.abs(r) - np.abs(psi))
        if w is not None:
            huber *= w
            psi *= w
        u = psi / total
        share = np.multiply(expd, u[:, None], out=expd)  # ψ_i × softmax weight of each term
        grad = np.empty_like(theta)
        grad[:, :j] = share.sum(axis=2)
        grad[:, j:2 * j] = -np.einsum("kjn,jn->kj", share, self.x)
        if self.offset:
            grad[:, 2 * j] = u.sum(axis=1) * np.exp(theta[:, 2 * j])
        return huber.sum(axis=1), grad


def _batched_lbfgs(fun, x0: np.ndarray, *, max_iter: int, tol: float, memory: int = 10,
                   gtol: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise ``K`` independent problems at once by L-BFGS.

    The line search backtracks (safeguarded quadratic interpolation) until the Armijo condition holds, and
    extrapolates a full step that still descends steeply (×4, at most 10 times) until the curvature
    condition holds or the objective stops falling.

    ``fun(x, rows)`` returns objectives ``(k,)`` and gradients ``(k, P)`` for rows ``rows`` of the batch.
    A problem stops when an iteration lowers its objective by at most ``tol · max(|f|, 1)`` (the test of
    ``scipy.optimize.minimize(method="L-BFGS-B")``, whose default is ``tol = 2.2e-9``), when its largest
    gradient entry is at most ``gtol``, or when the line search finds no decrease along the steepest
    descent direction either. When the line search fails along the L-BFGS direction, or only a tiny decrease
    follows backtracking, the memory is cleared and the next step is steepest descent (scipy restarts too).
    Returns ``(x, f, status)`` with status 0 for stopped, 1 for ``max_iter`` reached.
    """
    k, p = x0.shape
    x = x0.astype(np.float64, copy=True)
    f, g = fun(x, np.arange(k))
    hist_s, hist_y, rho = np.zeros((k, memory, p)), np.zeros((k, memory, p)), np.zeros((k, memory))
    gamma, fresh = np.ones(k), np.ones(k, dtype=bool)  # fresh: no curvature pairs in memory
    active = np.isfinite(f) & (np.abs(g).max(axis=1) > gtol)
    status = np.zeros(k, dtype=np.int64)
    for it in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        xa, fa, ga = x[rows], f[rows], g[rows]
        s_a, y_a, rho_a = hist_s[rows], hist_y[rows], rho[rows]
        order = [(it - 1 - i) % memory for i in range(min(it, memory))]  # newest first
        q, coef = ga.copy(), np.zeros((rows.size, memory))
        for i in order:
            coef[:, i] = rho_a[:, i] * np.einsum("kp,kp->k", s_a[:, i], q)
            q -= coef[:, i, None] * y_a[:, i]
        q *= gamma[rows, None]
        for i in reversed(order):
            q += s_a[:, i] * (coef[:, i] - rho_a[:, i] * np.einsum("kp,kp->k", y_a[:, i], q))[:, None]
        d = -q
        slope = np.einsum("kp,kp->k", ga, d)
        uphill = ~(slope < 0)
        d[uphill] = -ga[uphill]
        slope[uphill] = -np.einsum("kp,kp->k", ga[uphill], ga[uphill])
        step = np.ones(rows.size) if it else np.minimum(1.0, 1.0 / np.linalg.norm(ga, axis=1))
        x_new, f_new, g_new = xa.copy(), fa.copy(), ga.copy()
        todo = np.arange(rows.size)
        for _ in range(50):  # backtracking with safeguarded quadratic interpolation
            xt = xa[todo] + step[todo, None] * d[todo]
            ft, gt = fun(xt, rows[todo])
            ok = np.isfinite(ft) & (ft <= fa[todo] + 1e-3 * step[todo] * slope[todo])
            done = todo[ok]
            x_new[done], f_new[done], g_new[done] = xt[ok], ft[ok], gt[ok]
            todo, ft, t = todo[~ok], ft[~ok], step[todo[~ok]]
            if todo.size == 0:
                break
            curv = 2.0 * (ft - fa[todo] - t * slope[todo])
            with np.errstate(divide="ignore", invalid="ignore"):
                t_quad = np.where(np.isfinite(ft) & (curv > 0), -slope[todo] * t * t / curv, 0.1 * t)
            step[todo] = np.clip(t_quad, 0.1 * t, 0.5 * t)
        stuck = np.zeros(rows.size, dtype=bool)
        stuck[todo] = True  # no decrease found along d
        grow = np.flatnonzero(~stuck & (step == 1.0))
        grow = grow[np.einsum("kp,kp->k", g_new[grow], d[grow]) < 0.9 * slope[grow]]
        for _ in range(10):  # the full step still descends steeply (curvature condition fails): extrapolate
            if grow.size == 0:
                break
            t = 4.0 * step[grow]
            ft, gt = fun(xa[grow] + t[:, None] * d[grow], rows[grow])
            ok = np.isfinite(ft) & (ft < f_new[grow]) & (ft <= fa[grow] + 1e-4 * t * slope[grow])
            grow, t, ft, gt = grow[ok], t[ok], ft[ok], gt[ok]
            x_new[grow], f_new[grow], g_new[grow], step[grow] = xa[grow] + t[:, None] * d[grow], ft, gt, t
            grow = grow[np.einsum("kp,kp->k", gt, d[grow]) < 0.9 * slope[grow]]
        s, y = x_new - xa, g_new - ga
        sy, yy = np.einsum("kp,kp->k", s, y), np.einsum("kp,kp->k", y, y)
        good = sy > 1e-12 * yy
        slot = it % memory
        hist_s[rows, slot], hist_y[rows, slot] = s, y
        rho[rows, slot] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        gamma[rows] = np.where(good, sy / np.where(good, yy, 1.0), gamma[rows])
        x[rows], f[rows], g[rows] = x_new, f_new, g_new
        small = (fa - f_new) <= tol * np.maximum(np.maximum(np.abs(fa), np.abs(f_new)), 1.0)
        trouble = stuck | (small & (step < 1.0))  # no decrease, or a tiny one after backtracking
        restart = trouble & ~fresh[rows]  # retry along the steepest descent direction
        rho[rows[restart]] = 0.0
        fresh[rows] = np.where(trouble, True, fresh[rows] & ~good)
        done = (small & ~trouble) | (trouble & ~restart) | (np.abs(g_new).max(axis=1) <= gtol)
        active[rows[done]] = False
    status[active] = 1
    return x, f, status


# --- Approach 3 -----------------------------------------------------------------------------------------------------


def chinchilla_init_grid() -> np.ndarray:
    """Hoffmann et al.'s grid of L-BFGS initialisations for Approach 3, also used by Besiroglu et al.

    ``α, β ∈ {0, 0.5, …, 2}``, ``e ∈ {−1, −0.5, …, 1}``, ``a, b ∈ {0, 5, …, 25}``: 5·5·5·6·6 = 4,500
    points (arXiv:2203.15556, App. D.2).

    Returns:
        Array of shape ``(4500, 5)``, columns ``(a, b, e, α, β)`` with ``A = eᵃ, B = eᵇ, E = eᵉ``.

    >>> chinchilla_init_grid().shape
    (4500, 5)
    """
    half = np.arange(0.0, 2.5, 0.5)
    grid = product(np.arange(0.0, 30.0, 5.0), np.arange(0.0, 30.0, 5.0), np.arange(-1.0, 1.5, 0.5), half, half)
    return np.array(list(grid))


@dataclass(frozen=True, kw_only=True)
class ChinchillaFit:
    """An Approach-3 fit of ``L = E + A/N^α + B/D^β``.

    Attributes:
        E, A, B, alpha, beta: the constants at the best initialisation.
        objective: the summed Huber loss there.
        n_points: runs fitted; n_inits: initialisations tried; n_stopped: how many met the stopping test
            (the rest ran out of iterations).
        intervals: constant name → ``(low, high)`` bootstrap percentile interval at ``confidence``, for the
            five constants and ``"a"`` ``= β/(α+β)`` and ``"b"`` ``= α/(α+β)``, the exponents of
            ``N_opt ∝ C^a`` and ``D_opt ∝ C^b`` (NaN where ``α + β ≤ 0``); empty without bootstrap.
        bootstrap: the refitted constants, shape ``(n_bootstrap, 5)``, columns ``(E, A, B, alpha, beta)``.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    n_points: int
    n_inits: int
    n_stopped: int
    confidence: float = 0.95
    intervals: dict[str, tuple[float, float]]
    bootstrap: np.ndarray | None = None

    @property
    def constants(self) -> dict[str, float]:
        """``{"E": E, "A": A, "B": B, "alpha": α, "beta": β, "a": β/(α+β), "b": α/(α+β)}``."""
        a, b = _allocation_exponents(np.array(self.alpha), np.array(self.beta))
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": float(a), "b": float(b)}

    def predict(self, n_params, tokens) -> np.ndarray:
        """:func:`chinchilla_loss` with these constants."""
        return chinchilla_loss(n_params, tokens, E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    def compute_optimal(self, compute) -> tuple[np.ndarray, np.ndarray]:
        """:func:`compute_optimal` with these constants: ``(n_opt, d_opt)`` at budgets ``compute`` (FLOP)."""
        return compute_optimal(compute, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    def frontier_loss(self, compute) -> np.ndarray:
        """:func:`frontier_loss` with these constants: the compute-optimal loss at budgets ``compute`` (FLOP)."""
        return frontier_loss(compute, E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    def compute_equivalent_factor(self, n_params, tokens, loss) -> np.ndarray:
        """:func:`compute_equivalent_factor` of this fit's prediction for runs ``(N, D)`` against their
        observed ``loss``, at budgets ``C = 6ND``."""
        n, d = np.asarray(n_params, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
        return compute_equivalent_factor(self.predict(n, d), loss, 6.0 * n * d, E=self.E, A=self.A, B=self.B,
                                         alpha=self.alpha, beta=self.beta)


def _allocation_exponents(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(β/(α+β), α/(α+β))``; NaN where ``α + β ≤ 0`` (no compute-optimal trade-off)."""
    total = alpha + beta
    safe = np.where(total > 0, total, np.nan)
    return beta / safe, alpha / safe


def _to_internal(inits: np.ndarray) -> np.ndarray:  # (a, b, e, α, β) → (a, b, α, β, e)
    return inits[:, [0, 1, 3, 4, 2]]


def _constants(theta: np.ndarray) -> np.ndarray:  # internal rows → (E, A, B, α, β)
    return np.stack([np.exp(theta[:, 4]), np.exp(theta[:, 0]), np.exp(theta[:, 1]), theta[:, 2], theta[:, 3]], axis=1)


def fit_chinchilla(n_params, tokens, loss, *, delta: float = 1e-3, inits: np.ndarray | None = None,
                   n_bootstrap: int = 0, bootstrap_starts: int = 4, confidence: float = 0.95, seed: int = 0,
                   max_iter: int = 2000, tol: float = 2.2e-9) -> ChinchillaFit:
    """Fit ``L = E + A/N^α + B/D^β`` by Hoffmann et al.'s Approach 3, with bootstrap intervals.

    .. math::

        \\min_{a, b, e, \\alpha, \\beta} \\sum_{i=1}^{n} \\mathrm{Huber}_\\delta\\Big(
            \\mathrm{LSE}\\big(a - \\alpha \\log N_i,\\; b - \\beta \\log D_i,\\; e\\big) - \\log L_i\\Big),
        \\qquad A = e^a,\\; B = e^b,\\; E = e^e,

    summed over runs (not averaged: with ``scipy``'s relative stopping test a mean makes the optimiser stop
    early, one of Besiroglu et al.'s findings). Every initialisation (default :func:`chinchilla_init_grid`,
    4,500 points) runs at once by a batched L-BFGS; the fit with the lowest objective is kept.

    Bootstrap: each of ``n_bootstrap`` resamples draws ``n`` runs with replacement (``seed``); it is refitted
    from the ``bootstrap_starts`` initialisations whose full-data fits reached the lowest objectives and from
    the full-data optimum, keeping the best; the intervals are the ``(1 ± confidence)/2`` percentiles of the
    refitted constants.

    Args:
        n_params: parameters ``N`` of each run, shape ``(n,)``.
        tokens: training tokens ``D`` of each run, shape ``(n,)``.
        loss: final loss ``L`` of each run, shape ``(n,)``, > 0.
        delta: Huber threshold ``δ`` on the log-loss residual.
        inits: initialisations, shape ``(K, 5)``, columns ``(a, b, e, α, β)``.
        n_bootstrap: bootstrap resamples (0: none).
        bootstrap_starts: grid initialisations each resample is refitted from (plus the optimum).
        confidence: coverage of the percentile intervals.
        seed: seeds the resampling (a local generator).
        max_iter: L-BFGS iterations per initialisation.
        tol: stop a start when an iteration lowers its objective by at most ``tol · max(|f|, 1)`` (the test
            and default of scipy's ``L-BFGS-B``, ``factr = 10⁷`` times machine epsilon).

    Returns:
        A :class:`ChinchillaFit`.

    Raises:
        ConfigError: for inputs that are not positive and finite, of unequal lengths or fewer than 6 runs;
            ``delta``, ``tol``, ``max_iter`` not > 0; ``n_bootstrap < 0``; ``confidence`` outside (0, 1);
            ``inits`` not of shape ``(K, 5)``.

    Source:
        Hoffmann et al. (2022), arXiv:2203.15556, §3.3 and App. D.2; Besiroglu, Erdil, Barnett, You (2024),
        arXiv:2404.10102, §2 and Table 1.
    """
    n = _positive_1d("n_params", n_params)
    d = _positive_1d("tokens", tokens, n.size)
    y = _positive_1d("loss", loss, n.size)
    require(n.size >= 6, f"fit_chinchilla needs at least 6 runs for 5 constants, got {n.size}")
    require(np.isfinite(delta) and delta > 0, f"delta must be finite and > 0, got {delta!r}")
    require(np.isfinite(tol) and tol > 0, f"tol must be finite and > 0, got {tol!r}")
    require(int(max_iter) == max_iter and max_iter >= 1, f"max_iter must be an integer >= 1, got {max_iter!r}")
    require(int(n_bootstrap) == n_bootstrap and n_bootstrap >= 0, f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    require(int(bootstrap_starts) == bootstrap_starts and bootstrap_starts >= 0,
            f"bootstrap_starts must be an integer >= 0, got {bootstrap_starts!r}")
    require(0 < confidence < 1, f"confidence must be in (0, 1), got {confidence!r}")
    grid = chinchilla_init_grid() if inits is None else np.asarray(inits, dtype=np.float64)
    require(grid.ndim == 2 and grid.shape[1] == 5 and grid.shape[0] >= 1 and bool(np.all(np.isfinite(grid))),
            f"inits must be a finite array of shape (K, 5) with columns (a, b, e, alpha, beta), got shape {grid.shape}")

    features, log_y = np.stack([np.log(n), np.log(d)]), np.log(y)
    fun = _HuberLogSumExp(features, log_y, delta, offset=True)
    theta, f, status = _batched_lbfgs(fun, _to_internal(grid), max_iter=int(max_iter), tol=tol)
    f = np.where(np.isfinite(f), f, np.inf)
    best = int(np.argmin(f))
    e_, a_, b_, alpha, beta = _constants(theta[best:best + 1])[0]

    intervals, samples = {}, None
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(n.size, np.full(n.size, 1.0 / n.size), size=int(n_bootstrap)).astype(np.float64)
        starts = np.concatenate([theta[best:best + 1], _to_internal(grid[np.argsort(f)[:bootstrap_starts]])])
        per = len(starts)
        boot_fun = _HuberLogSumExp(features, log_y, delta, offset=True, weights=np.repeat(weights, per, axis=0))
        theta_b, f_b, _ = _batched_lbfgs(boot_fun, np.tile(starts, (int(n_bootstrap), 1)), max_iter=int(max_iter), tol=tol)
        f_b = np.where(np.isfinite(f_b), f_b, np.inf).reshape(int(n_bootstrap), per)
        pick = np.arange(int(n_bootstrap)) * per + np.argmin(f_b, axis=1)
        samples = _constants(theta_b[pick])
        derived = np.stack(_allocation_exponents(samples[:, 3], samples[:, 4]), axis=1)
        lo, hi = np.percentile(np.concatenate([samples, derived], axis=1), [50 * (1 - confidence), 50 * (1 + confidence)], axis=0)
        intervals = {name: (float(a), float(b)) for name, a, b in zip((*CONSTANTS, "a", "b"), lo, hi)}
    return ChinchillaFit(E=float(e_), A=float(a_), B=float(b_), alpha=float(alpha), beta=float(beta), objective=float(f[best]),
                         n_points=int(n.size), n_inits=int(grid.shape[0]), n_stopped=int(np.sum(status == 0)),
                         confidence=confidence, intervals=intervals, bootstrap=samples)


# --- single-variable power laws and Approach 2 --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PowerLawFit:
    """A fit of ``y = E + A x^(−α)`` (``E = 0`` when fitted without offset); ``objective`` is the summed Huber loss."""

    E: float
    A: float
    alpha: float
    objective: float

    def predict(self, x) -> np.ndarray:
        """``E + A x^(−α)``."""
        return self.E + self.A * np.asarray(x, dtype=np.float64) ** -self.alpha


def fit_power_law(x, y, *, offset: bool = True, delta: float = 1e-3, max_iter: int = 2000, tol: float = 2.2e-9) -> PowerLawFit:
    """Fit ``y = E + A x^(−α)`` (or ``y = A x^(−α)`` with ``offset=False``) by Huber loss on ``log y``.

    .. math::

        \\min_{a, e, \\alpha} \\sum_i \\mathrm{Huber}_\\delta\\big(\\mathrm{LSE}(a - \\alpha \\log x_i,\\; e) - \\log y_i\\big),
        \\qquad A = e^a,\\; E = e^e

    — the one-variable version of :func:`fit_chinchilla`'s objective. Without the offset the objective is
    convex in ``(a, α)`` and is started from the least-squares line through ``(log x, log y)``; with it, from
    45 points: ``α ∈ {0, 0.25, …, 2}``, ``E ∈ {0.05, 0.25, 0.5, 0.75, 0.95} × min y``, and ``a`` putting the
    curve through the median point. ``α`` may come out negative (a rising law).

    Args:
        x: the scale variable (parameters, tokens, compute, steps), shape ``(n,)``, > 0.
        y: the quantity (a loss), shape ``(n,)``, > 0.
        offset: fit the irreducible term ``E``.
        delta, max_iter, tol: as in :func:`fit_chinchilla`.

    Returns:
        A :class:`PowerLawFit`.

    Raises:
        ConfigError: for values that are not finite and > 0, unequal lengths, or fewer points than
            constants plus one.

    Source:
        The single-variable laws of Kaplan et al. (2020), arXiv:2001.08361, eqs. (1.1)-(1.3), fitted as in
        Hoffmann et al. (2022), arXiv:2203.15556, App. D.2.

    >>> fit = fit_power_law([1.0, 10.0, 100.0], [2.0, 0.2, 0.02], offset=False)
    >>> round(fit.A, 9), round(fit.alpha, 9)
    (2.0, 1.0)
    """
    xs = _positive_1d("x", x)
    ys = _positive_1d("y", y, xs.size)
    need = 4 if offset else 3
    require(xs.size >= need, f"fit_power_law needs at least {need} points, got {xs.size}")
    require(np.isfinite(delta) and delta > 0, f"delta must be finite and > 0, got {delta!r}")
    lx, ly = np.log(xs), np.log(ys)
    if offset:
        alphas, fracs = np.arange(0.0, 2.25, 0.25), np.array([0.05, 0.25, 0.5, 0.75, 0.95])
        al, fr = (v.ravel() for v in np.meshgrid(alphas, fracs))
        e0 = np.log(fr * ys.min())
        a0 = np.log(np.maximum(np.median(ys) - np.exp(e0), 1e-3 * np.median(ys))) + al * np.median(lx)
        inits = np.stack([a0, al, e0], axis=1)
    else:
        slope, intercept = np.polyfit(lx, ly, 1)
        inits = np.array([[intercept, -slope]])
    fun = _HuberLogSumExp(lx[None, :], ly, delta, offset=offset)
    theta, f, _ = _batched_lbfgs(fun, inits, max_iter=max_iter, tol=tol)
    best = int(np.argmin(np.where(np.isfinite(f), f, np.inf)))
    e_ = float(np.exp(theta[best, 2])) if offset else 0.0
    return PowerLawFit(E=e_, A=float(np.exp(theta[best, 0])), alpha=float(theta[best, 1]), objective=float(f[best]))


@dataclass(frozen=True, kw_only=True)
class Approach2Fit:
    """Approach 2: per-budget optima and the power laws through them.

    Attributes:
        budgets: the isoFLOP budgets ``C``, shape ``(G,)``, ascending.
        n_opt, d_opt: the vertex of the parabola in ``log N`` (resp. ``log D``) per budget, shape ``(G,)``.
        loss_opt: the parabola's minimum loss per budget.
        a, n_coefficient: ``N_opt = n_coefficient · C^a``; b, d_coefficient: ``D_opt = d_coefficient · C^b``.
        skipped: budgets left out (too few runs, or a profile that is not convex).
    """

    budgets: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    a: float
    n_coefficient: float
    b: float
    d_coefficient: float
    skipped: tuple[float, ...] = ()

    def optimal(self, compute) -> tuple[np.ndarray, np.ndarray]:
        """``(N_opt(C), D_opt(C))`` from the two power laws."""
        c = np.asarray(compute, dtype=np.float64)
        return self.n_coefficient * c**self.a, self.d_coefficient * c**self.b


def _vertex(u: np.ndarray, loss: np.ndarray) -> tuple[float, float] | None:
    """``(exp(vertex), minimum)`` of the least-squares parabola of ``loss`` in ``u``; ``None`` when it is not
    convex or its vertex lies outside the sampled ``u`` (a profile seen on one side of its minimum only)."""
    c2, c1, c0 = np.polyfit(u, loss, 2)
    if not c2 > 0 or not u.min() <= -c1 / (2 * c2) <= u.max():
        return None
    return float(np.exp(-c1 / (2 * c2))), float(c0 - c1 * c1 / (4 * c2))


def fit_approach2(n_params, tokens, loss, budget, *, min_points: int = 3) -> Approach2Fit:
    """Hoffmann et al.'s Approach 2: a parabola per isoFLOP profile, then ``N_opt ∝ C^a``, ``D_opt ∝ C^b``.

    For each budget ``C`` (runs grouped by equal ``budget``) least-squares parabolas
    ``L ≈ c_0 + c_1 u + c_2 u²`` in ``u = log N`` and in ``u = log D`` give ``N_opt(C) = e^{−c_1/(2c_2)}``
    and ``D_opt(C)`` likewise; least-squares lines through ``(log C, log N_opt)`` and ``(log C, log D_opt)``
    give the exponents ``a`` and ``b``. For the Chinchilla surface ``a → β/(α+β)``, ``b → α/(α+β)`` as the
    profiles narrow; the parabola is exact only for ``α = β`` sampled symmetrically about the optimum.
    A profile whose parabola is not convex, or has its vertex outside the sampled model sizes (runs on one
    side of the minimum only), is skipped and its budget listed in ``skipped``.

    Args:
        n_params, tokens, loss: per run, shape ``(n,)``, > 0.
        budget: the nominal compute budget of each run's isoFLOP profile, shape ``(n,)`` (FLOP).
        min_points: runs a budget needs to be used (at least 3); smaller groups are skipped.

    Returns:
        An :class:`Approach2Fit`.

    Raises:
        ConfigError: for invalid inputs or fewer than 2 usable budgets.

    Source:
        Hoffmann et al. (2022), arXiv:2203.15556, §3.2 and Figure 3.
    """
    n = _positive_1d("n_params", n_params)
    d, y = _positive_1d("tokens", tokens, n.size), _positive_1d("loss", loss, n.size)
    c = _positive_1d("budget", budget, n.size)
    require(int(min_points) == min_points and min_points >= 3, f"min_points must be an integer >= 3, got {min_points!r}")
    rows, skipped = [], []
    for b in np.unique(c):
        m = c == b
        n_fit = _vertex(np.log(n[m]), y[m]) if m.sum() >= min_points else None
        d_fit = _vertex(np.log(d[m]), y[m]) if n_fit else None
        if n_fit and d_fit:
            rows.append((b, n_fit[0], d_fit[0], n_fit[1]))
        else:
            skipped.append(float(b))
    listed = ", ".join(f"{b:.3g}" for b in skipped) or "none"
    require(len(rows) >= 2, f"Approach 2 needs at least 2 budgets with >= {min_points} runs and an isoFLOP profile "
                            f"with its minimum inside, got {len(rows)} (skipped: {listed})")
    bs, n_opt, d_opt, loss_opt = (np.array(v) for v in zip(*rows))
    a, log_kn = np.polyfit(np.log(bs), np.log(n_opt), 1)
    b_, log_kd = np.polyfit(np.log(bs), np.log(d_opt), 1)
    return Approach2Fit(budgets=bs, n_opt=n_opt, d_opt=d_opt, loss_opt=loss_opt, a=float(a),
                        n_coefficient=float(np.exp(log_kn)), b=float(b_), d_coefficient=float(np.exp(log_kd)),
                        skipped=tuple(skipped))
