"""Width parametrisations: the table against TP V's and mup's conventions through the abc-equivalence, SP at
m = 1, forward scales at initialisation against theory, per-role learning rates against hand-written lists,
training invariance under the equivalence, and the errors."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from lmech.errors import ConfigError, UnknownNameError
from lmech.models import (
    MEAN_FIELD,
    MUP,
    NTK,
    PARAMETRIZATIONS,
    SP,
    Parametrization,
    ScaledEmbedding,
    ScaledLayerNorm,
    ScaledLinear,
    Transformer,
    get_parametrization,
    mlp,
    ntk_mlp,
    param_groups,
    parametrization_of,
    parametrize,
)

NAMES = ["sp", "ntk", "mup", "mean-field"]


def exponents(p):
    return p.a, p.b, p.c_sgd, p.c_adam


# --- the table ----------------------------------------------------------------------------------------------


def test_mup_in_tp5_table3_form():
    """TP V (arXiv:2203.03466) Table 3: no multipliers; init var 1/fan_in except the readout's 1/fan_in²; SGD rates
    (η·fan_out, η, η/fan_in); Adam rates (η, η/fan_in, η/fan_in)."""
    tp5 = MUP.shift(input=0.5, output=-0.5)
    assert exponents(tp5) == ((0, 0, 0), (0, 0.5, 1), (-1, 0, 1), (0, 1, 1))


def test_mup_in_mureadout_form():
    """mup's MuReadout: readout multiplier 1/m on an SP-sized init; MuAdam leaves vector-like (and readout) rates at
    η and divides matrix-like ones by m; MuSGD multiplies vector-like rates (input layer, readout) by m."""
    readout = MUP.shift(input=0.5, output=0.5)
    assert exponents(readout) == ((0, 0, 1), (0, 0.5, 0), (-1, 0, -1), (0, 1, 0))


def test_mean_field_and_mup_are_one_class_and_so_are_ntk_and_sp():
    assert exponents(MEAN_FIELD.shift(input=-0.5, hidden=-0.5, output=-0.5)) == exponents(MUP)
    as_sp = NTK.shift(hidden=-0.5, output=-0.5)
    assert as_sp.a == SP.a and as_sp.b == SP.b
    assert as_sp.c_sgd == (0, 1, 1)  # TP IV §3: SP with SGD is stable only for lr ∝ 1/width
    assert as_sp.c_adam == (0.5, 1.5, 1)


@pytest.mark.parametrize("p", [SP, NTK, MUP, MEAN_FIELD], ids=NAMES)
def test_stable_at_initialisation(p):
    """Everett et al. 2024 §2: a + b = 0 (input), ½ (hidden); readout ½ for the SP/NTK class, 1 for muP/mean-field."""
    total = tuple(a + b for a, b in zip(p.a, p.b))
    assert total == ((0, 0.5, 0.5) if p.name in ("sp", "ntk") else (0, 0.5, 1))
    assert p.attention == (0.5 if p.name in ("sp", "ntk") else 1.0)


def test_lookup_by_name():
    assert [get_parametrization(n) for n in NAMES] == [SP, NTK, MUP, MEAN_FIELD]
    assert get_parametrization(MUP) is MUP and list(PARAMETRIZATIONS) == NAMES
    with pytest.raises(UnknownNameError, match=r"unknown parametrization 'mu-p'; did you mean 'mup'"):
        get_parametrization("mu-p")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(a=(0, 0)), r"a must be three finite numbers \(input, hidden, output\), got \(0, 0\)"),
     (dict(b=(0, float("nan"), 0)), "b must be three finite numbers"),
     (dict(name=""), "name must be a non-empty string"),
     (dict(attention=float("inf")), "attention must be a finite number")],
    ids=["short", "nan", "name", "attention"],
)
def test_parametrization_validates(kwargs, match):
    fields = dict(name="x", a=(0, 0, 0), b=(0, 0.5, 0.5), c_sgd=(0, 0, 0), c_adam=(0, 0, 0)) | kwargs
    with pytest.raises(ConfigError, match=match):
        Parametrization(**fields)


# --- m = 1 is SP -------------------------------------------------------------------------------------------


def one_step(model, x, y, optimizer):
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(param_groups(model, 0.05, optimizer), lr=0.05)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", NAMES[1:])
def test_every_parametrization_is_sp_at_base_width(name, optimizer, generator):
    x = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    sp, other = (parametrize(mlp(5, [16, 16], 3, dtype=torch.float64), n, base_width=16, seed=3) for n in ("sp", name))
    with torch.no_grad():
        assert torch.equal(sp(x), other(x))
    torch.testing.assert_close(one_step(other, x, y, optimizer), one_step(sp, x, y, optimizer), rtol=1e-14, atol=1e-15)


def test_transformer_is_sp_at_base_width(generator):
    tokens = torch.randint(0, 13, (2, 6), generator=generator)
    make = lambda: Transformer(vocab=13, context=8, d_model=16, n_layers=2, n_heads=2, dtype=torch.float64)  # noqa: E731
    sp, mup = (parametrize(make(), n, base_width=16, seed=1) for n in ("sp", "mup"))
    with torch.no_grad():
        assert torch.equal(sp(tokens), mup(tokens))
    assert mup.blocks[0].attn.scale == sp.blocks[0].attn.scale == 1 / math.sqrt(8)


# --- initialisation scales ---------------------------------------------------------------------------------


def test_forward_scale_at_initialisation_follows_the_readout_exponent():
    """Output RMS ∝ m^{-(a+b-½)} of the readout: m⁰ for SP/NTK, m^{-½} for muP/mean-field; hidden preactivations m⁰.
    Widths 64..1024, 4 seeds × 64 outputs × 128 inputs per width: the fitted slope scatters by 0.004 (one standard
    deviation over 5 repetitions of this very measurement), so ±0.03 is 7σ and still tells -½ from 0 by a wide margin."""
    widths = [64, 128, 256, 512, 1024]
    x = torch.randn(128, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for name, expected in [("sp", 0.0), ("ntk", 0.0), ("mup", -0.5), ("mean-field", -0.5)]:
        out_rms, hidden_rms = [], []
        for width in widths:
            out_sq, hidden_sq = [], []
            for seed in range(4):
                model = parametrize(mlp(16, [width, width], 64, dtype=torch.float64), name, base_width=64, seed=seed)
                with torch.no_grad():
                    out_sq.append(float(model(x).pow(2).mean()))
                    hidden_sq.append(float(model[:3](x).pow(2).mean()))
            out_rms.append(math.sqrt(np.mean(out_sq)))
            hidden_rms.append(math.sqrt(np.mean(hidden_sq)))
        assert np.polyfit(np.log(widths), np.log(out_rms), 1)[0] == pytest.approx(expected, abs=0.03), name
        assert np.polyfit(np.log(widths), np.log(hidden_rms), 1)[0] == pytest.approx(0.0, abs=0.03), name


def test_effective_weights_are_multiplier_times_std(generator):
    """The effective weight α·w of each layer has std m^{-(a+b)}/√fan_in_base (raw w drawn N(0, m^{-2b}/fan_in_base))."""
    m, base = 8, 32
    model = parametrize(mlp(24, [base * m, base * m], 256, dtype=torch.float64), "mup", base_width=base, seed=0)
    for index, fan_in_base, a_plus_b in [(0, 24, 0.0), (2, base, 0.5), (4, base, 1.0)]:
        layer = model[index]
        effective = layer.weight_multiplier * layer.weight.detach()
        expected = m ** -a_plus_b / math.sqrt(fan_in_base)
        assert float(effective.std()) == pytest.approx(expected, rel=0.02)  # ≥ 6,144 draws: std error ≤ 1%
        assert torch.count_nonzero(layer.bias) == 0


def test_same_effective_function_within_a_class():
    """Same seed, same draws: NTK computes SP's function and mean-field muP's, at any width."""
    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    build = {n: parametrize(mlp(7, [96, 96], 4, dtype=torch.float64), n, base_width=24, seed=9) for n in NAMES}
    with torch.no_grad():
        torch.testing.assert_close(build["ntk"](x), build["sp"](x), rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(build["mean-field"](x), build["mup"](x), rtol=1e-12, atol=1e-14)
        assert not torch.allclose(build["mup"](x), build["sp"](x))


@pytest.mark.parametrize("name", ["ntk", "mean-field"])
def test_base_width_one_reproduces_ntk_mlp(name):
    """With base width 1 (m = n) the NTK and mean-field MLPs compute lmech.models.ntk_mlp's function from the same
    N(0, 1) draws: an independent implementation of σ_w/√n (and σ_w/n on a mean-field readout)."""
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = ntk_mlp(6, [40, 40], 3, activation="tanh", weight_var=1.0, parametrization="ntk" if name == "ntk" else name,
                        seed=5, dtype=torch.float64)
    ours = parametrize(mlp(6, [40, 40], 3, activation="tanh", bias=False, dtype=torch.float64), name, base_width=1, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-12, atol=1e-14)


# --- learning rates ----------------------------------------------------------------------------------------


def lrs_by_name(model, lr, optimizer):
    ids = {id(p): n for n, p in model.named_parameters()}
    return {ids[id(p)]: g["lr"] for g in param_groups(model, lr, optimizer) for p in g["params"]}


# Written out by hand from the table at m = 4 (width 32, base 8) and η = 0.1; biases of width-sized layers follow the
# input row, the readout's bias has no width dimension and keeps η.
HAND_BUILT = {
    ("sp", "sgd"): dict.fromkeys(["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"], 0.1),
    ("sp", "adam"): dict.fromkeys(["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"], 0.1),
    ("ntk", "sgd"): dict.fromkeys(["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"], 0.1),
    ("ntk", "adam"): {"0.weight": 0.05, "0.bias": 0.05, "2.weight": 0.025, "2.bias": 0.05, "4.weight": 0.05, "4.bias": 0.1},
    ("mup", "sgd"): dict.fromkeys(["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"], 0.1),
    ("mup", "adam"): {"0.weight": 0.05, "0.bias": 0.05, "2.weight": 0.025, "2.bias": 0.05, "4.weight": 0.05, "4.bias": 0.1},
    ("mean-field", "sgd"): {"0.weight": 0.4, "0.bias": 0.4, "2.weight": 0.4, "2.bias": 0.4, "4.weight": 0.4, "4.bias": 0.1},
    ("mean-field", "adam"): {"0.weight": 0.1, "0.bias": 0.1, "2.weight": 0.05, "2.bias": 0.1, "4.weight": 0.1, "4.bias": 0.1},
}


@pytest.mark.parametrize(("name", "optimizer"), list(HAND_BUILT), ids=[f"{n}-{o}" for n, o in HAND_BUILT])
def test_learning_rates_equal_the_hand_built_list(name, optimizer):
    model = parametrize(mlp(3, [32, 32], 2), name, base_width=8)
    got = lrs_by_name(model, 0.1, optimizer)
    assert got == pytest.approx(HAND_BUILT[name, optimizer], rel=1e-15)
    assert sorted(got) == sorted(n for n, _ in model.named_parameters())  # every parameter exactly once


@pytest.mark.parametrize("name", ["mup", "mean-field"])
def test_effective_rates_match_tp5_table3(name):
    """Per unit of gradient on the effective weight W = αw, SGD moves W by α²·lr and Adam by α·lr: TP V Table 3's
    (η·m, η, η/m) for SGD and (η, η/m, η/m) for Adam on the input, hidden and output weights, for both forms."""
    m = 4
    model = parametrize(mlp(3, [32, 32], 2), name, base_width=8)
    alpha = {i: model[i].weight_multiplier for i in (0, 2, 4)}
    sgd, adam = lrs_by_name(model, 1.0, "sgd"), lrs_by_name(model, 1.0, "adam")
    assert [alpha[i] ** 2 * sgd[f"{i}.weight"] for i in (0, 2, 4)] == pytest.approx([m, 1, 1 / m], rel=1e-14)
    assert [alpha[i] * adam[f"{i}.weight"] for i in (0, 2, 4)] == pytest.approx([1, 1 / m, 1 / m], rel=1e-14)


def test_equivalent_forms_train_identically():
    """The abc-equivalence in action: muP in the table's form, in TP V's Table 3 form and in mup's MuReadout form give
    the same outputs after 3 SGD steps and after 3 Adam steps (ε shrunk far below the gradients; float64)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=gen, dtype=torch.float64), torch.randn(16, 2, generator=gen, dtype=torch.float64)
    forms = [MUP, MUP.shift(input=0.5, output=-0.5), MUP.shift(input=0.5, output=0.5)]
    for optimizer in ("sgd", "adam"):
        outputs = []
        for form in forms:
            model = parametrize(mlp(5, [64, 64], 2, dtype=torch.float64), form, base_width=16, seed=4)
            opt = (torch.optim.Adam(param_groups(model, 0.01, "adam"), eps=1e-30) if optimizer == "adam"
                   else torch.optim.SGD(param_groups(model, 0.5, "sgd")))
            for _ in range(3):
                opt.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
                opt.step()
            with torch.no_grad():
                outputs.append(model(x))
        for other in outputs[1:]:
            torch.testing.assert_close(other, outputs[0], rtol=1e-9, atol=1e-12)


# --- the transformer ---------------------------------------------------------------------------------------


def test_transformer_parametrized_as_mup():
    m, base = 4, 16
    model = parametrize(Transformer(vocab=11, context=6, d_model=base * m, n_layers=2, n_heads=2), "mup", base_width=base)
    d_head = base * m // 2
    assert model.blocks[1].attn.scale == pytest.approx(math.sqrt(d_head / m) / d_head, rel=1e-14)  # √d_head_base / d_head
    assert isinstance(model.tok_emb, ScaledEmbedding) and model.tok_emb.weight_multiplier == pytest.approx(2.0)
    assert isinstance(model.blocks[0].ln1, ScaledLayerNorm) and isinstance(model.blocks[0].attn.q, ScaledLinear)
    gain = model.blocks[0].ln1.weight_multiplier * model.blocks[0].ln1.weight.detach()
    torch.testing.assert_close(gain, torch.ones_like(gain))
    assert model.unembed.weight_multiplier == pytest.approx(0.5)
    roles = parametrization_of(model).roles
    assert roles["tok_emb.weight"] == roles["blocks.0.ln1.bias"] == roles["blocks.0.attn.q.bias"] == "input"
    assert roles["blocks.1.down.weight"] == "hidden" and roles["unembed.weight"] == "output"
    assert {g["role"] for g in param_groups(model, 1e-3, "adam")} == {"input", "hidden", "output"}
    heads_scaled = parametrize(Transformer(vocab=11, context=6, d_model=64, n_layers=1, n_heads=8), "mup", base_width=16,
                               base_d_head=8)
    assert heads_scaled.blocks[0].attn.scale == pytest.approx(1 / math.sqrt(8), rel=1e-14)  # d_head unchanged: no change


# --- bookkeeping and errors --------------------------------------------------------------------------------


def test_record_and_private_seed():
    models = [mlp(3, [24, 24], 2, seed=s) for s in (0, 1)]  # different SP draws, redrawn alike below
    state = torch.random.get_rng_state()
    a, b = (parametrize(model, "mup", base_width=8, seed=7) for model in models)
    assert torch.equal(torch.random.get_rng_state(), state), "parametrize must not touch the global RNG"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    record = parametrization_of(a)
    assert record.parametrization is MUP and record.width == 24 and record.base_width == 8 and record.width_mult == 3
    assert parametrization_of(mlp(3, [4], 2)) is None


def test_applying_twice_raises():
    model = parametrize(mlp(3, [16, 16], 2), "mup", base_width=8)
    with pytest.raises(ConfigError, match=r"model is already parametrised \(mup, width 16, base width 8\)"):
        parametrize(model, "sp", base_width=8)
    with pytest.raises(ConfigError, match="already parametrised"):
        parametrize(copy.deepcopy(model), "mup", base_width=8)
    with pytest.raises(ConfigError, match=r"module '1' is already parametrised"):
        parametrize(nn.Sequential(nn.Linear(3, 16), model, nn.Linear(2, 2)), "mup", base_width=8)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
         r"cannot parametrise layer '0' \(Conv2d\)"),
        (nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8, affine=False), nn.Linear(8, 2)),
         r"cannot parametrise layer '1' \(BatchNorm1d\)"),
        (nn.Sequential(nn.Linear(3, 8), nn.Sequential(nn.Tanh(), nn.Linear(8, 8)), nn.Linear(8, 2)),
         r"cannot assign a width role to layer '1.1' \(Linear\); pass roles=\{'1.1': 'input' \| 'hidden' \| 'output'\}"),
        (nn.Sequential(nn.Linear(3, 8), nn.MultiheadAttention(8, 2)), r"cannot parametrise layer '1' \(MultiheadAttention\)"),
        (nn.Linear(3, 8), r"cannot assign a width role to layer '<model>' \(Linear\)"),
        (nn.Sequential(nn.Linear(3, 8), nn.Linear(9, 2)), r"layer '0' \(Linear\) feeds 8 features to a layer expecting 9"),
    ],
    ids=["conv", "batchnorm", "nested-linear", "multihead", "bare-linear", "shape-mismatch"],
)
def test_unsupported_models_name_the_layer(model, match):
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match=match):
        parametrize(model, "mup", base_width=4, width=8)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters())), "a refused model is left untouched"


def test_roles_override_makes_a_nested_model_parametrisable():
    model = nn.Sequential(nn.Linear(3, 8), nn.Sequential(nn.Tanh(), nn.Linear(8, 8)), nn.Tanh(), nn.Linear(8, 2))
    roles = {"0": "input", "1.1": "hidden", "3": "output"}
    parametrize(model, "mup", base_width=4, roles=roles)
    assert parametrization_of(model).width == 8 and model[1][1].weight_multiplier == 1.0
    with pytest.raises(ConfigError, match=r"role of '0' must be one of \('input', 'hidden', 'output'\), got 'first'"):
        parametrize(mlp(3, [8], 2), "mup", base_width=4, roles={"0": "first"})
    with pytest.raises(ConfigError, match=r"roles names '1', which is not a linear or embedding layer of Sequential"):
        parametrize(mlp(3, [8], 2), "mup", base_width=4, roles={"1": "hidden"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(base_width=0), "base_width must be a finite number > 0, got 0"),
     (dict(base_width=8, width=-1.0), "width must be a finite number > 0, got -1.0"),
     (dict(base_width=8, seed=-1), "seed"),
     (dict(base_width=8, base_d_head=4), "base_d_head applies to models with attention; Sequential has none")],
    ids=["base-width", "width", "seed", "base-d-head"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        parametrize(mlp(3, [8, 8], 2), "mup", **kwargs)


def test_width_must_be_inferable():
    with pytest.raises(ConfigError, match=r"cannot infer the width: the width-like dimensions are \[8, 16\]; pass width="):
        parametrize(mlp(3, [8, 16], 2), "mup", base_width=4)
    assert parametrization_of(parametrize(mlp(3, [8, 16], 2), "mup", base_width=4, width=8)).width_mult == 2


def test_param_groups_errors():
    with pytest.raises(ConfigError, match=r"Sequential is not parametrised; call lmech.models.parametrize\(model, 'mup'"):
        param_groups(mlp(3, [8], 2), 0.1)
    model = parametrize(mlp(3, [8, 8], 2), "mup", base_width=4)
    with pytest.raises(ConfigError, match="lr must be finite and > 0, got 0"):
        param_groups(model, 0)
    with pytest.raises(ConfigError, match=r"optimizer must be one of \('sgd', 'gd', 'momentum', 'adam'\), got 'lion'"):
        param_groups(model, 0.1, "lion")
    model.extra = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match=r"parameter 'extra.weight' was added after parametrize\(\)"):
        param_groups(model, 0.1)
    model.extra.requires_grad_(False)
    assert sum(len(g["params"]) for g in param_groups(model, 0.1)) == 6  # frozen parameters are left out


def test_structured_ntk_accepts_a_parametrised_mlp(generator):
    """ScaledLinear layers carry their multipliers, so lmech.measure.empirical_ntk's structured path applies and agrees
    with the per-example Jacobians."""
    from lmech.measure import empirical_ntk

    model = parametrize(mlp(3, [16, 16], 2, dtype=torch.float64), "mup", base_width=4)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    structured = empirical_ntk(model, x, x, output="full", method="structured")
    torch.testing.assert_close(structured, empirical_ntk(model, x, x, output="full", method="jacobian"), rtol=1e-10, atol=1e-12)


def test_tied_weights_are_refused_rather_than_silently_untied():
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
    model[4].weight = model[2].weight
    with pytest.raises(ConfigError, match="share one tensor"):
        parametrize(model, "mup", base_width=4)
