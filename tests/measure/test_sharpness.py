"""Top Hessian eigenvalues (Lanczos, power iteration) against ``torch.linalg.eigvalsh`` (float64)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lmech.errors import ConfigError, LmechWarning
from lmech.measure import hessian_eigenpairs, hessian_eigenvalues, lanczos, power_iteration, sharpness

RTOL = 1e-6
EXACT = dict(tol=1e-10, num_matvecs=400)  # Lanczos settings that converge on the 2,123-parameter problem


def _symmetric_matrix(eigenvalues: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``Q diag(eigenvalues) Qᵀ`` with a random orthogonal ``Q``; returns the matrix and ``Q``."""
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return (q * eigenvalues) @ q.T, q


DATA_LAYOUTS = [
    pytest.param(lambda p: p.data, id="one-batch"),
    pytest.param(lambda p: p.chunks([30, 9, 25]), id="three-uneven-chunks"),
    pytest.param(lambda p: DataLoader(TensorDataset(*p.data), batch_size=20), id="dataloader"),
]


@pytest.mark.parametrize("layout", DATA_LAYOUTS)
def test_lanczos_top3_matches_dense_spectrum(layout, mlp_problem, mlp_hessian, mlp_spectrum, seed):
    result = hessian_eigenpairs(mlp_problem.model, mlp_problem.loss_fn, layout(mlp_problem), 3, seed=seed, **EXACT)
    assert result.converged
    assert result.num_matvecs < EXACT["num_matvecs"]
    torch.testing.assert_close(result.eigenvalues, mlp_spectrum[:3], rtol=RTOL, atol=0)
    assert result.eigenvectors.shape == (3, mlp_problem.num_params)
    for value, vector in zip(result.eigenvalues, result.eigenvectors):
        assert float(vector.norm()) == pytest.approx(1.0, rel=1e-10)
        residual = mlp_hessian @ vector - value * vector
        assert float(residual.norm()) <= 1e-6 * float(value)


def test_hessian_eigenvalues_returns_the_eigenpairs_values(mlp_problem, seed):
    args = (mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, 3)
    values = hessian_eigenvalues(*args, seed=seed, **EXACT)
    assert values.dtype == torch.float64 and values.shape == (3,)
    assert torch.equal(values, hessian_eigenpairs(*args, seed=seed, **EXACT).eigenvalues)
    assert bool((values[:-1] >= values[1:]).all())  # descending


def test_power_iteration_top1_matches_when_the_top_eigenvalue_dominates(mlp_problem, mlp_spectrum, seed):
    assert float(mlp_spectrum[0]) > 2 * float(mlp_spectrum[-1].abs())  # λ_max dominates |λ_min|
    result = hessian_eigenpairs(
        mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, method="power", tol=1e-7, num_matvecs=1000, seed=seed
    )
    assert result.converged
    assert float(result.eigenvalues[0]) == pytest.approx(float(mlp_spectrum[0]), rel=1e-4)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_sharpness_is_the_top_eigenvalue(method, mlp_problem, seed):
    args = (mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data)
    kwargs = dict(method=method, num_matvecs=400, tol=1e-10 if method == "lanczos" else 1e-4, seed=seed)
    value = sharpness(*args, **kwargs)
    assert isinstance(value, float)
    assert value == float(hessian_eigenvalues(*args, 1, **kwargs)[0])


def test_lanczos_on_an_explicit_matrix_returns_the_top_k(generator, seed):
    spectrum = torch.cat([torch.tensor([10.0, 8.0, 6.0, 5.0, 4.0]), torch.linspace(-3.0, 3.0, 195)]).double()
    a, _ = _symmetric_matrix(spectrum, generator)
    result = lanczos(lambda v: a @ v, 200, 5, num_matvecs=200, tol=1e-10, seed=seed)
    assert result.converged
    assert result.num_matvecs < 200
    torch.testing.assert_close(result.eigenvalues, torch.tensor([10.0, 8.0, 6.0, 5.0, 4.0]).double(), rtol=1e-9, atol=0)


def test_lanczos_finds_the_largest_algebraic_and_power_the_largest_magnitude(generator, seed):
    spectrum = torch.cat([torch.tensor([-9.0, 3.0]), torch.linspace(-1.0, 1.0, 48)]).double()
    a, _ = _symmetric_matrix(spectrum, generator)
    top = lanczos(lambda v: a @ v, 50, 1, num_matvecs=50, tol=1e-10, seed=seed)
    assert float(top.eigenvalues[0]) == pytest.approx(3.0, rel=1e-9)
    loudest = power_iteration(lambda v: a @ v, 50, 1, num_matvecs=500, tol=1e-10, seed=seed)
    assert float(loudest.eigenvalues[0]) == pytest.approx(-9.0, rel=1e-6)


def test_power_iteration_deflates_to_the_top_two(generator, seed):
    spectrum = torch.cat([torch.tensor([10.0, 5.0]), torch.linspace(0.0, 1.0, 38)]).double()
    a, q = _symmetric_matrix(spectrum, generator)
    result = power_iteration(lambda v: a @ v, 40, 2, num_matvecs=500, tol=1e-12, seed=seed, return_eigenvectors=True)
    torch.testing.assert_close(result.eigenvalues, torch.tensor([10.0, 5.0]).double(), rtol=1e-6, atol=0)
    overlaps = (result.eigenvectors @ q[:, :2]).abs()
    torch.testing.assert_close(overlaps, torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-4)


def test_lanczos_with_a_full_krylov_space_is_exact(generator, seed):
    spectrum = torch.linspace(-2.0, 7.0, 12).double()
    a, _ = _symmetric_matrix(spectrum, generator)
    result = lanczos(lambda v: a @ v, 12, 12, num_matvecs=50, tol=1e-12, seed=seed)
    assert result.converged and result.num_matvecs == 12
    torch.testing.assert_close(result.eigenvalues, spectrum.flip(0), rtol=0, atol=1e-10)


def test_warm_start_at_the_top_eigenvector_converges_at_once(mlp_problem, mlp_eigh, mlp_spectrum, seed):
    v0 = mlp_eigh[1][:, 0]
    args = (mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data)
    warm = hessian_eigenpairs(*args, tol=1e-8, num_matvecs=100, v0=v0)
    cold = hessian_eigenpairs(*args, tol=1e-8, num_matvecs=100, seed=seed)
    assert warm.converged and cold.converged
    assert warm.num_matvecs <= 3 < 10 <= cold.num_matvecs
    assert float(warm.eigenvalues[0]) == pytest.approx(float(mlp_spectrum[0]), rel=RTOL)


def test_warm_start_at_an_exact_eigenvector_still_finds_the_top_k(seed):
    """The Krylov space of an exact eigenvector is invariant after one product (β = 0); Lanczos must
    carry on from a fresh direction rather than divide by zero."""
    a = torch.diag(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
    v0 = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    result = lanczos(lambda v: a @ v, 5, 2, num_matvecs=5, tol=1e-10, v0=v0, seed=seed)
    assert result.converged
    torch.testing.assert_close(result.eigenvalues, torch.tensor([5.0, 4.0], dtype=torch.float64), rtol=1e-12, atol=0)


BAD_SETTINGS = [
    pytest.param(dict(k=0), "k must be between", id="k-zero"),
    pytest.param(dict(k=10**6), "k must be between", id="k-above-num-params"),
    pytest.param(dict(tol=0.0), "tol must be > 0", id="tol-zero"),
    pytest.param(dict(tol=-1e-3), "tol must be > 0", id="tol-negative"),
    pytest.param(dict(k=3, num_matvecs=2), "num_matvecs must be >= k", id="num-matvecs-below-k"),
    pytest.param(dict(method="arnoldi"), "method must be one of", id="unknown-method"),
]


@pytest.mark.parametrize("method", ["lanczos", "power"])
@pytest.mark.parametrize("settings, message", BAD_SETTINGS)
def test_bad_settings_raise_config_error(settings, message, method, mlp_problem):
    kwargs = {"method": method, **settings}
    with pytest.raises(ConfigError, match=message):
        hessian_eigenvalues(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, **kwargs)


@pytest.mark.parametrize("solver", [lanczos, power_iteration], ids=["lanczos", "power_iteration"])
@pytest.mark.parametrize(
    "settings, message",
    [
        pytest.param(dict(k=0), "k must be between", id="k-zero"),
        pytest.param(dict(k=5), "k must be between", id="k-above-dim"),
        pytest.param(dict(tol=0.0), "tol must be > 0", id="tol-zero"),
        pytest.param(dict(k=2, num_matvecs=1), "num_matvecs must be >= k", id="num-matvecs-below-k"),
    ],
)
def test_solvers_validate_their_arguments(solver, settings, message):
    with pytest.raises(ConfigError, match=message):
        solver(lambda v: v, 4, **settings)


@pytest.mark.parametrize(
    "v0",
    [
        pytest.param(torch.zeros(4, dtype=torch.float64), id="zero"),
        pytest.param(torch.ones(5, dtype=torch.float64), id="wrong-shape"),
        pytest.param(torch.tensor([1.0, float("nan"), 0.0, 0.0], dtype=torch.float64), id="nan"),
    ],
)
def test_lanczos_rejects_a_bad_start_vector(v0):
    with pytest.raises(ConfigError, match="v0 must be"):
        lanczos(lambda v: v, 4, v0=v0)


def test_too_small_a_budget_is_reported_not_hidden(mlp_problem, seed):
    result = lanczos(lambda v: v * torch.arange(1.0, 101.0, dtype=torch.float64), 100, num_matvecs=3, tol=1e-10, seed=seed)
    assert not result.converged and result.num_matvecs == 3
    with pytest.warns(LmechWarning):
        hessian_eigenvalues(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, num_matvecs=3, tol=1e-10)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_results_are_deterministic_given_the_seed(method, mlp_problem, seed):
    args = (mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, 2)
    tol = 1e-10 if method == "lanczos" else 1e-5
    kwargs = dict(method=method, num_matvecs=400, tol=tol)
    first = hessian_eigenpairs(*args, seed=seed, **kwargs)
    second = hessian_eigenpairs(*args, seed=seed, **kwargs)
    assert first.num_matvecs == second.num_matvecs
    assert torch.equal(first.eigenvalues, second.eigenvalues)
    assert torch.equal(first.eigenvectors, second.eigenvectors)
    other = hessian_eigenpairs(*args, seed=seed + 1, **kwargs)  # another start, the same answer
    torch.testing.assert_close(other.eigenvalues, first.eigenvalues, rtol=1e3 * tol, atol=0)
