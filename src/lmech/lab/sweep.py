"""Sweeps: one law over a grid and/or a random search of its config, resumable, on any executor.

Example (``lmech sweep SPEC`` does the same, with a progress bar)::

    summary = run_sweep(load_spec("examples/sweep_deep_linear.yaml"), out="runs", workers=2)
    print(summary.done, summary.skipped, summary.failed, summary.report)

A sweep lives in ``<out>/<name>/``: ``spec.yaml`` (the spec as last run), ``report.html`` and
``points.parquet`` (one row per point: key, swept values, status, verdict, checks, seconds, error),
and per point ``<key>/`` (its run folder), ``<key>.lock`` and ``<key>.failed.json`` (see
:mod:`lmech.lab.executors`). Each finished point is an ordinary run folder at ``<out>/<name>/<key>/``,
so ``lmech query`` reads it with every other run; its ``metrics.parquet`` rows carry ``sweep``,
``point`` and the swept fields' scalar values as index columns, and its ``config.json`` a ``sweep``
block (name, point, values, seconds). Running a sweep again skips the finished points and retries
the failed and interrupted ones.
"""

from __future__ import annotations

import html
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..config import require
from ..errors import ConfigError, StoreError
from ..laws import get_law, list_laws
from ..progress import NO_PROGRESS, Progress
from .executors import EXECUTORS, PointOutcome, PointTask, is_finished, tidy
from .report import STYLE, format_value
from .store import TMP_PREFIX, ensure_writable, load_run
from .sweep_spec import Point, SweepSpec, dump_spec, load_spec, resolve_points

_COLUMNS = {  # the fixed columns of points.parquet; the swept fields follow
    "sweep": pa.string(), "point": pa.string(), "status": pa.string(), "passed": pa.bool_(),
    "checks_passed": pa.int64(), "checks_total": pa.int64(), "seconds": pa.float64(), "run_id": pa.string(),
    "error": pa.string(),
}


@dataclass(frozen=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did.

    Attributes:
        done, skipped, failed, busy: points run now, finished before, failed now, and left to
            another live worker that holds their claim.
        failures: point key → the exception's last line, for the points that failed now.
        outcomes: every point's :class:`~lmech.lab.executors.PointOutcome`, in spec order.
        folder, report, table: the sweep folder, its ``report.html`` and ``points.parquet``.
    """

    name: str
    folder: Path
    done: int
    skipped: int
    failed: int
    busy: int
    failures: Mapping[str, str]
    outcomes: tuple[PointOutcome, ...]
    report: Path
    table: Path

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def complete(self) -> bool:
        """Whether every point is finished (now or before)."""
        return self.done + self.skipped == self.total


def run_sweep(
    spec: SweepSpec | Path | str,
    *,
    out: Path | str = "runs",
    executor: str = "local",
    workers: int | None = None,
    threads: int = 1,
    progress: Progress = NO_PROGRESS,
    stale_after: float | None = None,
    force: bool = False,
) -> SweepSummary:
    """Run every point of ``spec`` not yet finished under ``out/<spec.name>/``, then write the report.

    Every point is validated before any runs. A point that raises is recorded and the sweep goes on;
    an interruption (``KeyboardInterrupt``) stops the workers, writes the report of what finished,
    and propagates.

    Args:
        spec: a :class:`SweepSpec` or the path of a YAML spec.
        out: the runs folder.
        executor: ``"local"`` (worker processes), ``"ray"`` (``RAY_ADDRESS``, the running Ray
            instance, or a local one) or ``"serial"`` (this process, one point at a time).
        workers: concurrent points (default: the CPUs available, or the Ray cluster's CPUs).
        threads: PyTorch CPU threads per worker (0 = PyTorch's default).
        progress: counts points (one unit each, including skipped ones).
        stale_after: seconds after which another host's claim on a point may be taken over.
        force: take over every claim whose owner cannot be seen alive (other hosts' included).

    Raises:
        ConfigError: a bad spec or argument, or a name that is a law's (whose runs live in ``out/<law>``).
        UnknownNameError: an unknown law or config field.
        StoreError: ``out`` cannot be written.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    require(executor in EXECUTORS, f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    require(workers is None or (isinstance(workers, int) and workers >= 1), f"workers must be >= 1, got {workers!r}")
    require(isinstance(threads, int) and threads >= 0, f"threads must be >= 0 (0 = PyTorch's default), got {threads!r}")
    require(stale_after is None or stale_after > 0, f"stale_after must be > 0 seconds, got {stale_after!r}")
    if spec.name in {law.name for law in list_laws()}:
        raise ConfigError(f"sweep name {spec.name!r} is a law's name, whose runs live in {spec.name}/; "
                          f"name the sweep e.g. {spec.name}-sweep")
    points = resolve_points(spec)
    folder = ensure_writable(Path(out) / spec.name)
    _write_atomic(folder / "spec.yaml", dump_spec(spec).encode())
    law = type(get_law(spec.law))
    tasks = [PointTask(str(folder), spec.name, law, spec.preset, p.key, dict(p.values), p.config, stale_after, force)
             for p in points]
    outcomes: dict[str, PointOutcome] = {}

    def record(outcome: PointOutcome) -> None:
        outcomes[outcome.key] = outcome
        progress.advance(1)

    progress.task(f"sweep {spec.name}", total=len(tasks))
    for key in {p.name[len(TMP_PREFIX):].split("-")[0] for p in folder.glob(f"{TMP_PREFIX}*")}:
        if is_finished(folder, key):  # what a killed worker left of a point finished since
            tidy(folder, key)
    todo = []
    for task in tasks:
        if is_finished(folder, task.key):
            record(PointOutcome(task.key, "skipped"))
        else:
            todo.append(task)
    try:
        if todo:
            if workers is None and executor == "local":
                workers = min(len(todo), _cpus())
            EXECUTORS[executor](todo, workers=workers, threads=threads, on_outcome=record)
    finally:
        report, table = write_sweep_report(folder, spec, points)
    ordered = tuple(outcomes[t.key] for t in tasks)
    count = {s: sum(o.status == s for o in ordered) for s in ("done", "skipped", "failed", "busy")}
    failures = {o.key: o.error or "" for o in ordered if o.status == "failed"}
    return SweepSummary(spec.name, folder, count["done"], count["skipped"], count["failed"], count["busy"], failures,
                        ordered, report, table)


def point_rows(folder: Path | str, spec: SweepSpec, points: list[Point]) -> list[dict[str, Any]]:
    """One row per point from what is on disk: the swept values (a field named like a fixed column
    gets a ``config_`` prefix), ``status`` (``finished``, ``failed``, ``pending``), ``passed``,
    ``checks_passed``, ``checks_total``, ``seconds`` (the law's run time), ``run_id`` and ``error``."""
    folder = Path(folder)
    rows = []
    for p in points:
        row: dict[str, Any] = dict.fromkeys(_COLUMNS)
        row.update(sweep=spec.name, point=p.key, status="pending")
        row.update({(f"config_{k}" if k in _COLUMNS else k): v for k, v in p.values.items()})
        failure = folder / f"{p.key}.failed.json"
        if is_finished(folder, p.key):
            try:
                meta = load_run(folder / p.key)
            except StoreError as exc:
                row.update(status="damaged", error=str(exc))
            else:
                checks = meta["checks"]
                row.update(status="finished", passed=bool(meta.get("passed")), run_id=meta["run_id"],
                           checks_passed=sum(bool(c.get("passed")) for c in checks), checks_total=len(checks),
                           seconds=(meta.get("sweep") or {}).get("seconds"))
        elif failure.is_file():
            try:
                info = json.loads(failure.read_text())
            except (OSError, ValueError):
                info = {"error": "unreadable failure record", "traceback": ""}
            row.update(status="failed", error=info.get("error"), traceback=info.get("traceback"))
        rows.append(row)
    return rows


def write_sweep_report(folder: Path | str, spec: SweepSpec, points: list[Point]) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``points.parquet`` in the sweep folder from what is
    on disk; return their paths."""
    folder = Path(folder)
    rows = point_rows(folder, spec, points)
    tracebacks = [row.pop("traceback", None) for row in rows]
    table = folder / "points.parquet"
    tmp = folder / f"{TMP_PREFIX}points-{secrets.token_hex(4)}.parquet"
    columns = {k: pa.array([row[k] for row in rows], type=_COLUMNS.get(k)) for k in rows[0]}
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, table)
    swept = [k for k in rows[0] if k not in _COLUMNS] if rows else []
    body = []
    for row, trace in zip(rows, tracebacks):
        key = html.escape(row["point"])
        cells = [f'<a href="{key}/report.html"><code>{key}</code></a>' if row["status"] == "finished" else f"<code>{key}</code>"]
        cells += [format_value(row[k]) if not isinstance(row[k], list) else html.escape(str(row[k])) for k in swept]
        verdict = {None: "", True: "<span class=pass>PASS</span>", False: "<span class=fail>FAIL</span>"}[row["passed"]]
        checks = "" if row["checks_total"] is None else f"{row['checks_passed']}/{row['checks_total']}"
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        error = ""
        if row["error"]:
            error = f"<details><summary>{html.escape(row['error'])}</summary><pre>{html.escape(trace or '')}</pre></details>"
        cells += [html.escape(row["status"]), verdict, checks, seconds, error]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("finished", "failed", "pending", "damaged")}
    n_pass = sum(bool(r["passed"]) for r in rows)
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ["point", *swept, "status", "verdict", "checks", "seconds", "error"])
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>sweep {html.escape(spec.name)}</title><style>{STYLE}</style></head><body>
<h1>Sweep {html.escape(spec.name)}</h1>
<p>law <code>{html.escape(spec.law)}</code> · preset {html.escape(str(spec.preset))} · {len(rows)} points:
{counts['finished']} finished ({n_pass} pass every check), {counts['failed']} failed, {counts['pending']} not run{
    f", {counts['damaged']} damaged" if counts['damaged'] else ""}</p>
<table><tr>{header}</tr>{''.join(body)}</table>
<h2>Spec</h2><pre>{html.escape(dump_spec(spec))}</pre>
</body></html>"""
    report = folder / "report.html"
    _write_atomic(report, page.encode())
    return report, table


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
