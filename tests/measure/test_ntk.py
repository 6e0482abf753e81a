"""The empirical NTK against an explicit Jacobian, its invariants, and the two kernel statistics."""

import copy

import pytest
import torch

from lmech.errors import ConfigError, TrainModeError
from lmech.measure import empirical_ntk, kernel_target_alignment, relative_kernel_change
from lmech.models import mlp


@pytest.fixture
def tiny():
    model = mlp(3, [7, 5], 2, seed=11, dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    x1 = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    x2 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    return model, x1, x2


def explicit_jacobian(model, x):
    """J of shape (n·k, P) by torch.autograd.functional.jacobian of the flattened outputs."""
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())

    def f(*ps):
        out = torch.func.functional_call(model, dict(zip(names, ps)), (x,))
        return out.reshape(-1)

    jac = torch.autograd.functional.jacobian(f, params)
    return torch.cat([j.reshape(j.shape[0], -1) for j in jac], dim=1)


@pytest.mark.parametrize("method", ["structured", "jacobian"])
@pytest.mark.parametrize("chunk_size", [1, 4, 64], ids=["chunk1", "chunk4", "one-chunk"])
def test_full_ntk_equals_jjt(tiny, chunk_size, method):
    model, x1, x2 = tiny
    j1, j2 = explicit_jacobian(model, x1), explicit_jacobian(model, x2)
    expected = (j1 @ j2.T).reshape(9, 2, 4, 2).permute(0, 2, 1, 3)
    got = empirical_ntk(model, x1, x2, output="full", chunk_size=chunk_size, method=method)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-12)
    trace = empirical_ntk(model, x1, x2, chunk_size=chunk_size, method=method)
    torch.testing.assert_close(trace, expected.diagonal(dim1=2, dim2=3).sum(-1), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("method", ["structured", "jacobian"])
@pytest.mark.parametrize("chunk_size", [2, 4, 64], ids=["chunk2", "chunk4", "one-chunk"])
def test_gram_matrix_is_symmetric_psd_and_matches_jjt(tiny, chunk_size, method):
    model, x1, _ = tiny
    j = explicit_jacobian(model, x1)
    gram = empirical_ntk(model, x1, output="full", chunk_size=chunk_size, method=method)
    torch.testing.assert_close(gram, (j @ j.T).reshape(9, 2, 9, 2).permute(0, 2, 1, 3), rtol=1e-6, atol=1e-12)
    flat = gram.permute(0, 2, 1, 3).reshape(18, 18)
    torch.testing.assert_close(flat, flat.T)
    assert torch.linalg.eigvalsh(flat).min() > -1e-10 * torch.linalg.eigvalsh(flat).max()
    trace = empirical_ntk(model, x1, chunk_size=chunk_size, method=method)
    torch.testing.assert_close(trace, trace.T)


def test_alignment_and_change():
    y = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    assert kernel_target_alignment(3.0 * torch.outer(y, y), y) == pytest.approx(1.0)
    assert kernel_target_alignment(torch.outer(y, y) + torch.eye(4, dtype=torch.float64), y) < 1.0
    k = torch.outer(y, y) + torch.eye(4, dtype=torch.float64)
    for constant in (torch.ones(4, dtype=torch.float64), 3 * torch.ones(4, dtype=torch.float64)):
        with pytest.raises(ConfigError, match="targets' kernel is zero after centring"):
            kernel_target_alignment(k, constant)
    assert kernel_target_alignment(k, torch.ones(4, dtype=torch.float64), centered=False) > 0
    with pytest.raises(ConfigError, match="must be finite"):
        kernel_target_alignment(k * float("nan"), y)
    k0 = torch.eye(3, dtype=torch.float64)
    assert relative_kernel_change(k0, 1.1 * k0) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="same shape"):
        relative_kernel_change(k0, torch.eye(2, dtype=torch.float64))


def test_errors(tiny):
    model, x1, _ = tiny
    with pytest.raises(ConfigError, match="output must be one of"):
        empirical_ntk(model, x1, output="diag")
    with pytest.raises(ConfigError, match="chunk_size must be an integer >= 1"):
        empirical_ntk(model, x1, chunk_size=0)
    dropout = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1)).double()
    with pytest.raises(TrainModeError):
        empirical_ntk(dropout, x1)


class ScaledLinear(torch.nn.Linear):
    """``z = c_w W a + c_b b``, declaring its multipliers as the structured NTK expects."""

    def __init__(self, *args, weight_multiplier, bias_multiplier, **kw):
        super().__init__(*args, **kw)
        self.weight_multiplier, self.bias_multiplier = weight_multiplier, bias_multiplier

    def forward(self, x):
        bias = None if self.bias is None else self.bias * self.bias_multiplier
        return torch.nn.functional.linear(x, self.weight * self.weight_multiplier, bias)


def structured_cases():
    torch.manual_seed(0)
    plain = mlp(3, [7, 5], 2, seed=11, dtype=torch.float64)
    no_bias = mlp(3, [6], 4, bias=False, activation="relu", seed=2, dtype=torch.float64)
    scaled = torch.nn.Sequential(
        ScaledLinear(3, 8, weight_multiplier=0.7, bias_multiplier=0.3, dtype=torch.float64), torch.nn.Tanh(),
        ScaledLinear(8, 3, weight_multiplier=1.9, bias_multiplier=0.1, dtype=torch.float64))
    frozen = mlp(3, [7, 5], 2, seed=3, dtype=torch.float64)
    frozen[0].weight.requires_grad_(False)
    frozen[4].bias.requires_grad_(False)
    return {"mlp": plain, "no-bias": no_bias, "multipliers": scaled, "partly-frozen": frozen}


@pytest.mark.parametrize("name", list(structured_cases()))
@pytest.mark.parametrize("output", ["trace", "full"])
@pytest.mark.parametrize("cross", [False, True], ids=["gram", "cross"])
def test_structured_path_equals_the_jacobian_path(tiny, name, output, cross):
    model = structured_cases()[name]
    _, x1, x2 = tiny
    other = x2 if cross else None
    fast = empirical_ntk(model, x1, other, output=output, chunk_size=4, method="structured")
    slow = empirical_ntk(model, x1, other, output=output, chunk_size=4, method="jacobian")
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    assert empirical_ntk(model, x1, other, output=output).shape == slow.shape  # auto takes the same result


def test_structured_path_refuses_models_it_cannot_handle(tiny):
    _, x1, _ = tiny
    conv = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 3)), torch.nn.Conv1d(1, 2, 2), torch.nn.Flatten()).double()
    with pytest.raises(ConfigError, match=r"parameter 1.weight is not in an nn.Linear.*method='jacobian'"):
        empirical_ntk(conv, x1, method="structured")
    layer = torch.nn.Linear(3, 3).double()
    shared = torch.nn.Sequential(layer, torch.nn.Tanh(), layer)
    with pytest.raises(ConfigError, match="runs more than once"):
        empirical_ntk(shared, x1, method="structured")
    seq = torch.nn.Sequential(torch.nn.Unflatten(1, (3, 1)), torch.nn.Linear(1, 2), torch.nn.Flatten()).double()
    with pytest.raises(ConfigError, match=r"sees an input of shape \(\d+, 3, 1\)"):
        empirical_ntk(seq, x1, method="structured")
    for model in (conv, shared, seq):  # auto falls back to the Jacobian path, which handles all three
        torch.testing.assert_close(empirical_ntk(model, x1), empirical_ntk(model, x1, method="jacobian"))
    with pytest.raises(ConfigError, match="method must be one of"):
        empirical_ntk(layer, x1, method="fast")


class TiedWeights(torch.nn.Module):
    """A decoder that reuses the encoder's weight outside the encoder's own call."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(3, 6)

    def forward(self, x):
        return torch.nn.functional.linear(torch.tanh(self.enc(x)), self.enc.weight.t())


class FunctionalCall(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, 6), torch.nn.Linear(6, 2)

    def forward(self, x):
        return self.b(torch.relu(torch.nn.functional.linear(x, self.a.weight, self.a.bias)))


class MixesExamples(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, 6), torch.nn.Linear(6, 2)

    def forward(self, x):
        h = self.a(x)
        return self.b(h - h.mean(0))


class UnusedHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = torch.nn.Linear(3, 6), torch.nn.Linear(6, 2), torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def explicit_trace_ntk(model, x):
    j = explicit_jacobian_per_example(model, x)
    return torch.einsum("akp,bkp->ab", j, j)


def explicit_jacobian_per_example(model, x):
    """J of shape (n, k, P), one forward per example, by torch.autograd.functional.jacobian."""
    return torch.stack([explicit_jacobian(model, x[i : i + 1]) for i in range(len(x))])


@pytest.mark.parametrize("model_cls", [TiedWeights, FunctionalCall, MixesExamples],
                         ids=["tied-weights", "functional-linear", "mixes-examples"])
def test_structured_path_detects_models_it_would_get_wrong(tiny, model_cls):
    model = model_cls().double()
    _, x1, _ = tiny
    with pytest.raises(ConfigError, match="disagrees with per-example gradients"):
        empirical_ntk(model, x1, method="structured")
    torch.testing.assert_close(empirical_ntk(model, x1), explicit_trace_ntk(model, x1))  # auto: the Jacobian path


@pytest.mark.parametrize("model", [
    torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(inplace=True), torch.nn.Linear(6, 2)),
    UnusedHead()], ids=["inplace-relu", "unused-head"])
def test_structured_path_handles_inplace_activations_and_unused_layers(tiny, model):
    model = model.double()
    _, x1, _ = tiny
    torch.testing.assert_close(empirical_ntk(model, x1, method="structured"), explicit_trace_ntk(model, x1))


def test_bad_inputs_get_clear_errors(tiny):
    model, x1, _ = tiny
    with pytest.raises(ConfigError, match=r"x1 must be a tensor of shape \(n, ...\) with n >= 1"):
        empirical_ntk(model, x1[:0])
    with pytest.raises(ConfigError, match="x1 must be a tensor"):
        empirical_ntk(model, x1.tolist())
    with pytest.raises(ConfigError, match=r"x2 has dtype torch.float32 but the model's parameters are torch.float64"):
        empirical_ntk(model, x1, x1.float())
    with pytest.raises(ConfigError, match="chunk_size must be an integer >= 1, got 2.5"):
        empirical_ntk(model, x1, chunk_size=2.5)


def test_a_float32_network_of_half_a_million_parameters_takes_the_structured_path():
    """The self-check must allow float32 rounding over many parameters (a √P·eps random walk); the structured
    path's float32 result is compared with the float64 Jacobian, not the float32 one, whose sums of 563,722 products
    are off by up to 2e-3 relative on some CPUs' BLAS (AMD EPYC) and 1e-5 on others."""
    model = mlp(64, [512, 512, 512], 10, seed=0)  # 563,722 parameters, float32
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    fast = empirical_ntk(model, x, method="structured")
    assert fast.dtype == torch.float32
    exact = empirical_ntk(copy.deepcopy(model).double(), x.double(), method="jacobian")
    torch.testing.assert_close(fast.double(), exact, rtol=2e-4, atol=1e-3)  # measured 1.9e-5
