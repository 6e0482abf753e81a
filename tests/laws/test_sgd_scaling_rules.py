"""The sgd-scaling-rules law: the rules' hyperparameters, the trainer against torch.optim.Adam with the
square-root rule's settings, the quick setting end to end (slow), and config errors."""

import math

import numpy as np
import pytest
import torch

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.sgd_scaling_rules import SgdScalingRulesConfig, hyperparameters, train_to_examples
from lmech.models import mlp
from lmech.train.stacked import half_squared_error


def test_the_rules_follow_malladi_et_al():
    c = SgdScalingRulesConfig(base_batch=4, batch_sizes=(4, 8, 16, 32), adam_betas=(0.9, 0.999))
    sqrt, linear = hyperparameters("adam-sqrt", c, 16), hyperparameters("adam-linear", c, 16)
    assert sqrt["lr"] == pytest.approx(2 * c.adam_lr) and linear["lr"] == pytest.approx(4 * c.adam_lr)
    assert sqrt["betas"] == pytest.approx((0.6, 0.996)) and sqrt["eps"] == pytest.approx(c.adam_eps / 2)
    assert hyperparameters("sgd-linear", c, 32)["lr"] == pytest.approx(8 * c.sgd_lr)


def test_adam_runs_equal_torch_adam_with_the_rules_settings():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 5, generator=gen), torch.randn(64, 3, generator=gen)
    hyper = {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-7}
    net = train_to_examples(x, y, [3], "adam-sqrt", hyper, batch_size=8, examples=80, width=6)
    model = mlp(5, [6], 3, activation="tanh", seed=3)
    opt = torch.optim.Adam(model.parameters(), **hyper)
    draw = torch.Generator().manual_seed(20_000 + 7919 * 3 + 8)
    for _ in range(10):
        idx = torch.randint(0, 64, (8,), generator=draw)
        opt.zero_grad()
        half_squared_error(model(x[idx]), y[idx]).backward()
        opt.step()
    torch.testing.assert_close(net.member_vector(0), torch.nn.utils.parameters_to_vector(model.parameters()).double(),
                               rtol=1e-5, atol=1e-6)


def test_bad_settings_name_the_value():
    with pytest.raises(ConfigError, match="include base_batch 2"):
        SgdScalingRulesConfig(batch_sizes=(4, 8, 16))
    with pytest.raises(ConfigError, match="κ = 512"):
        SgdScalingRulesConfig(batch_sizes=(2, 4, 1024))
    with pytest.raises(ConfigError, match="powers of two"):
        SgdScalingRulesConfig(batch_sizes=(2, 6, 8))


@pytest.mark.slow
def test_quick_setting_passes_every_check():
    law = get_law("sgd-scaling-rules")
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    ratios = [r["value"] for r in result.metrics.rows if r["observable"] == "loss_ratio" and r["rule"] == "sgd-linear"]
    assert ratios[0] == 1.0 and math.isfinite(max(ratios)) and np.argmax(ratios) == len(ratios) - 1
