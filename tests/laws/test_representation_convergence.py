"""The representation-convergence law: the population passes at its quick preset; a population of untrained
models has no accuracy-alignment trend to find; config errors."""

import pytest

from lmech.errors import ConfigError
from lmech.laws import get_law
from lmech.laws.representation_convergence import RepresentationConvergenceConfig, build


def test_quick_population_passes():
    law = get_law("representation-convergence")
    result = law.run(law.config("quick", permutations=100))
    failed = [(c.name, c.measured, c.predicted) for c in result.checks if not c.passed]
    assert not failed
    s = result.summary
    assert s["models"] == 24 and s["held-out accuracy, max"] > 0.95 and s["held-out accuracy, min"] < 0.5
    assert s["permutation null, mean"] == pytest.approx(s["random baseline k/(n−1)"], rel=0.25)
    assert s["Spearman ρ (accuracy, mutual kNN with the raw pixels)"] < s["Spearman ρ (accuracy, mutual kNN)"]


def test_models_that_barely_train_fail_the_within_architecture_check():
    """One step each: the pooled ρ is high only because architecture moves both accuracy and alignment; within
    architectures there is no trend, and that check fails."""
    law = get_law("representation-convergence")
    result = law.run(law.config(budgets=(1,), seeds=2, permutations=100))
    pooled = next(c for c in result.checks if c.name.startswith("Spearman"))
    within = next(c for c in result.checks if "within architectures" in c.name)
    assert pooled.passed and not within.passed and abs(within.measured) < 0.3


def test_architectures_and_errors():
    assert build("mlp-8x2", 0)[-1].in_features == 8 and build("cnn-3", 0)[-1].in_features == 64
    with pytest.raises(ConfigError, match="'mlp-64' must be 'mlp-WxD'"):
        RepresentationConvergenceConfig(architectures=("mlp-64",))
    with pytest.raises(ConfigError, match="at least 12 models, got 6"):
        RepresentationConvergenceConfig(seeds=1, budgets=(400,))
