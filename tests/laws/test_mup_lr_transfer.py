"""The mup-lr-transfer law: the parabola optimum against hand-computed cases, the stacked trainer against
torch.optim.Adam with the parametrisation's parameter groups, the checks' handling of unlocated optima and of a
wrong direction, config errors, a tiny transformer sweep end to end, and the quick setting end to end (slow)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.mup_lr_transfer import (
    LrSweepMLP,
    MupLrTransferConfig,
    Optimum,
    batch_indices,
    evaluate_pixels,
    lr_factor,
    next_pixel_loss,
    parabola_optimum,
    train_transformer,
    transfer_checks,
)
from lmech.models import Transformer, mlp, param_groups, parametrize


def test_parabola_through_three_points_by_hand():
    # log losses 1, 0, 2 at x = -8, -7, -6: y = 1.5 u² + 0.5 u (u = x + 7), vertex u = -1/6, value -1/24
    opt = parabola_optimum([-9.0, -8.0, -7.0, -6.0, -5.0], [50.0, math.e, 1.0, math.e**2, 9.0])
    assert opt.bracketed
    assert opt.log2_lr == pytest.approx(-7 - 1 / 6, rel=1e-12)
    assert opt.fitted_loss == pytest.approx(math.exp(-1 / 24), rel=1e-12)
    assert opt.loss == 1.0


def test_parabola_recovers_an_exact_log_parabola_on_a_half_step_grid():
    grid = np.arange(-10.0, -3.9, 0.5)
    opt = parabola_optimum(grid, np.exp(0.8 * (grid + 7.3) ** 2 - 3.0))
    assert opt.log2_lr == pytest.approx(-7.3, abs=1e-9)
    assert opt.fitted_loss == pytest.approx(math.exp(-3.0), rel=1e-9)


def test_diverged_and_edge_minima_are_not_located():
    grid = [-3.0, -2.0, -1.0, 0.0]
    beside_divergence = parabola_optimum(grid, [0.9, 0.5, float("nan"), float("inf")])
    assert not beside_divergence.bracketed and beside_divergence.log2_lr == -2.0
    on_edge = parabola_optimum(grid, [0.1, 0.5, 0.7, 0.9])
    assert not on_edge.bracketed and on_edge.log2_lr == -3.0
    all_diverged = parabola_optimum(grid, [float("inf")] * 4)
    assert math.isnan(all_diverged.log2_lr) and not all_diverged.bracketed


def test_parabola_rejects_bad_input():
    with pytest.raises(ConfigError, match="ascending"):
        parabola_optimum([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="length >= 3"):
        parabola_optimum([0.0, 1.0], [1.0, 2.0])


@pytest.mark.parametrize("schedule", ["constant", "linear"])
@pytest.mark.parametrize("parametrization", ["sp", "mup"])
def test_stacked_members_equal_torch_adam_with_param_groups(parametrization, schedule):
    gen = torch.Generator().manual_seed(0)
    x, labels = torch.randn(40, 5, generator=gen), torch.randint(0, 3, (40,), generator=gen)
    lrs, seeds, steps, batch = [0.003, 0.02], [4, 7], 7, 8
    net = LrSweepMLP(5, 16, 3, parametrization, base_width=4, lrs=lrs, seeds=seeds)
    net.train(x, labels, steps=steps, batch_size=batch, schedule=schedule)
    for i, (seed, lr) in enumerate((s, lr) for s in seeds for lr in lrs):
        model = parametrize(mlp(5, [16, 16], 3, activation="relu", seed=seed), parametrization, base_width=4, seed=seed)
        adam = torch.optim.Adam(param_groups(model, lr, "adam"))
        decay = torch.optim.lr_scheduler.LambdaLR(adam, lambda t: lr_factor(schedule, t, steps))
        for idx in batch_indices(len(x), batch, steps, seed):
            adam.zero_grad()
            F.cross_entropy(model(x[idx]), labels[idx]).backward()
            adam.step()
            decay.step()
        expected = {name: p.detach() for name, p in model.named_parameters()}
        torch.testing.assert_close(net.member_state(i), expected, rtol=1e-5, atol=1e-6)


def test_a_diverged_member_touches_no_other():
    gen = torch.Generator().manual_seed(1)
    x, labels = torch.randn(32, 5, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    clean = LrSweepMLP(5, 8, 3, "mup", base_width=4, lrs=[0.01, 0.01], seeds=[0])
    broken = LrSweepMLP(5, 8, 3, "mup", base_width=4, lrs=[0.01, 0.01], seeds=[0])
    broken.weights[1][0, 0, 0] = float("nan")
    for net in (clean, broken):
        net.train(x, labels, steps=5, batch_size=8)
    with torch.no_grad():
        losses = broken.losses(x, labels)
    assert not math.isfinite(losses[0]) and math.isfinite(losses[1])
    torch.testing.assert_close(broken.member_state(1), clean.member_state(1), rtol=0, atol=0)


def test_sp_and_mup_coincide_at_the_base_width():
    sp = LrSweepMLP(64, 32, 10, "sp", base_width=32, lrs=[0.01], seeds=[3])
    mup = LrSweepMLP(64, 32, 10, "mup", base_width=32, lrs=[0.01], seeds=[3])
    torch.testing.assert_close(sp.member_state(0), mup.member_state(0), rtol=0, atol=0)
    assert sp.weight_multipliers == mup.weight_multipliers and sp._rates == mup._rates


def test_batches_are_epochs_of_a_permutation():
    order = batch_indices(10, 4, 5, seed=2)
    assert order.shape == (5, 4)
    assert sorted(order[:2].flatten().tolist()) == sorted(set(order[:2].flatten().tolist()))  # no repeat in an epoch
    torch.testing.assert_close(order, batch_indices(10, 4, 5, seed=2))


def _optimum(x: float, located: bool = True) -> Optimum:
    return Optimum(x, 0.1, 0.1, located)


def test_checks_count_grid_steps_and_fail_on_an_unlocated_optimum():
    widths = [64, 256, 1024]
    best = {"mup": np.array([0.05, 0.04, 0.047]), "sp": np.array([0.05, 0.04, 0.04])}
    se = {"mup": np.array([0.002, 0.002, 0.002]), "sp": np.zeros(3)}
    optima = {"mup": [_optimum(-7.0), _optimum(-7.6), _optimum(-6.2)], "sp": [_optimum(-7.0), _optimum(-8.1), _optimum(-9.5)]}
    drift, ratio, rise, shift = transfer_checks(optima, best, se, widths, step=0.5)
    assert drift.measured == pytest.approx(1.6) and not drift.passed  # 0.8 in log2 = 1.6 half-steps
    assert ratio.measured == pytest.approx(0.94) and ratio.passed
    assert rise.measured == pytest.approx(0.007 / math.hypot(0.002, 0.002)) and not rise.passed
    assert shift.measured == pytest.approx(5.0) and shift.passed
    optima["mup"][1] = _optimum(-4.0, located=False)
    assert not transfer_checks(optima, best, se, widths, step=1.0)[0].passed


def test_a_wrong_direction_fails_with_the_prefix_in_every_name():
    widths = [16, 64, 256]
    best = {p: np.array([1.6, 1.53, 1.52]) for p in ("sp", "mup")}
    se = {p: np.full(3, 0.005) for p in ("sp", "mup")}
    up = [_optimum(-5.3), _optimum(-4.2), _optimum(-2.9)]  # SP's optimum moving *up* by 2.4 steps
    checks = transfer_checks({"mup": [_optimum(-5.3)] * 3, "sp": up}, best, se, widths, step=1.0, prefix="transformer: ")
    assert all(c.name.startswith("transformer: ") for c in checks)
    assert [c.passed for c in checks] == [True, True, True, False]
    assert checks[3].measured == pytest.approx(-2.4)
    worse = {"sp": best["sp"], "mup": np.array([1.5, 1.53, 1.6])}  # muP's loss at the optimum rising with width
    checks = transfer_checks({"mup": [_optimum(-5.3)] * 3, "sp": up[::-1]}, worse, se, widths, step=1.0)
    assert [c.passed for c in checks] == [True, False, False, True]  # SP now moves down 2.4 steps


def test_transformer_trainer_is_plain_adam_with_param_groups_on_next_pixel_loss():
    images = torch.randint(0, 17, (12, 10), generator=torch.Generator().manual_seed(0))
    model, diverged = train_transformer(images, width=16, parametrization="mup", base_width=8, lr=0.01, seed=3, steps=4,
                                        batch_size=4, heads=2, layers=1)
    reference = parametrize(Transformer(vocab=17, context=9, d_model=16, n_layers=1, n_heads=2, seed=3), "mup",
                            base_width=8, seed=3)
    adam = torch.optim.Adam(param_groups(reference, 0.01, "adam"))
    for idx in batch_indices(12, 4, 4, 3):
        adam.zero_grad()
        logits = reference(images[idx, :-1])
        F.cross_entropy(logits.reshape(-1, 17), images[idx, 1:].reshape(-1)).backward()
        adam.step()
    assert not diverged
    torch.testing.assert_close(dict(model.named_parameters()), dict(reference.named_parameters()), rtol=1e-5, atol=1e-6)
    assert evaluate_pixels(model, images, chunk=5) == pytest.approx(next_pixel_loss(model, images).item(), rel=1e-5)
    _, diverged = train_transformer(images, width=16, parametrization="sp", base_width=8, lr=1e30, seed=3, steps=20,
                                    batch_size=4, heads=2, layers=1)
    assert diverged


def test_transformer_sp_and_mup_coincide_at_the_base_width():
    def build(p):
        return parametrize(Transformer(vocab=17, context=9, d_model=16, n_layers=2, n_heads=4, seed=1), p,
                           base_width=16, seed=1)

    sp, mup = build("sp"), build("mup")
    torch.testing.assert_close(dict(sp.named_parameters()), dict(mup.named_parameters()), rtol=0, atol=0)
    assert [g["lr"] for g in param_groups(sp, 0.01, "adam")] == [g["lr"] for g in param_groups(mup, 0.01, "adam")]
    assert sp.blocks[0].attn.scale == mup.blocks[0].attn.scale
    tokens = torch.randint(0, 17, (3, 9), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(sp(tokens), mup(tokens), rtol=0, atol=0)


def test_a_tiny_transformer_sweep_adds_its_checks_summary_and_figure_row():
    law = get_law("mup-lr-transfer")
    config = MupLrTransferConfig(widths=(8, 16), base_width=8, steps=3, batch_size=8, log2_lr_range=(-8.0, -4.0),
                                 transformer=True, transformer_widths=(8, 16), transformer_base_width=8,
                                 transformer_heads=2, transformer_layers=1, transformer_log2_lr_range=(-8.0, -4.0),
                                 transformer_steps=3, transformer_batch_size=4, transformer_eval_size=8)
    result = law.run(config)
    names = [c.name for c in result.checks]
    assert len(names) == 8 and sum(n.startswith("transformer: ") for n in names) == 4
    assert len(result.figures["mup_lr_transfer"].axes) == 6  # two rows of three panels
    for p in ("sp", "mup"):
        for w in (8, 16):
            assert math.isfinite(result.summary[f"transformer, {p}: loss at the optimum at width {w}"])
    # SP and muP coincide at the base width, so muP reuses SP's runs there
    assert result.summary["transformer, sp: loss at the optimum at width 8"] == \
        result.summary["transformer, mup: loss at the optimum at width 8"]
    observables = set(result.metrics.to_arrow().column("observable").to_pylist())
    assert {"transformer_train_loss", "transformer_test_loss", "transformer_log2_lr_optimum"} <= observables
    assert any(c.startswith("transformer, ") for c in result.curves.column("curve").to_pylist())
    without = law.run(MupLrTransferConfig(widths=(8, 16), base_width=8, steps=3, batch_size=8,
                                          log2_lr_range=(-8.0, -4.0)))
    assert len(without.checks) == 4 and len(without.figures["mup_lr_transfer"].axes) == 3
    assert law.config("full").transformer and not law.config("quick").transformer and not law.config().transformer

    with pytest.raises(ConfigError, match="strictly ascending"):
        MupLrTransferConfig(widths=(64, 32, 128))
    with pytest.raises(ConfigError, match="whole number"):
        MupLrTransferConfig(log2_lr_range=(-13.0, -4.5))
    with pytest.raises(ConfigError, match="seeds must be an integer >= 2"):
        MupLrTransferConfig(seeds=1)
    with pytest.raises(ConfigError, match="activation must be one of"):
        MupLrTransferConfig(activation="swish")
    with pytest.raises(ConfigError, match="schedule must be one of"):
        MupLrTransferConfig(schedule="cosine")
    with pytest.raises(ConfigError, match="multiples of transformer_heads"):
        MupLrTransferConfig(transformer_widths=(16, 66))
    with pytest.raises(ConfigError, match="transformer_log2_lr_range"):
        MupLrTransferConfig(transformer_log2_lr_range=(-8.0, -6.0))
    with pytest.raises(ConfigError, match="transformer_seeds must be"):
        MupLrTransferConfig(transformer_seeds=1)
    with pytest.raises(ConfigError, match="transformer_eval_size"):
        MupLrTransferConfig(transformer_eval_size=298)
    assert MupLrTransferConfig().log2_lrs.tolist() == list(np.arange(-13.0, -3.5))


@pytest.mark.slow
def test_quick_setting_passes_every_check():
    law = get_law("mup-lr-transfer")
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    assert "mup_lr_transfer" in result.figures and len(result.checks) == 4
    sp = [result.summary[f"sp: log2 η* at width {w}"] for w in (64, 256, 1024)]
    assert sp[0] > sp[1] > sp[2]
