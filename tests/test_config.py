"""``--set key=value`` parsing and validation of frozen configs."""

import dataclasses

import pytest

from lmech.config import apply_overrides
from lmech.errors import ConfigError, UnknownNameError
from lmech.train import TrainConfig


@pytest.fixture
def config():
    return TrainConfig(lr=0.1, steps=10)


def test_overrides_parse_to_the_annotated_types(config):
    new = apply_overrides(config, ["lr=0.5", "steps=20", "batch_size=8", "optimizer=sgd", "betas=0.8,0.9"])
    assert (new.lr, new.steps, new.batch_size, new.optimizer, new.betas) == (0.5, 20, 8, "sgd", (0.8, 0.9))
    assert isinstance(new.steps, int)
    assert apply_overrides(new, ["batch_size=none", "optimizer=gd"]).batch_size is None


def test_configs_are_frozen(config):
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]


def test_unknown_key_lists_the_valid_ones(config):
    with pytest.raises(UnknownNameError, match=r"'lrr'.*did you mean 'lr'.*valid keys: optimizer, lr, steps"):
        apply_overrides(config, ["lrr=0.1"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr=abc", "lr expects a number"),
        ("steps=1.5", "steps expects a whole number"),
        ("lr=-0.1", r"lr must be > 0, got -0.1"),
        ("steps=0", "steps must be >= 1"),
        ("optimizer=rmsprop", "optimizer must be one of"),
        ("lr", "--set expects key=value"),
    ],
    ids=["not-a-number", "fractional-int", "negative-lr", "zero-steps", "unknown-optimizer", "no-equals"],
)
def test_bad_values_name_the_value_and_the_fix(config, item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(config, [item])


def test_sgd_needs_a_batch_size():
    with pytest.raises(ConfigError, match="needs a batch_size"):
        TrainConfig(optimizer="sgd", lr=0.1, steps=1)
