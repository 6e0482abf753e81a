"""Law ``eigenlearning``: the learning curve of kernel ridge regression follows from the kernel's spectrum.

A *population* is ``N`` points with the uniform measure: the scikit-learn digits under a Laplace (or
RBF) kernel, and a synthetic population whose kernel has a prescribed power-law spectrum. Its kernel
eigensystem is exact: ``λ_i`` are the eigenvalues of ``K/N`` and ``φ_i(x_j) = √N u_ij`` (so
``mean_j φ_i(x_j) φ_k(x_j) = δ_ik``). Training sets are drawn from the population, KRR is fitted, and
the error is measured on the whole population, against the eigenlearning estimate of Simon, Dickens,
Karkada, DeWeese (arXiv:2110.03922) fed that eigensystem.

Sampling. Training sets are drawn *without* replacement. Draws with replacement are the literal "n
i.i.d. samples from the population", but a repeated point adds nothing at ridge 0 (the interpolant of
a draw is the interpolant of its distinct points), so they waste about ``n²/2N`` samples and the
measured error at ``n = 1000, N = 2000`` (synthetic population, ridge 0) is 30 % above the estimate,
which counts every sample. A
continuous distribution never repeats a point; drawing without replacement keeps that property.

Finite population. Drawing ``n`` distinct rows of an (approximately Haar) orthonormal eigenbasis is a
random *projection* design rather than a Gaussian one. With the S-transform of a rank-``n`` projection
of an ``N``-dimensional space, ``S(w) = (1 + w)/(n + N w)``, in place of the Wishart one,
``1/(n + N w)``, the eigenlearning derivation gives (see :func:`lmech.theory.finite_population_eigenlearning`)

* ``Σ_i L_i + (δ/κ)(1 − Σ_i L_i / N) = n`` for κ, with ``L_i = λ_i/(λ_i + κ)`` as before;
* ``E_0 = (n − s Σ L_i / N) / (n − Σ L_i² − s (Σ L_i − Σ L_i²) / N)`` with ``s = δ/κ``;

both reduce to eigenlearning's at ``δ = 0`` (for any ``N``) and as ``N → ∞``. With ``δ > 0`` and
``n/N`` near one half the correction is 10-20 % of the test MSE; the law states the corrected
estimate and also draws eigenlearning's, which it is built on.

Bandwidth. On the digits, eigenfunctions far down the spectrum are localised on a handful of images
(Laplace kernel, bandwidth 1 × the median: ``mean_j φ_i(x_j)⁴`` up to about 850 ≈ N/2, against 3 for a
Gaussian). At ridge 0 and ``n/N ≳ 0.3`` a
draw interpolates such a mode wherever it samples its points, whatever its eigenvalue, and the
learnability it gains is lost by the modes above, which eigenlearning (Gaussian-like eigenfunctions)
does not foresee. The measured error at ``n = 1000`` then exceeds the estimate by about 5 % for a
Laplace kernel of bandwidth 0.2 × the median pairwise distance, 7 % at 0.25, 9 % at 0.3, 12 % at
0.4-0.5, and 25-40 % for an RBF kernel of bandwidth 0.5-2 × the median (the gap grows with ``n/N``:
at ``n = 100`` all are within about 6 %). The default is the Laplace kernel at 0.2: its spectrum is
far from flat (``λ_1/λ_N ≈ 56``, effective rank ``(Σλ)²/Σλ² ≈ 1,040`` of 1,797; the estimated test MSE
falls from 0.97 at n = 5 to 0.074 at n = 1,000, where a flat spectrum gives ``1 − n/N = 0.44``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from ..config import finite_positive, non_negative, one_of, require, valid_seed
from ..data.digits import NUM_EXAMPLES, load_digits
from ..errors import ConfigError
from ..progress import NO_PROGRESS, Progress
from ..theory.eigenlearning import FinitePopulationPrediction as Prediction
from ..theory.eigenlearning import eigenlearning, finite_population_eigenlearning
from ..train.records import Records
from .base import Check, Law, LawResult, Reference
from .plots_eigenlearning import eigenlearning_figure
from .registry import register

POPULATIONS = ("digits", "power-law")
KERNELS = ("laplace", "rbf")
MAX_POINTS = 4000  # the synthetic population's kernel is a dense N × N float64 matrix (128 MB at 4000)
CHECK_MIN_SIZE = 20  # the estimate is asymptotic in n; the test-MSE checks start at this training-set size
TEST_MSE_REL_TOL = 0.10  # measured mean test MSE against the estimate, relative
LEARNABILITY_ABS_TOL = 0.05  # measured mean learnability of each of the top modes, absolute
CURVE_POINTS = 40  # training-set sizes on each predicted curve, log-spaced (plus the measured sizes)


@dataclass(frozen=True, kw_only=True)
class EigenlearningConfig:
    """The eigenlearning experiment.

    Attributes:
        populations: which populations to run: ``"digits"`` (the 1,797 scikit-learn digits, target
            ``+1`` for an even digit and ``−1`` for an odd one, centred) and ``"power-law"`` (synthetic,
            spectrum ``λ_i ∝ i^(−alpha)``, target ``v_i ∝ ± i^(−beta/2)``).
        kernel: the digits kernel, ``"laplace"`` ``exp(−‖x − x'‖/ℓ)`` or ``"rbf"`` ``exp(−‖x − x'‖²/(2ℓ²))``.
        bandwidth: ``ℓ`` as a multiple of the median pairwise distance between the digits.
        num_points: ``N``, the size of the synthetic population (its kernel has rank ``N``).
        alpha: decay of the synthetic spectrum, ``λ_i ∝ i^(−alpha)``, normalised to ``Σ λ_i = 1``.
        beta: decay of the synthetic target power, ``v_i² ∝ i^(−beta)``, normalised to ``Σ v_i² = 1``.
        ridges: the ridges ``δ``, added to the unnormalised Gram matrix ``K(X, X) + δ I``; both kernels
            have mean diagonal 1 (``Σ λ_i = 1``), so ``δ`` is in units of ``K(x, x)``.
        sizes: the training-set sizes ``n`` (each below every population's size).
        num_draws: training sets drawn per size, at least. The test MSE of one draw at ``n = 1000`` is
            within about 5 % of the mean, so 50 draws pin the mean to about 0.7 %.
        points_per_size: small sizes get more draws, ``max(num_draws, ⌈points_per_size / n⌉)``, so that
            every size's mean is about as precise (the spread between draws falls with ``n``).
        num_modes: the top modes whose learnabilities are measured and checked (at every size).
        finite_population: compare with the finite-population estimate (draws without replacement from
            ``N`` points); ``False`` compares with eigenlearning's infinite-population one.
        seed: seeds the synthetic population and the draws.
    """

    populations: tuple[str, ...] = POPULATIONS
    kernel: str = "laplace"
    bandwidth: float = 0.2
    num_points: int = 2000
    alpha: float = 1.5
    beta: float = 1.2
    ridges: tuple[float, ...] = (0.0, 0.3)
    sizes: tuple[int, ...] = (5, 10, 20, 50, 100, 200, 500, 1000)
    num_draws: int = 50
    points_per_size: int = 5000
    num_modes: int = 10
    finite_population: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        require(len(self.populations) >= 1, f"populations must name at least one of {POPULATIONS}")
        for name in self.populations:
            one_of("population", name, POPULATIONS)
        require(len(set(self.populations)) == len(self.populations), f"populations must be distinct, got {self.populations}")
        one_of("kernel", self.kernel, KERNELS)
        finite_positive("bandwidth", self.bandwidth)
        require(2 <= self.num_points <= MAX_POINTS, f"num_points must be between 2 and {MAX_POINTS}, got {self.num_points}")
        finite_positive("alpha", self.alpha)
        require(math.isfinite(self.beta) and self.beta >= 0, f"beta must be finite and >= 0, got {self.beta!r}")
        require(len(self.ridges) >= 1, "ridges must name at least one ridge, e.g. ridges=0,0.3")
        for ridge in self.ridges:
            require(math.isfinite(ridge) and ridge >= 0, f"ridge must be finite and >= 0, got {ridge!r}")
        require(len(set(self.ridges)) == len(self.ridges), f"ridges must be distinct, got {self.ridges}")
        require(len(self.sizes) >= 1, "sizes must name at least one training-set size, e.g. sizes=5,20,100")
        for n in self.sizes:
            require(isinstance(n, int) and n >= 1, f"sizes must be whole numbers >= 1, got {n!r}")
        require(len(set(self.sizes)) == len(self.sizes), f"sizes must be distinct, got {self.sizes}")
        require(max(self.sizes) >= CHECK_MIN_SIZE,
                f"sizes must include one n >= {CHECK_MIN_SIZE} (the checks start there), got {self.sizes}")
        for name in self.populations:
            limit = NUM_EXAMPLES if name == "digits" else self.num_points
            require(max(self.sizes) < limit,
                    f"sizes must stay below the {name} population's {limit} points, got n={max(self.sizes)}")
        require(self.num_draws >= 2, f"num_draws must be >= 2 (the spread needs two), got {self.num_draws}")
        non_negative("points_per_size", self.points_per_size)
        limit = min(NUM_EXAMPLES if name == "digits" else self.num_points for name in self.populations)
        require(1 <= self.num_modes <= limit, f"num_modes must be between 1 and {limit}, got {self.num_modes}")
        valid_seed(self.seed)


@dataclass(frozen=True, eq=False)
class Population:
    """``N`` points with the uniform measure, their kernel and its exact eigensystem (float64).

    Attributes:
        name: ``"digits"`` or ``"power-law"``.
        kernel: ``K(x_j, x_k)``, of shape ``(N, N)``.
        eigenvalues: ``λ_i`` of ``K/N``, descending, of shape ``(N,)``.
        eigenfunctions: ``φ_i(x_j)`` in column ``i``, of shape ``(N, N)``, with ``ΦᵀΦ/N = I``.
        target: ``f(x_j)``, of shape ``(N,)``.
    """

    name: str
    kernel: Tensor
    eigenvalues: Tensor
    eigenfunctions: Tensor
    target: Tensor

    @property
    def size(self) -> int:
        return len(self.target)

    @cached_property
    def target_coeffs(self) -> Tensor:
        """``v_i = mean_j φ_i(x_j) f(x_j)``, of shape ``(N,)``; ``Σ v_i² = mean_j f(x_j)²``."""
        return self.eigenfunctions.T @ self.target / self.size


def _eigensystem(kernel: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues of ``K/N`` (descending, round-off negatives set to 0) and ``φ = √N U``."""
    n = len(kernel)
    lam, vecs = torch.linalg.eigh(kernel / n)
    return lam.flip(0).clamp_min(0.0), math.sqrt(n) * vecs.flip(1)


def digits_population(kernel: str = "laplace", bandwidth: float = 0.2) -> Population:
    """The 1,797 digits (raw pixels 0..16), parity target ``±1`` centred, and a Laplace or RBF kernel of
    bandwidth ``bandwidth`` × the median pairwise distance."""
    train, test = load_digits(NUM_EXAMPLES - 1, 1, standardize=False, dtype=torch.float64)
    x = torch.cat([train.inputs, test.inputs])
    labels = torch.cat([train.labels, test.labels])
    dist = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    rows, cols = torch.triu_indices(len(x), len(x), offset=1)
    scale = bandwidth * float(np.median(dist[rows, cols].numpy()))
    gram = torch.exp(-dist / scale) if kernel == "laplace" else torch.exp(-(dist**2) / (2 * scale**2))
    target = torch.where(labels % 2 == 0, 1.0, -1.0).to(torch.float64)
    lam, phi = _eigensystem(gram)
    return Population("digits", gram, lam, phi, target - target.mean())


def power_law_population(num_points: int = 2000, alpha: float = 1.5, beta: float = 1.2, seed: int = 0) -> Population:
    """``N`` points whose features are the rows of a random orthogonal matrix scaled by ``√(N λ_i)``: the
    linear kernel on them has exactly the spectrum ``λ_i ∝ i^(−alpha)`` (``Σ λ_i = 1``) under the uniform
    measure, with delocalised eigenfunctions. Target coefficients ``v_i ∝ ± i^(−beta/2)``, random signs."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(num_points, num_points, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
    i = torch.arange(1, num_points + 1, dtype=torch.float64)
    lam = i**-alpha / torch.sum(i**-alpha)
    features = q * torch.sqrt(num_points * lam)
    signs = torch.randint(0, 2, (num_points,), generator=gen).to(torch.float64) * 2 - 1
    coeffs = i ** (-beta / 2) * signs
    coeffs /= torch.linalg.norm(coeffs)
    phi = math.sqrt(num_points) * q
    return Population("power-law", features @ features.T, lam, phi, phi @ coeffs)


@dataclass(frozen=True)
class Measured:
    """KRR on one population at one ridge and size, over ``draws`` training sets.

    Attributes:
        test_mse, test_mse_sd: mean and standard deviation over draws of ``mean_j (f̂(x_j) − f(x_j))²``.
        learnability, learnability_sd: mean and standard deviation over draws of ``⟨φ_i, f̂_i⟩`` where
            ``f̂_i`` is KRR fitted to ``φ_i``, for the top modes, of shape ``(num_modes,)``.
        draws: the number of training sets.
    """

    test_mse: float
    test_mse_sd: float
    learnability: np.ndarray
    learnability_sd: np.ndarray
    draws: int


def num_draws_at(n: int, num_draws: int, points_per_size: int) -> int:
    """``max(num_draws, ⌈points_per_size / n⌉)``."""
    return max(num_draws, -(-points_per_size // n))


def measure(population: Population, sizes, ridges, *, num_draws: int, points_per_size: int, num_modes: int,
            seed: int, progress: Progress = NO_PROGRESS) -> dict[tuple[float, int], Measured]:
    """KRR on training sets drawn without replacement, evaluated on the whole population.

    One ``(n, n)`` Cholesky factorisation per draw and ridge solves for the target and the top
    ``num_modes`` eigenfunctions at once (KRR is linear in the labels); every ridge sees the same draws.
    The draws of size ``n`` come from ``numpy.random.default_rng([seed, crc32(population.name), n])``.

    Returns:
        ``(ridge, n)`` → :class:`Measured`.

    Raises:
        ConfigError: if ``K(X, X) + δ I`` is not numerically positive definite (ridge 0 with a kernel too
            wide for float64).
    """
    f, phi, gram = population.target, population.eigenfunctions[:, :num_modes], population.kernel
    labels = torch.column_stack([f, phi])
    code = zlib.crc32(population.name.encode())
    out = {}
    for n in sizes:
        rng = np.random.default_rng([seed, code, n])
        draws = num_draws_at(n, num_draws, points_per_size)
        eye = torch.eye(n, dtype=gram.dtype)
        mse = {r: torch.empty(draws, dtype=gram.dtype) for r in ridges}
        learn = {r: torch.empty(draws, num_modes, dtype=gram.dtype) for r in ridges}
        for t in range(draws):
            idx = torch.from_numpy(rng.choice(population.size, n, replace=False))
            k_px = gram[:, idx]
            k_xx = k_px[idx]
            for r in ridges:
                chol, info = torch.linalg.cholesky_ex(k_xx + r * eye)
                if info != 0:
                    raise ConfigError(
                        f"K(X, X) + {r:g}·I is not numerically positive definite for the {population.name} "
                        f"population at n={n}; use a ridge > 0 or a smaller bandwidth")
                fitted = k_px @ torch.cholesky_solve(labels[idx], chol)
                mse[r][t] = torch.mean((fitted[:, 0] - f) ** 2)
                learn[r][t] = torch.mean(fitted[:, 1:] * phi, dim=0)
        for r in ridges:
            out[(r, n)] = Measured(float(mse[r].mean()), float(mse[r].std()), learn[r].mean(0).numpy(),
                                   learn[r].std(0).numpy(), draws)
        progress.advance()
    return out


def predict(population: Population, n: int, ridge: float, *, finite_population: bool = True) -> Prediction:
    """The estimate for ``population`` at size ``n`` and ridge ``ridge``, finite-population or not."""
    lam, v = population.eigenvalues.numpy(), population.target_coeffs.numpy()
    if finite_population:
        return finite_population_eigenlearning(lam, v, n, ridge=ridge, population_size=population.size)
    p = eigenlearning(lam, v, n, ridge=ridge)
    return Prediction(p.kappa, p.learnability, p.e0, p.test_mse)


def compare(name: str, measured: Mapping[tuple[float, int], Measured],
            predicted: Mapping[tuple[float, int], Prediction], ridges, sizes) -> list[Check]:
    """Per ridge: the test MSE within 10 % at every ``n ≥ 20`` (one check each), and the top modes'
    learnabilities within 0.05 at every ``n`` (one check: the worst mode and size)."""
    checks = []
    for r in ridges:
        for n in (n for n in sizes if n >= CHECK_MIN_SIZE):
            checks.append(Check.within(f"{name} δ={r:g} n={n}: test MSE", measured[(r, n)].test_mse,
                                       predicted[(r, n)].test_mse, TEST_MSE_REL_TOL))
        k = len(measured[(r, sizes[0])].learnability)
        checks.append(Check.at_most(f"{name} δ={r:g}: learnability of the top {k} modes, max |L̂_i − L_i| over every n",
                                    learnability_error(measured, predicted, r, sizes), LEARNABILITY_ABS_TOL))
    return checks


def learnability_error(measured: Mapping[tuple[float, int], Measured], predicted: Mapping[tuple[float, int], Prediction],
                       ridge: float, sizes) -> float:
    """``max |L̂_i − L_i|`` over the measured modes and ``sizes``."""
    k = len(measured[(ridge, sizes[0])].learnability)
    return max(float(np.max(np.abs(measured[(ridge, n)].learnability - predicted[(ridge, n)].learnability[:k])))
               for n in sizes)


def _curve_sizes(sizes) -> np.ndarray:
    grid = np.geomspace(min(sizes), max(sizes), CURVE_POINTS).round().astype(int)
    return np.unique(np.concatenate([grid, np.asarray(sizes)]))


def _records(name: str, measured: Mapping[tuple[float, int], Measured]) -> Records:
    records = Records()
    for (r, n), m in measured.items():
        index = {"population": name, "ridge": r}
        records.add(n, "test_mse", m.test_mse, **index)
        records.add(n, "test_mse_sd", m.test_mse_sd, **index)
        records.add(n, "draws", m.draws, **index)
        for i, (value, sd) in enumerate(zip(m.learnability, m.learnability_sd), start=1):
            records.add(n, "learnability", value, mode=i, **index)
            records.add(n, "learnability_sd", sd, mode=i, **index)
    return records


@register
class Eigenlearning(Law):
    name = "eigenlearning"
    title = "Eigenlearning: KRR learning curves from the kernel's spectrum"
    pillar = "solvable-settings"
    references = (
        Reference("Simon, Dickens, Karkada, DeWeese. The Eigenlearning Framework: A Conservation Law Perspective "
                  "on Kernel Regression and Wide Neural Networks. TMLR 2023", "2110.03922"),
        Reference("Bordelon, Canatar, Pehlevan. Spectrum Dependent Learning Curves in Kernel Regression and "
                  "Wide Neural Networks. ICML 2020", "2002.02561"),
        Reference("Canatar, Bordelon, Pehlevan. Spectral bias and task-model alignment explain generalization "
                  "in kernel regression and infinitely wide neural networks. Nat. Commun. 2021", "2006.13198"),
        Reference("Simon, Kunin et al. There Will Be a Scientific Theory of Deep Learning. 2026", "2604.21691"),
    )
    statement = ("Kernel ridge regression on n samples learns eigenmode i of the kernel to the fraction "
                 "L_i = λ_i/(λ_i + κ), with κ fixed by Σ_i L_i + δ/κ = n, and its test MSE is "
                 "E_0 Σ_i (1 − L_i)² v_i² with E_0 = n/(n − Σ_i L_i²): the whole learning curve follows from "
                 "the spectrum λ_i and the target's coefficients v_i. Drawing the n points without "
                 "replacement from a population of N, with a ridge, lmech's finite-population correction "
                 "(not in the references) replaces δ/κ by (δ/κ)(1 − Σ_i L_i/N) and corrects E_0 to match; "
                 "at δ = 0 the estimate is the published one.")
    Config = EigenlearningConfig
    presets = {
        "quick": dict(num_draws=30, points_per_size=2000),
        "full": dict(sizes=(5, 10, 20, 35, 50, 100, 200, 350, 500, 750, 1000), ridges=(0.0, 0.03, 0.3),
                     num_draws=100, points_per_size=20000),
    }

    def run(self, config: EigenlearningConfig, progress: Progress = NO_PROGRESS) -> LawResult:
        records, curves, checks, summary, panels = Records(), [], [], {}, []
        for name in config.populations:
            progress.task(f"{self.name}: the {name} population's eigensystem", 1)
            population = self.population(config, name)
            progress.advance()
            progress.task(f"{self.name}: KRR on the {name} population, {len(config.sizes)} sizes", len(config.sizes))
            measured = measure(population, config.sizes, config.ridges, num_draws=config.num_draws,
                               points_per_size=config.points_per_size, num_modes=config.num_modes,
                               seed=config.seed, progress=progress)
            grid = _curve_sizes(config.sizes)
            predicted = {(r, int(n)): predict(population, int(n), r, finite_population=config.finite_population)
                         for r in config.ridges for n in grid}
            checks += compare(name, measured, predicted, config.ridges, config.sizes)
            records.extend(_records(name, measured))
            curves += self._curves(name, predicted, population, config)
            checked = [n for n in config.sizes if n >= CHECK_MIN_SIZE]
            for r in config.ridges:
                rel = [abs(measured[(r, n)].test_mse / predicted[(r, n)].test_mse - 1) for n in checked]
                summary[f"{name} δ={r:g}: max relative test-MSE error, n ≥ {CHECK_MIN_SIZE}"] = float(max(rel))
                summary[f"{name} δ={r:g}: max learnability error"] = learnability_error(measured, predicted, r,
                                                                                       config.sizes)
                if config.finite_population and r > 0:  # what the published estimate alone would have scored
                    plain = [abs(measured[(r, n)].test_mse / predict(population, n, r, finite_population=False).test_mse
                                 - 1) for n in checked]
                    summary[f"{name} δ={r:g}: max relative error of the published (infinite-population) "
                            f"estimate, n ≥ {CHECK_MIN_SIZE}"] = float(max(plain))
            panels.append(name)
        curve_table = pa.Table.from_pylist(curves)
        figure = eigenlearning_figure(records, curve_table, panels, config.ridges, config.num_modes)
        return LawResult(records, curve_table, checks, {"eigenlearning": figure}, summary)

    @staticmethod
    def population(config: EigenlearningConfig, name: str) -> Population:
        """The population ``name`` as ``config`` sets it up."""
        if name == "digits":
            return digits_population(config.kernel, config.bandwidth)
        return power_law_population(config.num_points, config.alpha, config.beta, config.seed)

    @staticmethod
    def _curves(name, predicted, population, config) -> list[dict]:
        rows = []
        for (r, n), p in predicted.items():
            rows.append({"curve": "test_mse", "x": float(n), "y": p.test_mse, "population": name, "ridge": r, "mode": None})
            rows += [{"curve": "learnability", "x": float(n), "y": float(p.learnability[i]), "population": name,
                      "ridge": r, "mode": i + 1} for i in range(config.num_modes)]
            if config.finite_population and r > 0:
                plain = predict(population, n, r, finite_population=False).test_mse
                rows.append({"curve": "test_mse_infinite_population", "x": float(n), "y": plain,
                             "population": name, "ridge": r, "mode": None})
        return rows
