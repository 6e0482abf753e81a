"""The mup-coord-check law: its summaries on records with known answers, a muP that fails the check, the
quick setting end to end (slow), and config errors."""

import math

import pytest

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.mup_coord_check import (
    MupCoordCheck,
    MupCoordCheckConfig,
    activation_spread,
    normalised_spectral_slopes,
    update_slopes,
)
from lmech.train.records import Records


def synthetic(exponent_hidden: float) -> Records:
    """Activations flat except the hidden layer ∝ width^exponent; updates ∝ width^(layer exponent)."""
    r = Records()
    for w in (128, 512, 2048):
        for seed in (0, 1):
            for step in (0, 1, 2):
                r.add(step, "activation", 1.0 + 0.01 * seed, width=w, seed=seed, layer="0")
                r.add(step, "activation", (w / 128) ** exponent_hidden, width=w, seed=seed, layer="2")
                r.add(step, "activation", 0.5, width=w, seed=seed, layer="4")
                r.add(step, "update", 0.1 * (w / 128) ** 0.7 * (step + 1), width=w, seed=seed, layer="2")
                r.add(step, "update", 0.1 * (step + 1), width=w, seed=seed, layer="4")
                r.add(step, "spectral_norm", 2.0 * math.sqrt(10 / w), width=w, seed=seed, layer="4")
    return r


def test_summaries_recover_known_exponents():
    r = synthetic(0.25)
    spread = activation_spread(r, {1, 2})
    assert spread["0"] == pytest.approx(1.0) and spread["2"] == pytest.approx(16**0.25) and spread["4"] == 1.0
    assert update_slopes(r, {1, 2})["2"] == pytest.approx(0.7) and update_slopes(r, {1, 2})["4"] == pytest.approx(0.0)
    scales = {w: {"4": math.sqrt(10 / w)} for w in (128, 512, 2048)}
    assert normalised_spectral_slopes(r, scales, 2)[("spectral_norm", "4")] == pytest.approx(0.0, abs=1e-12)


def test_a_parametrisation_whose_hidden_layer_grows_fails():
    grow = synthetic(0.25)
    results = {"mup": {"spread": activation_spread(grow, {1, 2}), "spectral": {("spectral_norm", "4"): 0.0}},
               "sp": {"updates": update_slopes(grow, {1, 2})}}
    checks = MupCoordCheck.compare(results)
    hidden = next(c for c in checks if "hidden layer 2" in c.name)
    assert not hidden.passed and hidden.measured == pytest.approx(2.0)
    assert all(c.passed for c in checks if c is not hidden)


def test_bad_settings_name_the_value():
    with pytest.raises(ConfigError, match="span at least 16x"):
        MupCoordCheckConfig(widths=(128, 256, 1024))
    with pytest.raises(ConfigError, match="ascending"):
        MupCoordCheckConfig(widths=(2048, 128, 256))


@pytest.mark.slow
def test_quick_setting_passes_every_check():
    law = get_law("mup-coord-check")
    result = law.run(law.config("quick"))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed and len(result.checks) == 6
