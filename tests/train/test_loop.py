"""The training loop: optimizers, monitors at a cadence, long-form records, reproducibility."""

import math

import numpy as np
import pytest
import torch

from lmech.models import mlp
from lmech.train import LossMonitor, Records, TrainConfig, train


def mse(out, y):
    return 0.5 * ((out - y) ** 2).sum(1).mean()


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=gen)
    y = torch.randn(64, 2, generator=gen)
    return x, y


def run(problem, **kw):
    model = mlp(5, [16], 2, seed=3)
    config = TrainConfig(**{"lr": 0.05, "steps": 30, "monitor_every": 7, **kw})
    records = train(model, mse, problem, config, [LossMonitor(mse, problem)], index={"tag": "a"})
    return model, records


@pytest.mark.parametrize(
    "kw",
    [dict(optimizer="gd"), dict(optimizer="sgd", batch_size=16), dict(optimizer="momentum", momentum=0.9),
     dict(optimizer="adam", lr=1e-2), dict(optimizer="adam", lr=1e-2, batch_size=8, weight_decay=0.1)],
    ids=["gd", "sgd", "momentum", "adam", "adamw-minibatch"],
)
def test_same_config_and_seed_give_the_same_numbers(problem, kw):
    _, a = run(problem, **kw)
    _, b = run(problem, **kw)
    assert a.rows == b.rows
    steps, loss = a.series("full_loss", tag="a")
    assert loss[-1] < loss[0]


def test_monitors_run_at_the_cadence_and_at_the_end(problem):
    _, records = run(problem)
    steps, _ = records.series("full_loss")
    assert steps.tolist() == [0, 7, 14, 21, 28, 30]
    loss_steps, _ = records.series("loss")
    assert loss_steps.tolist() == list(range(31))
    assert {r["tag"] for r in records.rows} == {"a"}


def test_gd_matches_a_hand_written_update(problem):
    model = mlp(5, [16], 2, seed=3)
    reference = mlp(5, [16], 2, seed=3)
    train(model, mse, problem, TrainConfig(lr=0.1, steps=5))
    for _ in range(5):
        reference.zero_grad()
        mse(reference(problem[0]), problem[1]).backward()
        with torch.no_grad():
            for p in reference.parameters():
                p -= 0.1 * p.grad
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_full_batch_loss_record_is_the_loss_at_that_step(problem):
    _, records = run(problem)
    _, loss = records.series("loss")
    _, full = records.series("full_loss")
    np.testing.assert_allclose(full[:5], loss[[0, 7, 14, 21, 28]], rtol=1e-6)


def test_divergence_is_recorded_and_stops_training(problem):
    _, records = run(problem, lr=1e3, steps=200)
    steps, flag = records.series("diverged")
    assert flag.tolist() == [1.0]
    _, loss = records.series("loss")
    assert not math.isfinite(loss[-1]) and len(loss) == steps[0] + 1


def test_records_to_arrow_has_long_form_columns():
    records = Records()
    records.add(0, "sharpness", 2.0, lr=0.1)
    records.add(1, "loss", 1.0, lr=0.1, width=3)
    table = records.to_arrow(run_id="r")
    assert table.column_names == ["run_id", "step", "observable", "value", "lr", "width"]
    assert table.column("width").to_pylist() == [None, 3]


def test_monitors_never_see_diverged_parameters(problem):
    seen = []

    def monitor(model, step):
        finite = all(torch.isfinite(p).all() for p in model.parameters())
        seen.append(finite)
        return {"finite": float(finite)}

    model = mlp(5, [16], 2, seed=3)
    records = train(model, mse, problem, TrainConfig(lr=1e3, steps=200, monitor_every=1), [monitor])
    assert seen and all(seen)
    assert records.series("diverged")[1].tolist() == [1.0]


def test_a_monitor_that_overflows_marks_divergence(problem):
    from lmech.errors import NonFiniteError

    def monitor(model, step):
        if step == 4:
            raise NonFiniteError("overflow")
        return {"ok": 1.0}

    records = train(mlp(5, [16], 2, seed=3), mse, problem, TrainConfig(lr=0.01, steps=10, monitor_every=2), [monitor])
    steps, _ = records.series("diverged")
    assert steps.tolist() == [4]
    assert records.series("ok")[0].tolist() == [0, 2]
