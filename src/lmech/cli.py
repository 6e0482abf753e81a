"""The ``lmech`` command: list, run, check, report, query. It parses, calls the library, prints."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .config import apply_overrides, to_dict
from .errors import ConfigError, LmechError
from .lab import query as run_query
from .lab import save_run, write_report
from .lab.store import ensure_writable
from .laws import PILLARS, Law, LawResult, get_law, list_laws

app = typer.Typer(add_completion=False, no_args_is_help=True, help="lmech: the laws of learning mechanics, run and checked.")
out = Console() if sys.stdout.isatty() else Console(width=132)
err = Console(stderr=True)

EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1


class RichProgress:
    """:class:`lmech.progress.Progress` drawn as a Rich progress bar."""

    def __init__(self, bar: Progress):
        self.bar, self.current = bar, None

    def task(self, description: str, total: int) -> None:
        if self.current is not None:  # a task left short (e.g. training stopped early) shows as done
            self.bar.update(self.current, completed=self.bar.tasks[self.current].total)
        self.current = self.bar.add_task(description, total=total)

    def advance(self, units: int = 1) -> None:
        if self.current is not None:
            self.bar.advance(self.current, units)


def _progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn lmech's errors into a one-line message and exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LmechError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            err.print("interrupted: runs not yet finished were not written", soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def _preset(quick: bool, full: bool) -> str | None:
    if quick and full:
        raise ConfigError("choose one of --quick and --full, not both")
    return "quick" if quick else "full" if full else None


def _resolve(law: Law, preset: str | None, sets: list[str], seed: int | None) -> Any:
    config = law.config(preset)
    overrides = list(sets)
    if seed is not None:
        overrides.append(f"seed={seed}")
    return apply_overrides(config, overrides)


def _checks_table(result: LawResult, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col, kw in (("check", {}), ("measured", {"justify": "right"}), ("predicted / bound", {"justify": "right"}),
                    ("rule", {}), ("result", {})):
        table.add_column(col, **kw)
    for c in result.checks:
        verdict = "[green]pass[/]" if c.passed else "[bold red]FAIL[/]"
        table.add_row(c.name, f"{c.measured:.4g}", f"{c.predicted:.4g}", c.rule, verdict)
    return table


def _set_threads(threads: int) -> None:
    if threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0 = PyTorch's default), got {threads}")
    if threads:
        torch.set_num_threads(threads)


THREADS_HELP = ("CPU threads for PyTorch (0 = PyTorch's default). The laws' small models run fastest on 1, "
                "and several threads per process thrash when jobs share cores")


def _run_one(law: Law, config: Any, preset: str | None, root: Path) -> tuple[LawResult, Path, float]:
    start = time.perf_counter()
    with _progress_bar() as bar:
        result = law.run(config, RichProgress(bar))
    run_dir = save_run(root, law, config, result, preset=preset)
    return result, run_dir, time.perf_counter() - start


@app.command("list")
@guarded
def list_command(pillar: Optional[str] = typer.Option(None, help=f"only this pillar: {', '.join(PILLARS)}")) -> None:
    """The laws, by pillar, with their references."""
    table = Table(show_lines=True)
    for col in ("pillar", "law", "statement", "references"):
        table.add_column(col)
    for law in list_laws(pillar):
        table.add_row(PILLARS[law.pillar], f"[bold]{law.name}[/]", law.statement, "\n".join(str(r) for r in law.references))
    out.print(table)


@app.command()
@guarded
def run(
    law_name: str = typer.Argument(..., metavar="LAW", help="a law name from `lmech list`"),
    quick: bool = typer.Option(False, "--quick", help="the quick preset: about a minute on a laptop core"),
    full: bool = typer.Option(False, "--full", help="the larger setting"),
    sets: list[str] = typer.Option([], "--set", help="override a config field: --set key=value (repeatable)"),
    seed: Optional[int] = typer.Option(None, help="the seed (same as --set seed=N)"),
    out_dir: Path = typer.Option(Path("runs"), "--out", help="runs folder"),
    threads: int = typer.Option(1, help=THREADS_HELP),
    show_config: bool = typer.Option(False, "--show-config", help="print the resolved config (every key --set takes) and exit"),
) -> None:
    """Run one law: train, measure, compare with theory, write a run folder with a report."""
    _set_threads(threads)
    law = get_law(law_name)
    preset = _preset(quick, full)
    config = _resolve(law, preset, sets, seed)
    if show_config:
        table = Table(title=f"{law.name} config ({preset or 'standard'})", title_justify="left")
        table.add_column("key")
        table.add_column("value")
        for key, value in to_dict(config).items():
            table.add_row(key, str(value))
        out.print(table)
        return
    ensure_writable(out_dir)
    result, run_dir, seconds = _run_one(law, config, preset, out_dir)
    out.print(_checks_table(result, f"{law.name}: {sum(c.passed for c in result.checks)}/{len(result.checks)} checks pass"))
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    out.print(f"verdict: {verdict} in {seconds:.1f} s")
    out.print(f"report: {run_dir / 'report.html'}")
    if not result.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
@guarded
def check(
    quick: bool = typer.Option(False, "--quick", help="the quick preset of every law"),
    full: bool = typer.Option(False, "--full", help="the full preset of every law"),
    pillar: Optional[str] = typer.Option(None, help=f"only this pillar: {', '.join(PILLARS)}"),
    out_dir: Path = typer.Option(Path("runs"), "--out", help="runs folder"),
    threads: int = typer.Option(1, help=THREADS_HELP),
) -> None:
    """Run every law and print a pass/fail table; exit 1 if any check fails."""
    _set_threads(threads)
    preset = _preset(quick, full)
    laws = list_laws(pillar)
    if not laws:
        out.print(f"no laws in pillar {pillar!r} yet; `lmech list` shows what there is")
        return
    ensure_writable(out_dir)
    table = Table(title=f"lmech check ({preset or 'standard'})", title_justify="left")
    for col in ("law", "pillar", "checks passed", "verdict", "seconds", "report"):
        table.add_column(col)
    failed = []
    for law in laws:
        result, run_dir, seconds = _run_one(law, law.config(preset), preset, out_dir)
        n = sum(c.passed for c in result.checks)
        if not result.passed:
            failed.append(law.name)
            out.print(_checks_table(result, f"{law.name}: failing checks"))
        table.add_row(law.name, law.pillar, f"{n}/{len(result.checks)}",
                      "[green]PASS[/]" if result.passed else "[bold red]FAIL[/]", f"{seconds:.1f}",
                      str(run_dir / "report.html"))
    out.print(table)
    if failed:
        err.print(f"[bold red]{len(failed)} law(s) failed:[/] {', '.join(failed)}")
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
@guarded
def report(run_dir: Path = typer.Argument(..., help="a run folder, e.g. runs/edge-of-stability/<run-id>")) -> None:
    """Re-render a run's report.html and print its path."""
    out.print(str(write_report(run_dir)))


@app.command()
@guarded
def query(
    sql: str = typer.Argument(..., help="SQL over the views metrics, checks, runs"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="runs folder"),
    limit: int = typer.Option(50, min=1, help="print at most this many rows"),
) -> None:
    """Run SQL with DuckDB over every stored run (views: metrics, checks, runs)."""
    columns, rows = run_query(sql, runs)
    table = Table(caption=f"{len(rows)} row(s)" + (f", first {limit} shown" if len(rows) > limit else ""))
    for c in columns:
        table.add_column(c)
    for row in rows[:limit]:
        table.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
