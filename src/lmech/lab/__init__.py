"""The lab: run folders on disk, reports, SQL over all runs, and sweeps."""

from .query import connect as connect
from .query import finished_runs as finished_runs
from .query import query as query
from .report import write_report as write_report
from .store import load_run as load_run
from .store import save_run as save_run
from .sweep import SweepSummary as SweepSummary
from .sweep import run_sweep as run_sweep
from .sweep import write_sweep_report as write_sweep_report
from .sweep_spec import Distribution as Distribution
from .sweep_spec import Point as Point
from .sweep_spec import RandomSearch as RandomSearch
from .sweep_spec import SweepSpec as SweepSpec
from .sweep_spec import load_spec as load_spec
from .sweep_spec import resolve_points as resolve_points

__all__ = [
    "Distribution", "Point", "RandomSearch", "SweepSpec", "SweepSummary", "connect", "finished_runs", "load_run",
    "load_spec", "query", "resolve_points", "run_sweep", "save_run", "write_report", "write_sweep_report",
]
