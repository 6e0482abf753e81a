"""Scaling-law data: the shipped datasets, their provenance note, and CSVs with a bad cell."""

import hashlib
import re
from importlib import resources

import numpy as np
import pytest

from lmech.data import load_scaling_dataset, read_scaling_csv, scaling_datasets
from lmech.errors import ConfigError

FILES = resources.files("lmech.data").joinpath("files")


def test_chinchilla_is_besiroglus_240_runs_by_default():
    full = load_scaling_dataset("chinchilla", all_rows=True)
    data = load_scaling_dataset("chinchilla")
    assert len(full) == 245 and len(data) == 240
    np.testing.assert_allclose(6 * data.n_params * data.tokens, data.flops, rtol=1e-12)  # D = C / (6N)
    # The five dropped runs are the five with the fewest tokens, and the five with the highest losses.
    dropped = np.setdiff1d(np.arange(245), np.flatnonzero(np.isin(full.tokens, data.tokens)))
    np.testing.assert_array_equal(dropped, np.sort(np.argsort(full.tokens)[:5]))
    np.testing.assert_array_equal(dropped, np.sort(np.argsort(full.loss)[-5:]))
    assert data.reference[0] == "Besiroglu et al. 2024" and data.reference[1]["E"] == 1.8172
    assert full.reference is None  # their constants belong to the 240 runs
    assert "epoch-research/analyzing-chinchilla" in data.source and data.budget is None


def test_isoflops_has_eight_experiments_with_budgets():
    data = load_scaling_dataset("isoflops")
    assert len(data) == 947
    experiments = sorted(set(data.labels["experiment"].tolist()))
    assert len(experiments) == 8 and "llama_3__raw_loss" in experiments
    llama = data.select(experiment="llama_3__raw_loss")
    assert len(llama) == 133 and set(llama.labels["source"].tolist()) == {"llama_3"}
    ratio = 6 * data.n_params * data.tokens / data.budget
    assert 0.85 < ratio.min() and ratio.max() < 1.4  # C = 6ND is within the nominal budget's rounding
    assert set(scaling_datasets()) == {"chinchilla", "isoflops"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"experiment": "llama3"}, "ml_scalefit__massivetext__chinchilla); did you mean 'llama_3__"),
     ({"sauce": "x"}, "no text column 'sauce'")],
    ids=["unknown-value", "unknown-column"],
)
def test_select_names_what_exists(kwargs, message):
    with pytest.raises(ConfigError) as info:
        load_scaling_dataset("isoflops").select(**kwargs)
    assert message in str(info.value)


def test_unknown_dataset_lists_the_datasets():
    with pytest.raises(ConfigError, match="did you mean 'chinchilla'.*datasets: chinchilla, isoflops"):
        load_scaling_dataset("chinchila")


def test_shipped_files_match_their_provenance_note():
    readme = FILES.joinpath("README.md").read_text(encoding="utf-8")
    for name in ("chinchilla_svg_extracted.csv", "isoflops_combined.csv"):
        digest = hashlib.sha256(FILES.joinpath(name).read_bytes()).hexdigest()
        section = readme[readme.index(f"`{name}`"):]
        assert re.search(r"SHA-256\*\*: `([0-9a-f]{64})`", section).group(1) == digest, name
    assert "Licence**: unknown" in readme


GOOD = "params,tokens,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n"


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("params,loss\n1e8,3.1\n", {}, "has no column 'tokens' (columns: params, loss); pass --d-col"),
        (GOOD, {"loss_col": "Loss"}, "no column 'Loss' (columns: params, tokens, loss); pass --loss-col with the right "
                                   "name; did you mean 'loss'?"),
        (GOOD + "3e8,abc,2.8\n", {}, "row 3 (line 4), column 'tokens': 'abc' is not a number"),
        (GOOD + "3e8,6e9,-2.8\n", {}, "row 3 (line 4), column 'loss': must be > 0, got -2.8"),
        (GOOD + "0,6e9,2.8\n", {}, "row 3 (line 4), column 'params': must be > 0, got 0"),
        (GOOD + "3e8,6e9,nan\n", {}, "row 3 (line 4), column 'loss': is NaN"),
        (GOOD + "3e8,inf,2.8\n", {}, "row 3 (line 4), column 'tokens': is 'inf', not a finite number"),
        (GOOD + "3e8,,2.8\n", {}, "row 3 (line 4), column 'tokens': is empty"),
        (GOOD + "3e8,6e9\n", {}, "row 3 (line 4) has 2 fields, the header has 3"),
        ("params,tokens,loss\n", {}, "has a header but no rows"),
    ],
    ids=["missing-column", "misspelt-column", "non-numeric", "negative", "zero", "nan", "inf", "empty-cell",
         "short-row", "no-rows"],
)
def test_bad_csv_names_row_and_column(tmp_path, text, kwargs, message):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_scaling_csv(path, **kwargs)
    assert message in str(info.value)
    assert str(info.value).startswith("runs.csv")


def test_csv_with_flop_instead_of_tokens(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,C,L,note\n1e8,1.2e18,3.1,a\n\n2e8,4.8e18,2.9,b\n")  # a blank line is skipped
    data = read_scaling_csv(path, n_col="N", flop_col="C", loss_col="L", label_cols=("note",))
    np.testing.assert_allclose(data.tokens, [2e9, 4e9])
    np.testing.assert_allclose(data.flops, [1.2e18, 4.8e18])
    assert data.labels["note"].tolist() == ["a", "b"] and data.name == "runs.csv"
    both = read_scaling_csv(path, n_col="N", d_col="C", flop_col="C", loss_col="L")
    np.testing.assert_allclose(both.tokens, both.flops)  # both columns given: taken as they are


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read .*nope.csv"):
        read_scaling_csv(tmp_path / "nope.csv")
