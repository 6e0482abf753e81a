"""`lmech fit scaling-law`: the shipped Chinchilla data end to end, a user's CSV, and bad input → one line, exit 2."""

import numpy as np
import pytest
from typer.testing import CliRunner

from lmech.cli import app
from lmech.theory import chinchilla_loss

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, list(args))
    return result, " ".join(result.output.split())


def test_chinchilla_prints_constants_with_intervals_and_writes_the_figure(tmp_path):
    figure = tmp_path / "fig" / "chinchilla.png"
    result, text = invoke("fit", "scaling-law", "--dataset", "chinchilla", "--n-bootstrap", "20", "--out", str(figure))
    assert result.exit_code == 0, result.output
    assert "on chinchilla (240 runs)" in text and "Besiroglu et al. 2024" in text
    for row in ("│ E │ 1.817 │ [", "│ α │ 0.347", "│ β │ 0.367", "│ a = β/(α+β) │"):
        assert row in text, row
    assert "best of 4,500 L-BFGS starts" in text and "20 bootstrap refits" in text
    assert f"figure: {figure}" in text
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_users_csv_with_its_own_column_names(tmp_path):
    rng = np.random.default_rng(0)
    n, d = np.geomspace(1e7, 1e10, 40), np.exp(rng.uniform(np.log(1e9), np.log(1e12), 40))
    truth = {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}
    rows = [f"{a:.6e},{6 * a * b:.6e},{loss:.9f}" for a, b, loss in zip(n, d, chinchilla_loss(n, d, **truth))]
    path = tmp_path / "my_runs.csv"
    path.write_text("Params,FLOPs,Val Loss\n" + "\n".join(rows) + "\n")
    result, text = invoke("fit", "scaling-law", str(path), "--n-col", "Params", "--flop-col", "FLOPs", "--loss-col",
                          "Val Loss", "--n-bootstrap", "0", "--out", str(tmp_path / "f.png"))
    assert result.exit_code == 0, result.output
    assert "on my_runs (40 runs)" in text and "│ E │ 1.7 │ - │" in text and "│ α │ 0.35 │ - │" in text
    assert (tmp_path / "f.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a CSV file or --dataset NAME (one of chinchilla, isoflops), not neither"),
        (["--dataset", "chinchila"], "did you mean 'chinchilla'"),
        (["--dataset", "isoflops"], "isoflops holds 8 experiments, each its own law; fit one with --select experiment=NAME"),
        (["--dataset", "isoflops", "--select", "experiment"], "--select expects COLUMN=VALUE, got 'experiment'"),
        (["--dataset", "chinchilla", "--n-col", "N"], "--n-col name columns of a CSV file"),
        (["--dataset", "chinchilla", "--out", "fig.svg"], "--out must name a .png file"),
        (["--dataset", "chinchilla", "--n-bootstrap", "-1"], "n_bootstrap must be an integer >= 0, got -1"),
        (["BAD"], "runs.csv: row 2 (line 3), column 'loss': 'oops' is not a number"),
        (["BAD", "--loss-col", "val_loss"], "runs.csv has no column 'val_loss' (columns: params, tokens, loss)"),
    ],
    ids=["no-input", "unknown-dataset", "isoflops-mixture", "bad-select", "columns-with-dataset", "not-png",
         "negative-bootstrap", "non-numeric-cell", "missing-column"],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    bad = tmp_path / "runs.csv"
    bad.write_text("params,tokens,loss\n1e8,2e9,3.1\n2e8,4e9,oops\n")
    args = [str(bad) if a == "BAD" else a for a in args]
    defaults = [*(["--n-bootstrap", "0"] if "--n-bootstrap" not in args else []),
                *(["--out", str(tmp_path / "fig.png")] if "--out" not in args else [])]
    result, text = invoke("fit", "scaling-law", *args, *defaults)
    assert result.exit_code == 2, result.output
    assert message in text
    assert "Traceback" not in result.output
