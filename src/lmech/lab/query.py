"""SQL over every stored run with DuckDB.

Three views are defined over a runs folder:

* ``metrics`` — every ``metrics.parquet`` (``run_id, law, step, observable, value`` + index columns,
  unioned by name);
* ``checks`` — every ``checks.json`` (``run_id, law, name, measured, predicted, tolerance, passed, rule``);
* ``runs`` — one row per run from ``config.json`` (``run_id, law, preset, seed, created, passed``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from ..errors import ConfigError, StoreError
from .store import TMP_PREFIX


def connect(root: Path | str = "runs") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``metrics``, ``checks`` and ``runs`` views.

    Raises:
        StoreError: if ``root`` holds no finished runs.
    """
    runs = finished_runs(root)
    if not runs:
        raise StoreError(f"no finished runs under {str(root)!r}; run `lmech run LAW --out {root}` first")

    def files(name: str) -> str:
        return "[" + ", ".join("'" + str(r / name).replace("'", "''") + "'" for r in runs) + "]"

    con = duckdb.connect()
    try:
        _create_views(con, files)
    except duckdb.Error as exc:
        raise StoreError(f"cannot read the runs under {str(root)!r}: {exc}; move the damaged run folder away") from None
    return con


def _create_views(con: duckdb.DuckDBPyConnection, files: Callable[[str], str]) -> None:
    con.execute(f"CREATE VIEW metrics AS SELECT * FROM read_parquet({files('metrics.parquet')}, union_by_name=true)")
    con.execute(f"CREATE VIEW checks AS SELECT * FROM read_json_auto({files('checks.json')}, union_by_name=true)")
    con.execute(
        "CREATE VIEW runs AS SELECT run_id, law, preset, seed, created, passed "
        f"FROM read_json_auto({files('config.json')}, union_by_name=true)"
    )
    for view in ("metrics", "checks", "runs"):  # views are lazy: read each once so damage shows here
        con.execute(f"SELECT count(*) FROM {view}").fetchall()


def finished_runs(root: Path | str) -> list[Path]:
    """Every finished run folder ``root/<law>/<run-id>/`` (temporary folders of unfinished runs,
    which start with ``.tmp-``, are skipped)."""
    return sorted(
        p.parent for p in Path(root).glob("*/*/config.json")
        if not p.parent.name.startswith(TMP_PREFIX) and (p.parent / "metrics.parquet").is_file()
    )


def query(sql: str, root: Path | str = "runs") -> tuple[list[str], list[tuple]]:
    """Run ``sql`` against the views of :func:`connect`; return ``(column names, rows)``.

    Raises:
        StoreError: no runs under ``root``.
        ConfigError: the SQL failed (the message is DuckDB's, with the views to use).
    """
    if not sql.strip(" \t\n;"):
        raise ConfigError("the SQL is empty; e.g. lmech query \"SELECT * FROM checks\"")
    con = connect(root)
    try:
        rel = con.execute(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {exc}. Tables: metrics, checks, runs") from None
    columns = [d[0] for d in rel.description or []]
    return columns, rel.fetchall()
