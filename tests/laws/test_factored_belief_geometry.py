"""The factored-belief-geometry law: an untrained transformer fails the learning and dimension checks; the
geometry sees 8 dimensions in a representation of the joint belief and 4 in a factored one; config errors; the
quick preset passes (slow)."""

import io
import math

import pytest
import torch

from lmech.errors import ConfigError
from lmech.laws import factored_belief_geometry as fbg
from lmech.laws.registry import get_law

NAME = "factored-belief-geometry"


def test_untrained_transformer_fails_learning_and_dimension():
    law = get_law(NAME)
    result = law.run(law.config("quick", steps=0, num_eval=800))
    by_name = {c.name.split(" (")[0]: c for c in result.checks}
    ratios = [c for c in result.checks if "at initialisation / (1 − R²) after training" in c.name]
    assert len(ratios) == 2 and all(c.measured == pytest.approx(1.0) and not c.passed for c in ratios)
    dimension = [c for c in result.checks if c.name.startswith("dimension")][0]
    assert dimension.measured > 5 and not dimension.passed
    assert len(by_name) == 7
    assert set(result.figures) == {"factored_belief_geometry"}
    result.figures["factored_belief_geometry"].savefig(io.BytesIO(), format="png")  # renders with only step 0
    # d_model 8 < Π s + 1 = 10: fewer principal components than the curves would show, still reported
    narrow = law.run(law.config("quick", steps=0, num_eval=800, d_model=8))
    assert len(narrow.curves) == 2 * 8


def test_four_factors_at_small_width_render():
    """3^4 = 81 tokens and a joint dimension of 80 > d_model: the run and the figure still work."""
    law = get_law(NAME)
    result = law.run(law.config("quick", factors=4, steps=2, eval_every=1, num_eval=400, d_model=16, n_layers=1))
    assert len([c for c in result.checks if "held-out R²" in c.name]) == 4
    result.figures["factored_belief_geometry"].savefig(io.BytesIO(), format="png")


def synthetic(config, weights_of):
    process = config.process()
    data = fbg.BeliefData(process, config)
    gen = torch.Generator().manual_seed(5)
    rep = weights_of(data, gen)
    noise = 1e-3 * torch.randn(rep.shape, generator=gen, dtype=torch.float64)
    return fbg.geometry((rep + noise).reshape(config.num_eval, config.context, -1), data, config)


def test_geometry_tells_a_joint_representation_from_a_factored_one():
    law = get_law(NAME)
    config = law.config("quick", num_eval=1500)
    joint = synthetic(config, lambda d, g: d.joint @ torch.randn(9, 64, generator=g, dtype=torch.float64))
    factored = synthetic(config, lambda d, g: torch.cat(d.factor_beliefs, 1)
                         @ torch.randn(6, 64, generator=g, dtype=torch.float64))
    assert joint.dimension == 8 and factored.dimension == 4
    assert factored.interaction_share < 1e-3 < 0.05 < joint.interaction_share
    assert min(factored.r2) > 0.999 and factored.joint_r2 < 0.9  # the joint belief is not linear in the factors
    assert joint.joint_r2 > 0.999
    # random planes in R^64 are nearly orthogonal whatever the representation: why the law also asks for the chance
    assert min(factored.angles) > 60 and min(joint.angles) > 60


def test_optimal_loss_is_the_entropy_rate_bound():
    law = get_law(NAME)
    config = law.config("quick", num_eval=3000)
    data = fbg.BeliefData(config.process(), config)
    # each Mess3 token is uniform marginally (log 3 nats); knowing the past lowers the loss but not below 0
    assert 0 < data.optimal_loss < 2 * math.log(3)
    assert data.factor_beliefs[0].shape == (3000 * config.context, 3)
    assert torch.allclose(data.joint.sum(1), torch.ones(len(data.joint), dtype=torch.float64))


def test_config_errors():
    Config = fbg.FactoredBeliefGeometryConfig
    with pytest.raises(ConfigError, match="factors must be an integer in 2..4"):
        Config(factors=1)
    with pytest.raises(ConfigError, match="too few to probe"):
        Config(num_eval=10)
    with pytest.raises(ConfigError, match="min_angle must be in"):
        Config(min_angle=120)
    with pytest.raises(ConfigError, match="x must be in"):
        Config(x=0.7)
    with pytest.raises(ConfigError, match=r"n_heads must divide d_model = 16 .* use one of \[1, 2, 4, 8, 16\]"):
        Config(n_heads=3)


@pytest.mark.slow
def test_quick_preset_passes():
    law = get_law(NAME)
    result = law.run(law.config("quick"))
    assert all(c.passed for c in result.checks), [(c.name, c.measured) for c in result.checks if not c.passed]
    s = result.summary
    assert s["belief dimension at initialisation"] > 5
    assert s["loss above the optimum (nats per token)"] < 0.02
