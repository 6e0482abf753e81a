"""Modular arithmetic: every pair exactly once, labels against Python's integer arithmetic, split sizes, seeding."""

import pytest
import torch

from lmech.data.modular import OPERATIONS, modular_arithmetic
from lmech.errors import ConfigError

PYTHON = {"add": lambda a, b, p: (a + b) % p, "sub": lambda a, b, p: (a - b) % p, "mul": lambda a, b, p: a * b % p,
          "div": lambda a, b, p: next(c for c in range(p) if c * b % p == a), "square_add": lambda a, b, p: (a * a + b * b) % p}


@pytest.mark.parametrize("op", OPERATIONS)
def test_labels_and_coverage(op):
    p = 11
    train, test = modular_arithmetic(p, op=op, train_frac=0.3, seed=1)
    pairs = torch.cat([train.pairs, test.pairs]).tolist()
    expect = {(a, b) for a in range(p) for b in range(p) if op != "div" or b != 0}
    assert len(pairs) == len(expect) and set(map(tuple, pairs)) == expect, "every pair must appear exactly once"
    assert len(train) == round(0.3 * len(expect))
    for split in (train, test):
        for (a, b), y in zip(split.pairs.tolist(), split.labels.tolist()):
            assert y == PYTHON[op](a, b, p)


def test_tokens_onehot_and_equals():
    train, _ = modular_arithmetic(7, train_frac=0.5, seed=0)
    assert train.inputs.shape == (len(train), 3) and bool((train.inputs[:, 2] == 7).all())
    onehot = train.onehot()
    assert onehot.shape == (len(train), 14)
    assert torch.equal(onehot[:, :7].argmax(1), train.pairs[:, 0]) and torch.equal(onehot[:, 7:].argmax(1), train.pairs[:, 1])
    assert float(onehot.sum()) == 2 * len(train)
    bare, _ = modular_arithmetic(7, train_frac=0.5, seed=0, equals_token=False)
    assert torch.equal(bare.inputs, train.inputs[:, :2])


def test_nanda_setup_sizes_and_seeding():
    train, test = modular_arithmetic(113, train_frac=0.3, seed=0)
    assert (len(train), len(test)) == (3831, 8938)  # round(0.3 · 113²) = 3831
    again, _ = modular_arithmetic(113, train_frac=0.3, seed=0)
    other, _ = modular_arithmetic(113, train_frac=0.3, seed=1)
    assert torch.equal(train.inputs, again.inputs) and not torch.equal(train.inputs, other.inputs)


def test_bad_input_raises_config_error():
    with pytest.raises(ConfigError, match="prime"):
        modular_arithmetic(12, op="div")
    with pytest.raises(ConfigError, match="op must be one of"):
        modular_arithmetic(7, op="pow")
    with pytest.raises(ConfigError, match="train_frac"):
        modular_arithmetic(7, train_frac=1.0)
    with pytest.raises(ConfigError, match="leaves a split empty"):
        modular_arithmetic(3, train_frac=0.01)
    with pytest.raises(ConfigError, match="p must be"):
        modular_arithmetic(1)
