"""The NTK-parametrised MLP: its forward pass against the written formula, its multipliers, its seeding,
its errors, and its output covariance at large width against the NNGP."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lmech.errors import ConfigError
from lmech.models import Erf, ScaledLinear, ntk_mlp
from lmech.theory import nngp_kernel

PHI = {"relu": torch.relu, "erf": torch.special.erf, "tanh": torch.tanh, "identity": lambda z: z}


def explicit_forward(model, x, *, weight_var, bias_var, activation, parametrization="ntk"):
    """``z¹ = σ_w/√d W¹x + σ_b b¹``, ``z^{l+1} = σ_w/√n_l W^{l+1} φ(z^l) + σ_b b^{l+1}`` from the raw N(0, 1)
    parameters (output layer ``σ_w/n_L`` and ``σ_b/√n_L`` in mean-field), written out without the module's multipliers."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    sigma_w, sigma_b = math.sqrt(weight_var), math.sqrt(bias_var)
    h = x
    for i, layer in enumerate(linears):
        fan_in = layer.weight.shape[1]
        last = i == len(linears) - 1
        scale = fan_in if last and parametrization == "mean-field" else math.sqrt(fan_in)
        z = sigma_w / scale * h @ layer.weight.T
        if layer.bias is not None:
            z = z + (sigma_b / math.sqrt(fan_in) if last and parametrization == "mean-field" else sigma_b) * layer.bias
        h = z if last else PHI[activation](z)
    return h


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "identity"])
@pytest.mark.parametrize("parametrization", ["ntk", "mean-field"])
@pytest.mark.parametrize("bias_var", [0.0, 0.3], ids=["no-bias", "bias"])
def test_forward_equals_the_formula(activation, parametrization, bias_var, generator):
    x = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    kwargs = dict(weight_var=1.7, bias_var=bias_var, activation=activation)
    model = ntk_mlp(5, [11, 13], 3, parametrization=parametrization, dtype=torch.float64, seed=3, **kwargs)
    expected = explicit_forward(model, x, parametrization=parametrization, **kwargs)
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


def test_depth_zero_is_a_linear_model(generator):
    x = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    model = ntk_mlp(6, [], 2, weight_var=3.0, bias_var=0.5, dtype=torch.float64)
    assert len(model) == 1
    layer = model[0]
    expected = math.sqrt(3.0 / 6) * x @ layer.weight.T + math.sqrt(0.5) * layer.bias
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("parametrization", ["ntk", "mean-field"])
def test_multipliers_are_exposed(parametrization):
    model = ntk_mlp(3, [16, 64], 2, weight_var=2.0, bias_var=0.25, parametrization=parametrization)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert all(isinstance(m, ScaledLinear) for m in linears)
    last_scale = 64.0 if parametrization == "mean-field" else 8.0
    expected = [math.sqrt(2.0 / 3), math.sqrt(2.0) / 4, math.sqrt(2.0) / last_scale]
    assert [m.weight_multiplier for m in linears] == pytest.approx(expected, rel=1e-15)
    last_bias = 0.5 / 8.0 if parametrization == "mean-field" else 0.5  # σ_b/√n_L in mean-field
    assert [m.bias_multiplier for m in linears] == pytest.approx([0.5, 0.5, last_bias], rel=1e-15)
    assert all(isinstance(m.weight_multiplier, float) and isinstance(m.bias_multiplier, float) for m in linears)
    assert "weight_multiplier=" in repr(model)


def test_activation_modules_and_dead_biases_dropped():
    model = ntk_mlp(3, [8, 8], 1, activation="erf", bias_var=0.0)
    assert sum(isinstance(m, Erf) for m in model) == 2
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear))
    with_bias = ntk_mlp(3, [8, 8], 1, activation="erf", bias_var=0.1)
    assert all(m.bias is not None for m in with_bias if isinstance(m, nn.Linear))


def test_parameters_are_standard_normal():
    model = ntk_mlp(256, [512], 1, bias_var=1.0, dtype=torch.float64, seed=5)
    weight = model[0].weight.detach()  # 131,072 draws: mean ± 0.003, variance ± 0.004 (one std)
    assert float(weight.mean()) == pytest.approx(0.0, abs=0.015)
    assert float(weight.var()) == pytest.approx(1.0, abs=0.02)


def test_seeded_privately():
    state = torch.random.get_rng_state()
    a, b, c = (ntk_mlp(4, [9], 2, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state), "ntk_mlp must not touch the global RNG"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)
    assert a[0].weight.dtype == torch.float32


def test_scaled_linear_without_bias_and_reset(generator):
    layer = ScaledLinear(5, 3, bias=False, weight_multiplier=0.5, generator=generator, dtype=torch.float64)
    assert isinstance(layer, nn.Linear) and layer.bias is None and layer.bias_multiplier == 1.0
    x = torch.randn(2, 5, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(layer(x), 0.5 * x @ layer.weight.T)
    before = layer.weight.detach().clone()
    layer.reset_parameters(torch.Generator().manual_seed(0))
    assert not torch.equal(before, layer.weight)
    default = ScaledLinear(5, 3)  # no generator: a private one seeded with 0, not the global RNG
    assert torch.equal(default.weight, ScaledLinear(5, 3).weight)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(widths=[8, 0]), r"every width and out_features must be integers >= 1, got 3, \[8, 0\], 1"),
        (dict(out_features=0), "integers >= 1"),
        (dict(weight_var=0.0), r"weight_var \(σ_w²\) must be finite and > 0, got 0.0"),
        (dict(weight_var=float("inf")), "weight_var"),
        (dict(bias_var=-0.1), r"bias_var \(σ_b²\) must be finite and >= 0, got -0.1"),
        (dict(activation="sigmoid"), r"activation must be one of \['erf', 'gelu', 'identity', 'relu', 'tanh'\], got 'sigmoid'"),
        (dict(parametrization="mup"), r"parametrization must be one of \('ntk', 'mean-field'\), got 'mup'"),
        (dict(seed=-1), "seed"),
        (dict(dtype=torch.int64), "floating-point"),
    ],
    ids=["zero-width", "zero-out", "weight-var-0", "weight-var-inf", "bias-var-neg", "activation", "parametrization",
         "seed", "dtype"],
)
def test_bad_arguments_raise_config_error(kwargs, match):
    args = dict(in_features=3, widths=[8, 8], out_features=1) | kwargs
    with pytest.raises(ConfigError, match=match):
        ntk_mlp(args.pop("in_features"), args.pop("widths"), args.pop("out_features"), **args)


def test_scaled_linear_rejects_bad_multiplier():
    with pytest.raises(ConfigError, match="weight_multiplier must be a finite number, got nan"):
        ScaledLinear(2, 2, weight_multiplier=float("nan"))


@pytest.mark.parametrize(("activation", "weight_var", "bias_var"), [("relu", 2.0, 0.2), ("erf", 1.5, 0.0)])
def test_output_covariance_at_large_width_matches_the_nngp(activation, weight_var, bias_var, generator):
    """The m outputs of one wide network are i.i.d. given its hidden layer, so their empirical
    covariance ``f fᵀ/m`` estimates the NNGP with a relative (Frobenius) error of about
    ``√(2/m + 5/n)``: ``√(2/m)`` from sampling the outputs, ``√(5/n)`` from the finite-width kernel
    (ReLU's ``E[φ⁴]/E[φ²]² − 1 = 5``). Measured: 0.05–0.07 over five seeds; tolerance three times the
    estimate, 0.23."""
    width, m = 1024, 2048
    x = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    model = ntk_mlp(4, [width, width], m, activation=activation, weight_var=weight_var, bias_var=bias_var,
                    dtype=torch.float64, seed=11)
    with torch.no_grad():
        f = model(x).numpy()
    covariance = f @ f.T / m
    expected = nngp_kernel(x, depth=2, activation=activation, weight_var=weight_var, bias_var=bias_var)
    rel = np.linalg.norm(covariance - expected) / np.linalg.norm(expected)
    assert rel <= 3 * math.sqrt(2 / m + 5 / width)


def test_mean_field_output_is_smaller_by_root_width(generator):
    x = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    ntk = ntk_mlp(4, [400], 2, bias_var=0.3, dtype=torch.float64, seed=1)
    mean_field = ntk_mlp(4, [400], 2, bias_var=0.3, parametrization="mean-field", dtype=torch.float64, seed=1)
    torch.testing.assert_close(mean_field(x), ntk(x) / 20.0)
