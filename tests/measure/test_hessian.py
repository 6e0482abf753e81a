"""Hessian-vector products against the dense Hessian from ``torch.func.hessian`` (float64)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lmech.errors import ConfigError, LmechError, TrainModeError
from lmech.measure import HessianOperator, hessian_eigenvalues, hessian_trace, hvp, sharpness

RTOL = 1e-6


def _random_vector(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(n, generator=generator, dtype=torch.float64)


def _assert_matches_dense(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # atol scaled to the product: entries that cancel to ~0 carry rounding of order eps·|H||v|.
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=RTOL * float(expected.abs().max()))


# Each layout holds the same 64 examples; the Hessian of the mean loss must not depend on it.
DATA_LAYOUTS = [
    pytest.param(lambda p, gen: p.data, id="one-batch"),
    pytest.param(lambda p, gen: p.chunks([30, 9, 25]), id="three-uneven-chunks"),
    pytest.param(lambda p, gen: DataLoader(TensorDataset(*p.data), batch_size=20), id="dataloader"),
    pytest.param(
        lambda p, gen: DataLoader(TensorDataset(*p.data), batch_size=24, shuffle=True, generator=gen),
        id="shuffled-dataloader",
    ),
]


@pytest.mark.parametrize("layout", DATA_LAYOUTS)
def test_hvp_matches_dense_hessian(layout, mlp_problem, mlp_hessian, generator):
    data = layout(mlp_problem, generator)
    for _ in range(3):
        v = _random_vector(mlp_problem.num_params, generator)
        _assert_matches_dense(hvp(mlp_problem.model, mlp_problem.loss_fn, data, v), mlp_hessian @ v)


def test_operator_reuses_cached_graph_across_products(mlp_problem, mlp_hessian, generator):
    op = HessianOperator(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data)
    vs = [_random_vector(op.num_params, generator) for _ in range(4)]
    for v in vs + vs:  # a second pass through the cached first-order graph gives the same products
        _assert_matches_dense(op @ v, mlp_hessian @ v)


def test_hvp_of_a_basis_vector_is_a_hessian_column(mlp_problem, mlp_hessian):
    e = torch.zeros(mlp_problem.num_params, dtype=torch.float64)
    e[17] = 1.0
    _assert_matches_dense(hvp(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, e), mlp_hessian[:, 17])


def test_hvp_under_no_grad_still_differentiates(mlp_problem, mlp_hessian, generator):
    v = _random_vector(mlp_problem.num_params, generator)
    with torch.no_grad():
        hv = hvp(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, v)
    _assert_matches_dense(hv, mlp_hessian @ v)


def test_hvp_with_list_of_tensors_returns_parameter_shapes(mlp_problem, mlp_hessian, generator):
    params = list(mlp_problem.model.parameters())
    v = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in params]
    hv = hvp(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, v)
    assert isinstance(hv, list)
    assert [t.shape for t in hv] == [p.shape for p in params]
    flat_v = torch.cat([t.reshape(-1) for t in v])
    _assert_matches_dense(torch.cat([t.reshape(-1) for t in hv]), mlp_hessian @ flat_v)


def test_hvp_rejects_a_vector_of_the_wrong_length(mlp_problem):
    v = torch.ones(mlp_problem.num_params + 1, dtype=torch.float64)
    with pytest.raises(ConfigError, match=str(mlp_problem.num_params)):
        hvp(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data, v)


def test_chunked_operator_has_the_same_loss_and_gradient(mlp_problem):
    whole = HessianOperator(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data)
    chunked = HessianOperator(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.chunks([30, 9, 25]))
    assert chunked.loss() == pytest.approx(whole.loss(), rel=1e-12)
    torch.testing.assert_close(chunked.gradient(), whole.gradient(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "make_iterator",
    [
        pytest.param(lambda data: (batch for batch in [data]), id="generator"),
        pytest.param(lambda data: iter([data]), id="list-iterator"),
    ],
)
def test_one_shot_iterator_raises_type_error(make_iterator, mlp_problem):
    with pytest.raises(TypeError, match="one-shot iterator"):
        HessianOperator(mlp_problem.model, mlp_problem.loss_fn, make_iterator(mlp_problem.data))


def _with_layer(problem, layer: nn.Module) -> nn.Sequential:
    """``problem.model`` with ``layer`` inserted after the first activation (same parameters)."""
    modules = list(problem.model)
    return nn.Sequential(*modules[:2], layer.to(torch.float64), *modules[2:])


TRAIN_MODE_LAYERS = [
    pytest.param(lambda: nn.Dropout(0.5), id="dropout"),
    pytest.param(lambda: nn.BatchNorm1d(40), id="batchnorm"),
]

ENTRY_POINTS = [
    pytest.param(lambda m, p, **kw: HessianOperator(m, p.loss_fn, p.data, **kw), id="HessianOperator"),
    pytest.param(lambda m, p, **kw: hvp(m, p.loss_fn, p.data, [torch.ones_like(q) for q in m.parameters()], **kw),
                 id="hvp"),
    pytest.param(lambda m, p, **kw: sharpness(m, p.loss_fn, p.data, num_matvecs=100, tol=1e-2, **kw), id="sharpness"),
    pytest.param(lambda m, p, **kw: hessian_trace(m, p.loss_fn, p.data, num_matvecs=3, **kw), id="hessian_trace"),
]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("make_layer", TRAIN_MODE_LAYERS)
def test_train_mode_layer_is_refused_unless_allowed(make_layer, entry_point, mlp_problem):
    model = _with_layer(mlp_problem, make_layer())
    assert model.training
    with pytest.raises(TrainModeError, match="model.eval()") as info:
        entry_point(model, mlp_problem)
    assert isinstance(info.value, LmechError)
    entry_point(model, mlp_problem, allow_train_mode=True)  # the caller opted in: no error
    model.eval()
    entry_point(model, mlp_problem)  # eval mode: no error


def test_dropout_in_eval_mode_gives_the_hessian_without_dropout(mlp_problem, mlp_hessian, generator):
    model = _with_layer(mlp_problem, nn.Dropout(0.5)).eval()
    v = _random_vector(mlp_problem.num_params, generator)
    _assert_matches_dense(hvp(model, mlp_problem.loss_fn, mlp_problem.data, v), mlp_hessian @ v)


def test_zero_dropout_in_train_mode_allowed_gives_the_exact_hessian(mlp_problem, mlp_hessian, generator):
    model = _with_layer(mlp_problem, nn.Dropout(0.0))  # train mode, but deterministic
    v = _random_vector(mlp_problem.num_params, generator)
    hv = hvp(model, mlp_problem.loss_fn, mlp_problem.data, v, allow_train_mode=True)
    _assert_matches_dense(hv, mlp_hessian @ v)


class _WithUnusedLayer(nn.Module):
    """The problem's MLP plus a Linear layer that ``forward`` never calls, registered *first*."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.unused = nn.Linear(5, 2, dtype=torch.float64)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_unused_parameters_get_zero_curvature(problem_factory, brute_force_hessian, seed, generator):
    problem = problem_factory(in_features=4, widths=(10, 10), out_features=2, n_samples=32, seed=seed)
    model = _WithUnusedLayer(problem.model)
    n_unused = sum(p.numel() for p in model.unused.parameters())
    dense = brute_force_hessian(model, problem.loss_fn, *problem.data)
    assert torch.equal(dense[:n_unused], torch.zeros_like(dense[:n_unused]))
    assert torch.equal(dense[:, :n_unused], torch.zeros_like(dense[:, :n_unused]))
    for data in (problem.data, problem.chunks([20, 12])):
        v = _random_vector(dense.shape[0], generator)
        hv = hvp(model, problem.loss_fn, data, v)
        assert torch.equal(hv[:n_unused], torch.zeros(n_unused, dtype=torch.float64))
        _assert_matches_dense(hv, dense @ v)
    top = hessian_eigenvalues(model, problem.loss_fn, problem.data, 1, num_matvecs=200, tol=1e-10)
    assert float(top[0]) == pytest.approx(float(torch.linalg.eigvalsh(dense)[-1]), rel=RTOL)


def test_frozen_parameters_are_left_out(mlp_problem, mlp_hessian, generator):
    first = mlp_problem.model[0]
    first.weight.requires_grad_(False)
    n_frozen = first.weight.numel()
    op = HessianOperator(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data)
    assert op.num_params == mlp_problem.num_params == mlp_hessian.shape[0] - n_frozen
    v = _random_vector(op.num_params, generator)
    _assert_matches_dense(op.matvec(v), mlp_hessian[n_frozen:, n_frozen:] @ v)


def _train(model: nn.Module, problem, steps: int = 5) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        problem.loss_fn(model(problem.inputs), problem.targets).backward()
        optimizer.step()


@pytest.mark.parametrize("chunks", [pytest.param([64], id="one-chunk"), pytest.param([30, 34], id="two-chunks")])
def test_operator_is_a_snapshot_of_the_parameters(chunks, mlp_problem, mlp_hessian, generator):
    op = HessianOperator(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.chunks(chunks))
    v = _random_vector(op.num_params, generator)
    before = op.matvec(v)
    _train(mlp_problem.model, mlp_problem)
    after_training = HessianOperator(mlp_problem.model, mlp_problem.loss_fn, mlp_problem.data).matvec(v)
    assert not torch.allclose(after_training, before, rtol=1e-3)  # training did change the Hessian
    torch.testing.assert_close(op.matvec(v), before, rtol=0, atol=0)
    _assert_matches_dense(op.matvec(v), mlp_hessian @ v)


def test_operator_is_a_snapshot_of_the_buffers(mlp_problem, generator):
    model = _with_layer(mlp_problem, nn.BatchNorm1d(40)).eval()
    op = HessianOperator(model, mlp_problem.loss_fn, mlp_problem.data)
    v = _random_vector(op.num_params, generator)
    before = op.matvec(v)
    model.train()
    _train(model, mlp_problem)  # updates the parameters *and* BatchNorm's running statistics
    model.eval()
    torch.testing.assert_close(op.matvec(v), before, rtol=0, atol=0)


def test_products_in_allowed_train_mode_leave_the_model_buffers_alone(mlp_problem, generator):
    model = _with_layer(mlp_problem, nn.BatchNorm1d(40))
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    op = HessianOperator(model, mlp_problem.loss_fn, mlp_problem.chunks([30, 34]), allow_train_mode=True)
    op.matvec(_random_vector(op.num_params, generator))
    for name, value in model.named_buffers():
        torch.testing.assert_close(value, buffers[name], rtol=0, atol=0, msg=f"buffer {name} changed")


def test_groupnorm_in_train_mode_is_allowed():
    # GroupNorm normalises each example by itself, identically in train and eval mode.
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GroupNorm(2, 6), torch.nn.Linear(6, 1)).double()
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    assert model.training
    ones = torch.ones(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    hv = hvp(model, torch.nn.functional.mse_loss, (x, y), ones)
    assert torch.isfinite(hv).all()


def test_per_example_loss_gets_a_clear_error():
    model = torch.nn.Linear(3, 1).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 1, dtype=torch.float64)

    def per_example(out, target):
        return ((out - target) ** 2).squeeze(1)

    with pytest.raises(ConfigError, match=r"scalar tensor, got \(5,\); use reduction='mean'"):
        sharpness(model, per_example, (x, y))


def test_non_finite_parameters_get_a_clear_error():
    from lmech.errors import NonFiniteError

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 1, dtype=torch.float64)
    with pytest.raises(NonFiniteError, match="not finite"):
        sharpness(model, torch.nn.functional.mse_loss, (x, y))
