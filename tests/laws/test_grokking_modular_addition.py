"""The grokking law: the quick preset groks (slow); stopped before grokking, the delay and Fourier checks fail while
memorisation passes; the evaluation grid and config errors."""

import math

import numpy as np
import pytest
import torch

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws import grokking_modular_addition as grokking  # noqa: F401 - registers the law
from lmech.laws.grokking_modular_addition import (
    GrokkingModularAdditionConfig,
    all_pairs,
    evaluation_steps,
    first_step,
    flush_denormals,
)


def by_name(result, start):
    return next(c for c in result.checks if c.name.startswith(start))


@pytest.mark.slow
def test_quick_preset_groks():
    law = get_law("grokking-modular-addition")
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    s = result.summary
    # memorised within a few hundred steps, generalised an order of magnitude later
    assert s["t₁ (first step with training accuracy ≥ 99%)"] < 300 and s["t₂ / t₁"] >= 5
    # the embedding went from spread over most frequencies to a handful
    assert s["key frequencies at initialisation (80% of the power)"] >= 20 >= 8 >= s["key frequencies (80% of the power)"]
    assert s["share of the power in the top 8 frequencies, initialisation"] < 0.45
    # removing the key frequencies destroys the network; keeping only them does not
    assert s["excluded loss (nats)"] > math.log(59) > 100 * s["restricted loss (nats)"]
    assert s["accuracy of the restricted logits, all pairs"] >= 0.99


def test_stopped_before_grokking_fails_the_delay_and_fourier_checks():
    """200 steps of the quick preset: the training pairs are memorised, the test pairs are not, the embedding is
    not yet sparse; the restricted-loss check gives no verdict before grokking."""
    law = get_law("grokking-modular-addition")
    result = law.run(law.config("quick", steps=200))
    assert by_name(result, "training accuracy").passed
    test_acc = by_name(result, "test accuracy")
    assert not test_acc.passed and test_acc.measured < 0.5
    delay = by_name(result, "delayed generalisation")
    assert not delay.passed and math.isnan(delay.measured)
    assert not by_name(result, "frequencies carrying").passed and by_name(result, "frequencies carrying").measured > 12
    restricted = by_name(result, "loss restricted")
    assert not restricted.passed and "no verdict" in restricted.name
    assert set(result.figures) == {"grokking_modular_addition"}
    steps, acc = result.metrics.series("train_accuracy")
    assert steps[0] == 0 and steps[-1] == 200 and acc[0] < 0.1 and acc[-1] >= 0.99
    assert len(result.metrics.series("embedding_power")[1]) == 2 * 30  # frequencies 0..29, at init and at the end


def test_evaluation_grid_and_first_step():
    grid = evaluation_steps(1000, 100)
    assert grid[0] == 0 and grid[-1] == 1000 and set(range(0, 1001, 100)) <= set(grid.tolist())
    assert np.all(np.diff(grid) > 0) and {1, 2, 3} <= set(grid.tolist())  # log-spaced steps reach down to 1
    assert first_step(np.array([0, 5, 10]), np.array([0.1, 0.99, 1.0]), 0.99) == 5
    assert math.isnan(first_step(np.array([0, 5]), np.array([0.1, 0.5]), 0.99))
    tokens, labels = all_pairs(5)
    assert tokens.shape == (25, 3) and tokens[7].tolist() == [1, 2, 5] and labels[7] == 3 and labels[24] == 3


def test_flush_denormals_is_temporary():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    with flush_denormals():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() == pytest.approx(1e-39, rel=1e-3)


@pytest.mark.parametrize("field, value, message", [
    ("p", 57, "p must be a prime >= 5"),
    ("p", 3, "p must be a prime >= 5"),
    ("train_frac", 1.0, r"train_frac must be in \(0, 1\)"),
    ("d_mlp", -1, "d_mlp must be an integer >= 0"),
    ("n_heads", 0, "model sizes must be integers >= 1"),
    ("lr", 0.0, "lr must be finite and > 0"),
    ("weight_decay", -1.0, "weight_decay must be finite and >= 0"),
    ("betas", (0.9,), "betas must be two numbers"),
    ("steps", 5, "steps must be an integer >= 10"),
    ("eval_every", 0, "eval_every must be an integer in 1..steps"),
    ("seed", -1, "seed must be"),
], ids=lambda v: str(v))
def test_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        GrokkingModularAdditionConfig(**{field: value})


def test_presets():
    law = get_law("grokking-modular-addition")
    full = law.config("full")
    assert (full.p, full.train_frac, full.d_model, full.d_mlp, full.lr, full.weight_decay) == (113, 0.3, 128, 512, 1e-3, 1.0)
    assert law.config("quick").p < 113
