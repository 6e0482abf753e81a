"""`lmech sweep`: a dry run lists the points, a run stores them, a rerun skips them, bad input exits 2."""

from typer.testing import CliRunner

from lmech.cli import app

SPEC = """\
name: tiny
law: deep-linear-modes
preset: quick
base: {depths: [2], width: 16}
grid: {init_strength: [1.0e-3, 1.0e-2]}
"""


def test_sweep_runs_resumes_and_refuses_bad_input(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    runner = CliRunner()
    dry = runner.invoke(app, ["sweep", str(spec), "--dry-run"])
    assert dry.exit_code == 0 and "2 points of" in dry.output and dry.output.count("│ 0.0") == 2
    args = ["sweep", str(spec), "--executor", "serial", "--out", str(tmp_path / "runs")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 done, 0 skipped" in first.output and (tmp_path / "runs" / "tiny" / "report.html").exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output
    missing = runner.invoke(app, ["sweep", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read the sweep spec" in missing.output
    spec.write_text(SPEC.replace("init_strength", "init_strenght"))
    typo = runner.invoke(app, ["sweep", str(spec), "--dry-run"])
    assert typo.exit_code == 2 and "init_strength" in " ".join(typo.output.split())
