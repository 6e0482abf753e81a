"""The command line: the happy path end to end, and bad input → one line and exit code 2."""

import json

import pytest
from typer.testing import CliRunner

from lmech.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_list_shows_laws_by_pillar():
    result = invoke("list")
    assert result.exit_code == 0
    assert "edge-of-stability" in result.output and "2103.00065" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "edge-of-stabilty"], "did you mean 'edge-of-stability'"),
        (["run", "edge-of-stability", "--set", "lrz=0.1"], "valid keys: n_train"),
        (["run", "edge-of-stability", "--set", "width=0"], "width must be >= 1, got 0"),
        (["run", "edge-of-stability", "--set", "lrs=0.1,-0.2"], "lr must be finite and > 0, got -0.2"),
        (["run", "edge-of-stability", "--set", "steps=many"], "steps expects a number"),
        (["run", "edge-of-stability", "--quick", "--full"], "not both"),
        (["check", "--pillar", "vibes"], "no pillar named"),
        (["report", "."], "not a finished run folder"),
        (["query", "SELECT 1", "--runs", "/nonexistent-lmech-runs"], "no finished runs"),
    ],
    ids=["unknown-law", "unknown-key", "width-zero", "negative-lr", "wrong-type", "two-presets", "unknown-pillar",
         "report-not-a-run", "query-no-runs"],
)
def test_bad_input_exits_2_without_traceback(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_unwritable_out_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("run", "edge-of-stability", "--out", str(blocker / "runs"))
    assert result.exit_code == 2 and "pass --out" in " ".join(result.output.split())


def test_run_writes_a_report_and_query_reads_it(tmp_path):
    result = invoke("run", "edge-of-stability", "--set", "n_train=200", "--set", "steps=400", "--set", "lrs=0.3",
                    "--set", "sharpness_every=10", "--seed", "0", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "verdict: PASS" in result.output and "report.html" in result.output
    (run_dir,) = (tmp_path / "edge-of-stability").iterdir()
    meta = json.loads((run_dir / "config.json").read_text())
    assert meta["config"]["n_train"] == 200 and meta["config"]["lrs"] == [0.3]
    result = invoke("query", "SELECT count(*) AS n FROM metrics WHERE observable = 'sharpness'", "--runs", str(tmp_path))
    assert result.exit_code == 0 and "41" in result.output
    assert invoke("report", str(run_dir)).exit_code == 0


def test_a_failing_law_exits_1(tmp_path):
    result = invoke("run", "edge-of-stability", "--set", "n_train=100", "--set", "steps=150", "--set", "lrs=0.05",
                    "--out", str(tmp_path))
    assert result.exit_code == 1 and "verdict: FAIL" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["run", "edge-of-stability", "--seed", "-5"], "seed must be a whole number"),
     (["run", "edge-of-stability", "--threads", "-1"], "--threads must be >= 0"),
     (["query", "  ", "--runs", "."], "the SQL is empty")],
    ids=["negative-seed", "negative-threads", "empty-sql"],
)
def test_more_bad_input(args, message):
    result = invoke(*args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_check_on_an_empty_pillar_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("lmech.cli.list_laws", lambda pillar=None: [])  # every pillar has laws by now
    result = invoke("check", "--pillar", "hyperparameters", "--out", str(tmp_path))
    assert result.exit_code == 0 and "no laws in pillar" in result.output


def test_show_config_lists_every_key_and_runs_nothing(tmp_path):
    result = invoke("run", "edge-of-stability", "--quick", "--set", "steps=7", "--show-config", "--out", str(tmp_path))
    assert result.exit_code == 0
    for key in ("n_train", "lrs", "steps", "sharpness_every", "seed"):
        assert key in result.output
    assert "7" in result.output and not any(tmp_path.iterdir())
