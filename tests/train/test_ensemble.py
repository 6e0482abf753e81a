"""Ensembles: every member ends where training it alone ends, and records what ``train`` records."""

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from lmech.errors import ConfigError, NonFiniteError
from lmech.models import mlp
from lmech.train import LossMonitor, Records, TrainConfig, train, train_ensemble

LRS = [0.02, 0.05, 0.1, 0.03]
INIT_SCALES = [1.0, 0.5, 2.0, 1.0]


def mse(out, y):
    return 0.5 * ((out - y) ** 2).sum(1).mean()


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    return x, y


class Residual(nn.Module):
    """Not a plain ``nn.Sequential`` of ``Linear`` layers: trained through ``vmap(functional_call)``."""

    def __init__(self, seed: int, dtype: torch.dtype):
        super().__init__()
        self.body = mlp(5, [16], 2, seed=seed, dtype=dtype)
        self.skip = nn.Linear(5, 2, bias=False, dtype=dtype)
        nn.init.zeros_(self.skip.weight)

    def forward(self, x):
        return self.body(x) + self.skip(x)


def members(kind="mlp", dtype=torch.float64):
    """Four members: different seeds and initial scales."""
    models = []
    for seed, scale in enumerate(INIT_SCALES):
        model = mlp(5, [16], 2, seed=seed, dtype=dtype) if kind == "mlp" else Residual(seed, dtype)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
        models.append(model)
    return models


def configs(**kw):
    base = TrainConfig(**{"lr": 0.05, "steps": 20, "monitor_every": 7, **kw})
    scale = 0.1 if base.optimizer == "adam" else 1.0
    return [replace(base, lr=lr * scale) for lr in LRS]


def index_of(i, config):
    return {"lr": config.lr, "seed": i, "init_scale": INIT_SCALES[i]}


def alone_and_together(problem, cfgs, kind="mlp", dtype=torch.float64, monitors=()):
    data = tuple(t.to(dtype) for t in problem)
    together = members(kind, dtype)
    alone = copy.deepcopy(together)
    index = [index_of(i, c) for i, c in enumerate(cfgs)]
    records = train_ensemble(together, mse, data, cfgs, monitors, index=index)
    expected = Records()
    for model, config, ix in zip(alone, cfgs, index):
        expected.extend(train(model, mse, data, config, monitors, index=ix))
    return together, alone, records, expected


def assert_same_runs(together, alone, records, expected, rtol, atol):
    for a, b in zip(together, alone):
        torch.testing.assert_close(dict(a.named_parameters()), dict(b.named_parameters()), rtol=rtol, atol=atol,
                                   equal_nan=True)
    drop_value = [{k: v for k, v in r.items() if k != "value"} for r in records.rows]
    assert drop_value == [{k: v for k, v in r.items() if k != "value"} for r in expected.rows]
    torch.testing.assert_close(torch.tensor([r["value"] for r in records.rows]),
                               torch.tensor([r["value"] for r in expected.rows]), rtol=rtol, atol=atol, equal_nan=True)


OPTIMIZERS = [dict(optimizer="gd"), dict(optimizer="sgd", batch_size=16), dict(optimizer="momentum", momentum=0.9),
              dict(optimizer="adam"), dict(optimizer="adam", batch_size=8, weight_decay=0.1),
              dict(optimizer="momentum", batch_size=10, weight_decay=0.01)]
OPTIMIZER_IDS = ["gd", "sgd", "momentum", "adam", "adamw-minibatch", "momentum-minibatch-decay"]


@pytest.mark.parametrize("kw", OPTIMIZERS, ids=OPTIMIZER_IDS)
def test_members_match_training_each_alone_float64(problem, kw):
    assert_same_runs(*alone_and_together(problem, configs(**kw)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [OPTIMIZERS[1], OPTIMIZERS[4]], ids=["sgd", "adamw-minibatch"])
def test_generic_modules_match_training_each_alone(problem, kw):
    assert_same_runs(*alone_and_together(problem, configs(**kw), kind="residual"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [OPTIMIZERS[2], OPTIMIZERS[4]], ids=["momentum", "adamw-minibatch"])
def test_members_match_training_each_alone_float32(problem, kw):
    assert_same_runs(*alone_and_together(problem, configs(**kw), dtype=torch.float32), rtol=1e-5, atol=1e-6)


def test_every_hyperparameter_may_differ_per_member(problem):
    cfgs = [TrainConfig(optimizer="momentum", lr=0.05, steps=15, momentum=m, weight_decay=wd)
            for m, wd in [(0.0, 0.0), (0.5, 0.1), (0.9, 0.0), (0.8, 0.01)]]
    assert_same_runs(*alone_and_together(problem, cfgs), rtol=1e-12, atol=1e-12)
    cfgs = [TrainConfig(optimizer="adam", lr=lr, steps=15, betas=b, weight_decay=wd)
            for lr, b, wd in [(1e-2, (0.9, 0.999), 0.0), (3e-3, (0.5, 0.99), 0.1), (1e-2, (0.0, 0.9), 0.01),
                              (5e-3, (0.9, 0.999), 0.0)]]
    assert_same_runs(*alone_and_together(problem, cfgs), rtol=1e-12, atol=1e-12)


def test_a_diverging_member_is_frozen_and_the_others_go_on(problem):
    cfgs = configs(steps=40)
    cfgs[2] = replace(cfgs[2], lr=1e5)
    together, alone, records, expected = alone_and_together(problem, cfgs, monitors=[LossMonitor(mse, problem)])
    assert_same_runs(together, alone, records, expected, rtol=1e-12, atol=1e-12)
    steps, flag = records.series("diverged", seed=2)
    assert flag.tolist() == [1.0]
    assert records.series("loss", seed=2)[0][-1] == steps[0] < 40
    for seed in (0, 1, 3):
        assert records.series("diverged", seed=seed)[0].size == 0
        assert records.series("loss", seed=seed)[0][-1] == 40


class ExplodingMonitor:
    """Raises :class:`NonFiniteError` at step 7 for models marked ``explodes``, as curvature may overflow."""

    def __call__(self, model, step):
        if step >= 7 and getattr(model, "explodes", False):
            raise NonFiniteError("curvature overflowed")
        with torch.no_grad():
            return {"norm": float(sum(p.square().sum() for p in model.parameters()))}


def test_a_monitor_that_finds_divergence_stops_only_its_member(problem):
    cfgs = configs(monitor_every=7)
    together = members()
    together[1].explodes = True
    alone = copy.deepcopy(together)
    index = [index_of(i, c) for i, c in enumerate(cfgs)]
    records = train_ensemble(together, mse, problem, cfgs, [ExplodingMonitor()], index=index)
    expected = Records()
    for model, config, ix in zip(alone, cfgs, index):
        expected.extend(train(model, mse, problem, config, [ExplodingMonitor()], index=ix))
    assert_same_runs(together, alone, records, expected, rtol=1e-12, atol=1e-12)
    assert records.series("diverged", seed=1)[0].tolist() == [7]


def test_monitors_see_each_member_at_the_cadence(problem):
    cfgs = configs(steps=15, monitor_every=4)
    monitor = LossMonitor(mse, problem)
    together, alone, records, expected = alone_and_together(problem, cfgs, monitors=[monitor])
    assert_same_runs(together, alone, records, expected, rtol=1e-12, atol=1e-12)
    assert records.series("full_loss", seed=3)[0].tolist() == [0, 4, 8, 12, 15]


def test_default_index_and_progress(problem):
    class Count:
        units = 0

        def task(self, description, total):
            pass

        def advance(self, units=1):
            self.units += units

    count = Count()
    records = train_ensemble(members()[:3], mse, problem, TrainConfig(lr=0.05, steps=6), progress=count)
    assert {r["member"] for r in records.rows} == {0, 1, 2}
    assert records.series("loss", member=1)[0].tolist() == list(range(7))
    assert count.units == 3 * 6


def test_full_batch_members_may_have_different_seeds(problem):
    cfgs = [replace(c, seed=i) for i, c in enumerate(configs())]
    assert_same_runs(*alone_and_together(problem, cfgs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "change, message",
    [(dict(steps=21), "steps"), (dict(optimizer="momentum"), "optimizer"), (dict(seed=3), "seed"),
     (dict(monitor_every=3), "monitor_every")],
    ids=["steps", "optimizer", "minibatch-seed", "monitor_every"],
)
def test_configs_must_share_the_schedule(problem, change, message):
    cfgs = configs(optimizer="sgd", batch_size=16)
    cfgs[2] = replace(cfgs[2], **change)
    with pytest.raises(ConfigError, match=f"share {message}.*member 2"):
        train_ensemble(members(), mse, problem, cfgs)


def test_members_must_share_one_architecture(problem):
    config = TrainConfig(lr=0.1, steps=2)
    with pytest.raises(ConfigError, match=r"'0.weight' is of shape \(32, 5\).* in member 1, of shape \(16, 5\)"):
        train_ensemble([mlp(5, [16], 2), mlp(5, [32], 2)], mse, problem, config)
    with pytest.raises(ConfigError, match="member 1 is a Residual, member 0 a Sequential"):
        train_ensemble([mlp(5, [16], 2), Residual(0, torch.float64)], mse, problem, config)
    with pytest.raises(ConfigError, match="member 1 prints as"):
        train_ensemble([mlp(5, [16], 2), mlp(5, [16], 2, activation="relu")], mse, problem, config)
    with pytest.raises(ConfigError, match="float32.* in member 1, .*float64.* in member 0"):
        train_ensemble([mlp(5, [16], 2, dtype=torch.float64), mlp(5, [16], 2)], mse, problem, config)


def test_bad_arguments_are_refused(problem):
    config = TrainConfig(lr=0.1, steps=2)
    with pytest.raises(ConfigError, match="at least one model"):
        train_ensemble([], mse, problem, config)
    with pytest.raises(ConfigError, match="one per model"):
        train_ensemble(members(), mse, problem, configs()[:3])
    with pytest.raises(ConfigError, match="one mapping per model"):
        train_ensemble(members(), mse, problem, config, index=[{"a": 1}])
    with pytest.raises(ConfigError, match="members 0 and 2 both have"):
        train_ensemble(members(), mse, problem, config, index=[{"a": 1}, {"a": 2}, {"a": 1}, {"a": 3}])
    with pytest.raises(ConfigError, match=r"must return a scalar, got shape \(64, 2\)"):
        train_ensemble(members(), lambda out, y: (out - y) ** 2, problem, config)
