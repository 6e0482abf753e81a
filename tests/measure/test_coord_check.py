"""Coordinate checks: the recorded sizes against brute force, the spectral norms against SVD, and the muP-vs-SP
coordinate check on the digits itself."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmech.data.digits import load_digits
from lmech.errors import ConfigError
from lmech.measure import coord_check, spectral_norms, width_slopes
from lmech.models import Transformer, mlp, parametrize
from lmech.train import Records


def mse(outputs, targets):
    return ((outputs - targets) ** 2).mean()


def table(records, observable, step):
    """``{(width, seed, layer): value}`` of one observable at one step."""
    return {(r["width"], r["seed"], r["layer"]): r["value"] for r in records.rows
            if r["observable"] == observable and r["step"] == step}


def test_sizes_equal_brute_force(generator):
    """Replay the same SGD steps by hand and compute mean|h_l| and mean|α(W_t − W_0) x_l| layer by layer."""
    x = torch.randn(12, 4, generator=generator, dtype=torch.float64)
    y = torch.randn(12, 3, generator=generator, dtype=torch.float64)

    def make(width, seed):
        return parametrize(mlp(4, [width, width], 3, dtype=torch.float64, seed=seed), "mup", base_width=4, seed=seed)

    records = coord_check(make, [16], (x, y), loss_fn=mse, lr=0.3, optimizer="sgd", steps=2, seeds=(5,))
    model = make(16, 5)
    initial = [model[i].weight.detach().clone() for i in (0, 2, 4)]
    for step in range(3):
        h, expected = x, {}
        for i in range(5):
            out = model[i](h)
            if i % 2 == 0:
                delta = model[i].weight_multiplier * (model[i].weight.detach() - initial[i // 2])
                expected[str(i)] = (out.abs().mean().item(), (h @ delta.T).abs().mean().item())
            h = out
        got_act, got_upd = table(records, "activation", step), table(records, "update", step)
        for name, (act, upd) in expected.items():
            assert got_act[16, 5, name] == pytest.approx(act, rel=1e-12)
            assert got_upd[16, 5, name] == pytest.approx(upd, rel=1e-12, abs=1e-300)
        assert table(records, "loss", step)[16, 5, ""] == pytest.approx(mse(h, y).item(), rel=1e-12)
        model.zero_grad()
        mse(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.3 * p.grad  # muP in the table's form trains every parameter with SGD at η (c_SGD = 0)
    assert all(v == 0 for v in table(records, "update", 0).values())


def test_embedding_updates_and_hooks_removed(generator):
    tokens = torch.randint(0, 9, (4, 6), generator=generator)

    def make(width, seed):
        model = Transformer(vocab=9, context=6, d_model=width, n_layers=1, n_heads=2, seed=seed, dtype=torch.float64)
        return parametrize(model, "mup", base_width=8, seed=seed)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, 9), targets.reshape(-1))

    built = []
    records = coord_check(lambda w, s: built.append(make(w, s)) or built[-1], [8, 16], (tokens, tokens), loss_fn=loss_fn,
                          lr=1e-2, optimizer="adam", steps=2)
    layers = {r["layer"] for r in records.rows if r["observable"] == "update"}
    assert {"tok_emb", "pos_emb", "blocks.0.attn.q", "blocks.0.down", "unembed"} <= layers
    assert "blocks.0.ln1" in {r["layer"] for r in records.rows if r["observable"] == "activation"} - layers
    assert all(not m._forward_hooks for model in built for m in model.modules())
    # the token embedding's update, by hand, on the trained model: mean |α (E_t − E_0)[tokens]|
    fresh = make(16, 0)
    moved = built[-1].tok_emb.weight_multiplier * (built[-1].tok_emb.weight.detach() - fresh.tok_emb.weight.detach())
    assert table(records, "update", 2)[16, 0, "tok_emb"] == pytest.approx(moved[tokens].abs().mean().item(), rel=1e-12)


def test_unparametrised_model_uses_one_learning_rate(generator):
    x, y = torch.randn(8, 3, generator=generator), torch.randn(8, 2, generator=generator)
    records = coord_check(lambda w, s: mlp(3, [w], 2, seed=s), [4, 8], (x, y), loss_fn=mse, lr=0.1, optimizer="sgd",
                          steps=1, seeds=(0, 1))
    assert isinstance(records, Records)
    assert {(r["width"], r["seed"]) for r in records.rows} == {(4, 0), (4, 1), (8, 0), (8, 1)}
    arrow = records.to_arrow()
    assert set(arrow.column_names) == {"step", "observable", "value", "layer", "width", "seed"}


def test_mup_coordinates_are_width_independent_and_sp_updates_grow():
    """TP V's coordinate check on the digits: a tanh MLP 64 → w → w → 10, cross-entropy, Adam at one base learning
    rate (1e-2, a good rate at the base width 128), 4 full-batch steps on 256 images, widths 128..1024, 2 seeds.
    Under muP the hidden preactivations' mean |coordinate| at steps 3 and 4 differs by less than 1.3× across widths
    (measured: ≤ 1.01×; ≤ 1.03× for two other seed pairs) and every layer's update has |slope| < 0.15 (measured
    ≤ 0.02); under SP the hidden and output updates ΔW·x grow like a power of width ≥ 0.3 (measured: 0.82 and 0.56;
    Adam's steps of size η per entry, summed over fan_in = w aligned terms, predict 1 for the hidden layer)."""
    train, _ = load_digits(256, 0, seed=0)
    widths = [128, 256, 512, 1024]
    results = {}
    for name in ("mup", "sp"):
        def make(width, seed, name=name):
            return parametrize(mlp(64, [width, width], 10, activation="tanh", seed=seed), name, base_width=128, seed=seed)

        results[name] = coord_check(make, widths, (train.inputs, train.labels), loss_fn=F.cross_entropy, lr=1e-2,
                                    optimizer="adam", steps=4, seeds=(0, 1))
    for step in (3, 4):
        acts = table(results["mup"], "activation", step)
        for layer in ("0", "2"):
            per_width = [np.mean([acts[w, s, layer] for s in (0, 1)]) for w in widths]
            assert max(per_width) / min(per_width) < 1.3, (step, layer, per_width)
    mup_slopes, sp_slopes = width_slopes(results["mup"], "update"), width_slopes(results["sp"], "update")
    assert sp_slopes["2"] >= 0.3 and sp_slopes["4"] >= 0.3, sp_slopes
    assert all(abs(s) < 0.15 for s in mup_slopes.values()), mup_slopes


def test_spectral_norms_against_svd(generator):
    model = parametrize(mlp(5, [12, 12], 3, dtype=torch.float64), "mup", base_width=6)
    initial = {name: m.weight.detach().clone() for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    noise = 0.1 * torch.randn(12, 12, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        model[2].weight.add_(noise)
    norms = spectral_norms(model, initial)
    for name, layer in (("0", model[0]), ("2", model[2]), ("4", model[4])):
        top = torch.linalg.svdvals(layer.weight_multiplier * layer.weight.detach())[0]
        assert norms[name]["spectral_norm"] == pytest.approx(float(top), rel=1e-12)
        assert norms[name]["spectral_scale"] == math.sqrt(layer.out_features / layer.in_features)
    assert norms["2"]["update_spectral_norm"] == pytest.approx(float(torch.linalg.svdvals(noise)[0]), rel=1e-12)
    assert norms["0"]["update_spectral_norm"] == 0.0 and math.isnan(spectral_norms(model)["0"]["update_spectral_norm"])


def test_spectral_condition_at_initialisation():
    """Yang, Simon, Bernstein 2023: muP's initial weights have ‖W_l‖₂ ∝ √(fan_out/fan_in) in every layer; SP's readout
    has ‖W‖₂ = Θ(1), i.e. √m too large relative to √(fan_out/fan_in) ∝ m^{-½}. Slopes of ‖W‖/√(fan_out/fan_in)
    against width over 64..512 with 2 inputs and 2 outputs: a Gaussian n×2 matrix's norm is its std times
    √n + √2 (Bai–Yin), so the finite-width correction to the input layer's and readout's slope is about -0.05."""
    widths = [64, 128, 256, 512]
    ratios = {name: {layer: [] for layer in "024"} for name in ("mup", "sp")}
    for name in ratios:
        for width in widths:
            norms = spectral_norms(parametrize(mlp(2, [width, width], 2), name, base_width=64, seed=0))
            for layer in "024":
                ratios[name][layer].append(norms[layer]["spectral_norm"] / norms[layer]["spectral_scale"])
    slope = {name: {layer: np.polyfit(np.log(widths), np.log(v), 1)[0] for layer, v in per.items()}
             for name, per in ratios.items()}
    assert all(abs(s) < 0.1 for s in slope["mup"].values()), slope
    assert slope["sp"]["4"] == pytest.approx(0.5, abs=0.1) and abs(slope["sp"]["2"]) < 0.1, slope


def test_spectral_rows_in_coord_check(generator):
    x, y = torch.randn(6, 3, generator=generator), torch.randn(6, 2, generator=generator)
    make = lambda w, s: parametrize(mlp(3, [w, w], 2, seed=s), "mup", base_width=4)  # noqa: E731
    records = coord_check(make, [8], (x, y), loss_fn=mse, lr=0.01, steps=1, spectral=True)
    assert set(table(records, "update_spectral_norm", 0).values()) == {0.0}
    assert all(v > 0 for v in table(records, "update_spectral_norm", 1).values())


def test_divergence_stops_training():
    x, y = torch.ones(4, 2), torch.zeros(4, 1)
    records = coord_check(lambda w, s: mlp(2, [w], 1, activation="identity", seed=s), [64], (x, y), loss_fn=mse, lr=1e6,
                          optimizer="sgd", steps=50)
    steps = sorted({r["step"] for r in records.rows})
    assert steps[-1] < 50 and not math.isfinite(table(records, "loss", steps[-1])[64, 0, ""])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(widths=[]), r"widths must be a non-empty list of integers >= 1, got \[\]"),
     (dict(widths=[0]), "widths"),
     (dict(seeds=()), "seeds must not be empty"),
     (dict(lr=-1.0), "lr must be finite and > 0, got -1.0"),
     (dict(steps=0), "steps must be an integer >= 1, got 0"),
     (dict(optimizer="rmsprop"), r"optimizer must be one of \('sgd', 'adam'\), got 'rmsprop'")],
    ids=["no-widths", "zero-width", "no-seeds", "lr", "steps", "optimizer"],
)
def test_bad_arguments(kwargs, match):
    args = dict(widths=[4], lr=0.1, steps=1) | kwargs
    with pytest.raises(ConfigError, match=match):
        coord_check(lambda w, s: mlp(2, [w], 1), data=(torch.ones(2, 2), torch.ones(2, 1)), loss_fn=mse, **args)


def test_width_slopes_reads_the_last_step_and_averages_seeds():
    records = Records()
    for width in (10, 100):
        for seed, factor in ((0, 0.5), (1, 1.5)):
            records.add(0, "update", 1.0, width=width, seed=seed, layer="a")
            records.add(2, "update", factor * width, width=width, seed=seed, layer="a")
    assert width_slopes(records)["a"] == pytest.approx(1.0)
    assert width_slopes(records, step=0)["a"] == pytest.approx(0.0)
    assert width_slopes(records, "activation") == {}
