"""The lab: run folders on disk, reports, and SQL over all runs."""

from .query import connect as connect
from .query import finished_runs as finished_runs
from .query import query as query
from .report import write_report as write_report
from .store import load_run as load_run
from .store import save_run as save_run

__all__ = ["connect", "finished_runs", "load_run", "query", "save_run", "write_report"]
