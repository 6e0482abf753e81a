"""Run folders: atomic writes, the files a run holds, reports and SQL across runs."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmech.errors import ConfigError, StoreError
from lmech.lab import finished_runs, load_run, query, save_run, write_report
from lmech.laws import Check, LawResult, get_law
from lmech.train import Records


def fake_result(passed=True):
    records = Records()
    for step in range(3):
        records.add(step, "sharpness", 1.0 + step, lr=0.1)
        records.add(step, "loss", 1.0 / (1 + step), lr=0.1)
    curves = pa.Table.from_pylist([{"curve": "2/lr", "x": 0.0, "y": 20.0, "lr": 0.1}])
    checks = [Check.within("edge", 19.0, 20.0, 0.1), Check.at_least("count", 3 if passed else 0, 1)]
    return LawResult(records, curves, checks, {}, {"headline": 1.0})


@pytest.fixture
def law():
    return get_law("edge-of-stability")


def test_a_run_folder_holds_every_file(tmp_path, law):
    config = law.config("quick")
    run_dir = save_run(tmp_path, law, config, fake_result(), preset="quick")
    assert run_dir.parent == tmp_path / "edge-of-stability"
    for name in ("config.json", "metrics.parquet", "curves.parquet", "checks.json", "report.html"):
        assert (run_dir / name).is_file(), name
    meta = load_run(run_dir)
    assert meta["config"]["lrs"] == list(config.lrs) and meta["seed"] == config.seed
    assert meta["versions"]["torch"] and meta["preset"] == "quick" and meta["passed"] is True
    table = pq.read_table(run_dir / "metrics.parquet")
    assert {"run_id", "law", "step", "observable", "value", "lr"} <= set(table.column_names)
    assert table.num_rows == 6
    html = (run_dir / "report.html").read_text()
    assert "PASS" in html and "2103.00065" in html and "&quot;lrs&quot;" in html


def test_an_interrupted_write_leaves_no_run(tmp_path, law, monkeypatch):
    import lmech.lab.report as report

    def boom(run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", boom)
    with pytest.raises(KeyboardInterrupt):
        save_run(tmp_path, law, law.config("quick"), fake_result())
    assert list((tmp_path / "edge-of-stability").iterdir()) == []
    assert finished_runs(tmp_path) == []


def test_unfinished_temporary_folders_are_not_runs(tmp_path, law):
    save_run(tmp_path, law, law.config("quick"), fake_result())
    stale = tmp_path / "edge-of-stability" / ".tmp-crashed"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    (stale / "metrics.parquet").write_text("")
    assert len(finished_runs(tmp_path)) == 1
    columns, rows = query("SELECT count(*) FROM runs", tmp_path)
    assert rows == [(1,)]


def test_query_across_runs(tmp_path, law):
    save_run(tmp_path, law, law.config("quick"), fake_result(True))
    save_run(tmp_path, law, law.config("full"), fake_result(False))
    columns, rows = query("SELECT observable, count(*) AS n FROM metrics GROUP BY observable ORDER BY observable", tmp_path)
    assert columns == ["observable", "n"] and rows == [("loss", 6), ("sharpness", 6)]
    _, rows = query("SELECT count(*) FROM checks WHERE NOT passed", tmp_path)
    assert rows == [(1,)]
    _, rows = query("SELECT passed FROM runs ORDER BY passed", tmp_path)
    assert rows == [(False,), (True,)]
    with pytest.raises(ConfigError, match="query failed"):
        query("SELECT nope FROM metrics", tmp_path)


def test_query_without_runs(tmp_path):
    with pytest.raises(StoreError, match="no finished runs"):
        query("SELECT 1", tmp_path)


def test_report_rerenders_and_refuses_non_runs(tmp_path, law):
    run_dir = save_run(tmp_path, law, law.config("quick"), fake_result(False))
    (run_dir / "report.html").unlink()
    assert "FAIL" in write_report(run_dir).read_text()
    with pytest.raises(StoreError, match="not a finished run folder"):
        write_report(tmp_path)


def test_unwritable_root(tmp_path, law):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # a folder cannot be made under a file, even by root
    with pytest.raises(StoreError, match="pass --out"):
        save_run(blocker / "runs", law, law.config("quick"), fake_result())


def test_checks_json_is_plain_data(tmp_path, law):
    run_dir = save_run(tmp_path, law, law.config("quick"), fake_result())
    checks = json.loads((run_dir / "checks.json").read_text())
    assert [c["name"] for c in checks] == ["edge", "count"]
    assert checks[0]["passed"] is True and checks[0]["tolerance"] == 0.1


def test_empty_sql_and_damaged_runs_get_clear_errors(tmp_path, law):
    save_run(tmp_path, law, law.config("quick"), fake_result())
    with pytest.raises(ConfigError, match="the SQL is empty"):
        query(" ; ", tmp_path)
    damaged = tmp_path / "edge-of-stability" / "broken"
    damaged.mkdir()
    (damaged / "config.json").write_text("{}")
    (damaged / "checks.json").write_text("[]")
    (damaged / "metrics.parquet").write_bytes(b"PAR1")
    with pytest.raises(StoreError, match="move the damaged run folder away"):
        query("SELECT count(*) FROM metrics", tmp_path)
    with pytest.raises(StoreError, match="damaged config.json"):
        load_run(damaged)
