"""``--set key=value`` parsing and validation of frozen configs."""

import dataclasses

import pytest

from lmech.config import apply_overrides, parse_value
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


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("0.8,0.9", tuple[float, ...], (0.8, 0.9)),
    ("(2, 4, 8)", tuple[int, ...], (2, 4, 8)),
    ("[Z5,S3]", tuple[str, ...], ("Z5", "S3")),
    ("(1.5,2),(2,1.5)", tuple[tuple[float, float], ...], ((1.5, 2.0), (2.0, 1.5))),
    ("((1.5,2),(2,1.5))", tuple[tuple[float, float], ...], ((1.5, 2.0), (2.0, 1.5))),
    ("((1.2, 2.6),)", tuple[tuple[float, float], ...], ((1.2, 2.6),)),
    ("-13,-4", tuple[float, float], (-13.0, -4.0)),
])
def test_tuples_parse_nested_and_fixed_length(text, kind, expected):
    assert parse_value(text, kind, "key") == expected


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("1,2,3", tuple[float, float], r"key expects 2 comma-separated values, got 3 in '1,2,3'"),
    ("(1,2", tuple[float, ...], r"key: unbalanced brackets in '\(1,2'"),
    ("1,2)", tuple[float, ...], "unbalanced brackets"),
    ("(1,2),(3)", tuple[tuple[float, float], ...], "key expects 2 comma-separated values, got 1 in '\\(3\\)'"),
])
def test_bad_tuples_name_the_value(text, kind, message):
    with pytest.raises(ConfigError, match=message):
        parse_value(text, kind, "key")


def test_kernel_scaling_pairs_can_be_set_from_the_command_line():
    from lmech.laws import get_law

    law = get_law("kernel-scaling-exponent")
    config = apply_overrides(law.config("quick"), ["pairs=(1.5,2),(2.5,3)"])
    assert config.pairs == ((1.5, 2.0), (2.5, 3.0))
