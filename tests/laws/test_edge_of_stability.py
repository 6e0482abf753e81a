"""The edge-of-stability law on a reduced setting: it passes where the theory holds, fails where it can't."""

import numpy as np
import pytest

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.edge_of_stability import first_crossing

SMALL = dict(n_train=200, steps=400, lrs=(0.3,), sharpness_every=10)


@pytest.fixture(scope="module")
def law():
    return get_law("edge-of-stability")


@pytest.fixture(scope="module")
def small_result(law):
    return law.run(law.config(**SMALL))


def test_small_setting_shows_the_edge_of_stability(small_result):
    failed = [(c.name, c.measured, c.predicted) for c in small_result.checks if not c.passed]
    assert not failed
    names = " ".join(c.name for c in small_result.checks)
    for part in ("sharpening", "edge", "loss falls", "non-monotone", "tracks flow"):
        assert part in names


def test_measured_sharpness_hovers_at_two_over_lr(small_result):
    steps, sharp = small_result.metrics.series("sharpness", lr=0.3)
    assert sharp[0] < 0.7 * (2 / 0.3)  # starts well below the edge
    late = sharp[steps > 250]
    assert np.median(late) == pytest.approx(2 / 0.3, rel=0.1)


def test_checks_fail_when_the_edge_is_never_reached(law):
    # 2/η = 40 is ten times the initial sharpness; 150 steps are far too few to sharpen that much.
    result = law.run(law.config(n_train=100, steps=150, lrs=(0.05,), sharpness_every=10))
    verdict = {c.name.split(" ", 1)[1].split(":")[0]: c.passed for c in result.checks}
    assert verdict["sharpening"] is False and verdict["edge"] is False
    assert not result.passed


def test_presets_exist_and_validate(law):
    assert law.config("quick").steps < law.config("full").steps
    with pytest.raises(ConfigError, match="preset must be one of"):
        law.config("huge")
    with pytest.raises(ConfigError, match="lr must be finite and > 0, got -1.0"):
        law.config(lrs=(0.1, -1.0))


def test_first_crossing():
    assert first_crossing(np.arange(4), np.array([1.0, 2.0, 3.0, 2.0]), 2.5) == 2
    assert first_crossing(np.arange(2), np.array([1.0, 2.0]), 5.0) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(dict(lrs=(0.2, 0.2)), "lrs must be distinct"), (dict(lrs=(float("inf"),)), "finite and > 0"),
     (dict(seed=-5), r"seed must be a whole number in \[0, 2\*\*32\)")],
    ids=["duplicate-lrs", "infinite-lr", "negative-seed"],
)
def test_bad_configs_are_refused(law, overrides, message):
    with pytest.raises(ConfigError, match=message):
        law.config(**overrides)


def test_a_diverging_lr_fails_its_check_and_spares_the_others(law):
    result = law.run(law.config(n_train=100, steps=60, lrs=(0.3, 50.0), sharpness_every=1))
    diverged = [c for c in result.checks if "diverging" in c.name]
    assert len(diverged) == 1 and "η=50" in diverged[0].name and not diverged[0].passed
    assert all("η=50" not in c.name for c in result.checks if c is not diverged[0])
    assert not result.passed
