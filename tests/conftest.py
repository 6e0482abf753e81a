"""Shared fixtures: a seed, a small float64 problem, and brute-force references.

The problem is a tanh MLP ``8 → 40 → 40 → 3`` (2,123 parameters) in float64 on 64 random
examples with the mean squared error, small enough that its dense Hessian (2,123 × 2,123) is a
fraction of a second with :func:`torch.func.hessian`. Fixtures that tests may mutate (the model)
are built fresh for every test; expensive references computed from the *same* seed are cached for
the session.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

from lmech.models import mlp

LossFn = Callable[[Tensor, Tensor], Tensor]

# The test models are tiny: one thread is faster than two, and two threads per process thrash when
# several jobs share the machine's cores (measured: 20× slower), which CI must not depend on.
torch.set_num_threads(1)


def mean_mse(outputs: Tensor, targets: Tensor) -> Tensor:
    """Mean over examples (and outputs) of the squared error; a mean, as lmech's losses must be."""
    return ((outputs - targets) ** 2).mean()


@dataclass(frozen=True)
class Problem:
    """A model, a mean loss and one batch of data: the arguments of every curvature observable."""

    model: nn.Module
    loss_fn: LossFn
    inputs: Tensor  # (n_samples, in_features)
    targets: Tensor  # (n_samples, out_features)

    @property
    def data(self) -> tuple[Tensor, Tensor]:
        return self.inputs, self.targets

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def chunks(self, sizes: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        """The data split into consecutive ``(inputs, targets)`` chunks of the given sizes."""
        if sum(sizes) != len(self.inputs):
            raise ValueError(f"chunk sizes must add up to {len(self.inputs)}, got {list(sizes)}")
        return list(zip(torch.split(self.inputs, list(sizes)), torch.split(self.targets, list(sizes))))


def make_problem(
    *,
    in_features: int = 8,
    widths: Sequence[int] = (40, 40),
    out_features: int = 3,
    n_samples: int = 64,
    seed: int = 0,
    target_scale: float = 1.0,
) -> Problem:
    """A float64 tanh MLP on standard-normal inputs and targets (times ``target_scale``), seeded."""
    model = mlp(in_features, widths, out_features, activation="tanh", dtype=torch.float64, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n_samples, in_features, generator=gen, dtype=torch.float64)
    targets = target_scale * torch.randn(n_samples, out_features, generator=gen, dtype=torch.float64)
    return Problem(model, mean_mse, inputs, targets)


def dense_hessian(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor) -> Tensor:
    """Brute force: the Hessian of ``loss_fn(model(inputs), targets)`` with respect to the model's
    trainable parameters, flattened in ``named_parameters()`` order, by :func:`torch.func.hessian`.
    Shape ``(num_params, num_params)``; parameters the loss ignores get zero rows and columns."""
    named = [(n, p.detach()) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    numels = [p.numel() for _, p in named]
    flat = torch.cat([p.reshape(-1) for _, p in named])

    def loss_of_flat(theta: Tensor) -> Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(theta, numels), shapes)}
        return loss_fn(functional_call(model, params, (inputs,)), targets)

    with warnings.catch_warnings():
        # torch's forward-mode AD scripts a helper on first use and warns about its own deprecation.
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
        return torch.func.hessian(loss_of_flat)(flat)


@pytest.fixture(scope="session")
def seed() -> int:
    """The one seed tests derive their randomness from (models, data, probe and start vectors)."""
    return 1234


@pytest.fixture
def generator(seed: int) -> torch.Generator:
    """A private torch generator; tests never touch the global RNG."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def mlp_problem(seed: int) -> Problem:
    """The small float64 tanh MLP problem, built fresh for each test (tests may train it)."""
    return make_problem(seed=seed)


@pytest.fixture(scope="session")
def mlp_hessian(seed: int) -> Tensor:
    """The dense Hessian of ``mlp_problem`` at initialisation, computed once per session."""
    problem = make_problem(seed=seed)
    return dense_hessian(problem.model, problem.loss_fn, *problem.data)


@pytest.fixture(scope="session")
def mlp_eigh(mlp_hessian: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues of ``mlp_hessian``, descending, shape ``(num_params,)``, and the matching
    eigenvectors as columns, shape ``(num_params, num_params)``."""
    values, vectors = torch.linalg.eigh(mlp_hessian)
    return values.flip(0), vectors.flip(1)


@pytest.fixture(scope="session")
def mlp_spectrum(mlp_eigh: tuple[Tensor, Tensor]) -> Tensor:
    """Eigenvalues of ``mlp_hessian``, descending."""
    return mlp_eigh[0]


@pytest.fixture(scope="session")
def problem_factory() -> Callable[..., Problem]:
    """:func:`make_problem`, for tests that need another size or seed (test modules cannot import
    from conftest under ``--import-mode=importlib``)."""
    return make_problem


@pytest.fixture(scope="session")
def brute_force_hessian() -> Callable[[nn.Module, LossFn, Tensor, Tensor], Tensor]:
    """:func:`dense_hessian`, the brute-force reference."""
    return dense_hessian
