"""The critical-batch-size law: its batched trainer against plain torch SGD, the seed averaging, the
quick setting end to end (slow), and its config errors."""

import numpy as np
import pytest
import torch

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.critical_batch_size import best_steps, noise_scale_at, sgd_to_target
from lmech.models import mlp
from lmech.train.stacked import half_squared_error


@pytest.fixture(scope="module")
def problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen)
    teacher = torch.randn(6, 3, generator=gen)
    y = torch.nn.functional.one_hot((x @ teacher).argmax(1), 3).float()  # learnable labels
    return x, y


def _schedule(limit: int) -> list[int]:
    """The law's evaluation steps: every step, then never more than 2 % of the steps apart."""
    steps = [1]
    while steps[-1] < limit:
        steps.append(steps[-1] + max(1, int(steps[-1] * 0.02)))
    return steps


def test_batched_sgd_equals_torch_sgd_per_learning_rate(problem):
    """Each learning rate's run equals its own nn.Module trained by torch.optim.SGD on the same batches: at
    the evaluation where the law saw the target crossed, the torch model has the same parameters, its loss
    is at or below the target there and above it at the evaluation before."""
    x, y = problem
    lrs, target, b = (0.3, 0.4, 0.5), 0.1, 16
    sweep = sgd_to_target(x, y, lrs, b, target=target, width=8, seed=3, max_steps=400)
    assert np.isfinite(sweep.steps).all()
    schedule = _schedule(400)
    for k, lr in enumerate(lrs):
        crossing = next(t for t in schedule if t >= sweep.steps[k])
        before = schedule[schedule.index(crossing) - 1]
        model = mlp(6, [8], 3, activation="tanh", seed=3)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(10_000 + 3 * 4099 + b)
        for step in range(1, crossing + 1):
            idx = torch.randint(0, len(x), (b,), generator=gen)
            opt.zero_grad()
            half_squared_error(model(x[idx]), y[idx]).backward()
            opt.step()
            if step == before:
                with torch.no_grad():
                    assert half_squared_error(model(x), y) > target
        with torch.no_grad():
            assert half_squared_error(model(x), y) <= target
        flat = torch.nn.utils.parameters_to_vector(model.parameters()).double()
        torch.testing.assert_close(sweep.crossing[k], flat, rtol=1e-4, atol=1e-5)


def test_noise_scale_at_rebuilds_the_network(problem):
    x, y = problem
    model = mlp(6, [8], 3, activation="tanh", seed=1, dtype=torch.float64)
    flat = torch.nn.utils.parameters_to_vector(model.parameters())
    n = noise_scale_at(flat, x, y, 8, num_probes=4, seed=0)
    from lmech.measure.noise_scale import gradient_noise_scale
    direct = gradient_noise_scale(model, half_squared_error, x.double(), y.double())
    assert n.b_simple == pytest.approx(direct.b_simple, rel=1e-12)


def test_best_steps_averages_seeds_geometrically():
    steps = np.array([[[100.0, 50.0, np.inf]], [[400.0, 200.0, 10.0]]])  # (seeds, batch sizes, lrs)
    s, best = best_steps(steps)
    assert best.tolist() == [1] and s[0] == pytest.approx(100.0)  # sqrt(50 · 200); lr 2 failed on one seed


def test_bad_settings_name_the_value():
    law = get_law("critical-batch-size")
    with pytest.raises(ConfigError, match="powers of two, got 24"):
        law.config(batch_sizes=(8, 24, 256))
    with pytest.raises(ConfigError, match="at least 6 powers of two"):
        law.config(batch_sizes=(8, 16, 32, 64))
    with pytest.raises(ConfigError, match="ascending"):
        law.config(lrs=(0.5, 0.1, 0.2))


@pytest.mark.slow
def test_quick_setting_passes_every_check():
    law = get_law("critical-batch-size")
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    lo, hi = result.summary["B_crit 95% interval, low"], result.summary["B_crit 95% interval, high"]
    assert lo <= result.summary["B_crit = E_min/S_min"] <= hi
