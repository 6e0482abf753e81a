"""The ``lmech`` command: list, run, check, sweep, fit, report, query. It parses, calls the library, prints."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import matplotlib
import numpy as np
import torch
import typer
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
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
from .data import ScalingData, load_scaling_dataset, read_scaling_csv, scaling_datasets
from .errors import ConfigError, LmechError
from .lab import load_spec, resolve_points, run_sweep, save_run, write_report
from .lab import query as run_query
from .lab.store import ensure_writable
from .laws import PILLARS, Law, LawResult, get_law, list_laws
from .theory import ChinchillaFit, fit_chinchilla

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


# --- lmech sweep: a law over a grid or random search of its config -------------------------------------------

@app.command()
@guarded
def sweep(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="a YAML sweep spec, e.g. examples/sweep_deep_linear.yaml"),
    executor: str = typer.Option("local", help="local (worker processes), ray (RAY_ADDRESS, or a local Ray), "
                                               "or serial (this process, one point at a time)"),
    workers: Optional[int] = typer.Option(None, help="points at a time (default: the CPUs, or the Ray cluster's)"),
    out_dir: Path = typer.Option(Path("runs"), "--out", help="runs folder; the sweep goes to OUT/NAME/"),
    threads: int = typer.Option(1, help=THREADS_HELP),
    stale_after: Optional[float] = typer.Option(None, "--stale-after", metavar="SECONDS",
                                                help="take over another host's claim on a point after this long"),
    force: bool = typer.Option(False, "--force", help="take over every claim whose owner cannot be seen alive"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the points and exit"),
) -> None:
    """Run a law over a grid and/or random search of its config. Rerun to resume: finished points
    are skipped, failed and interrupted ones run again."""
    spec = load_spec(spec_path)
    if dry_run:
        points = resolve_points(spec)
        table = Table(title=f"sweep {spec.name}: {len(points)} points of {spec.law}", title_justify="left")
        names = list(points[0].values)
        for col in ("point", *names):
            table.add_column(col)
        for p in points:
            table.add_row(p.key, *(str(p.values[n]) for n in names))
        out.print(table)
        return
    start = time.perf_counter()
    try:
        with _progress_bar() as bar:
            summary = run_sweep(spec, out=out_dir, executor=executor, workers=workers, threads=threads,
                                progress=RichProgress(bar), stale_after=stale_after, force=force)
    except KeyboardInterrupt:
        err.print(f"interrupted: finished points are kept in {out_dir / spec.name}; run the same command to resume",
                  soft_wrap=True)
        raise typer.Exit(130) from None
    out.print(f"sweep {summary.name}: {summary.done} done, {summary.skipped} skipped (finished before), "
              f"{summary.failed} failed" + (f", {summary.busy} being run by other workers" if summary.busy else "")
              + f" in {time.perf_counter() - start:.1f} s")
    if summary.failures:
        table = Table(title="failed points (their tracebacks: KEY.failed.json; rerun to retry)", title_justify="left")
        table.add_column("point")
        table.add_column("error")
        for key, error in summary.failures.items():
            table.add_row(key, error)
        out.print(table)
    for o in summary.outcomes:
        if o.status == "busy":
            err.print(f"{o.key}: {o.error}", soft_wrap=True)
    out.print(f"report: {summary.report}")
    out.print(f"points: {summary.table}")
    if summary.failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


# --- lmech fit: fit a law's constants to measured data ----------------------------------------------------------

fit_app = typer.Typer(no_args_is_help=True, help="Fit a law's constants to measured data, with bootstrap intervals.")
app.add_typer(fit_app, name="fit")

CHINCHILLA_ROWS = (("E", "E"), ("A", "A"), ("B", "B"), ("alpha", "α"), ("beta", "β"), ("a", "a = β/(α+β)"),
                   ("b", "b = α/(α+β)"))


def _scaling_data(file: Path | None, dataset: str | None, columns: dict[str, str | None], select: list[str],
                  all_rows: bool) -> ScalingData:
    if (file is None) == (dataset is None):
        raise ConfigError(f"give a CSV file or --dataset NAME (one of {', '.join(scaling_datasets())}), not "
                          f"{'both' if file else 'neither'}")
    pairs = []
    for item in select:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--select expects COLUMN=VALUE, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    if dataset is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in columns.items() if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} name columns of a CSV file; --dataset {dataset} knows its own")
        data = load_scaling_dataset(dataset, all_rows=all_rows)
    else:
        if all_rows:
            raise ConfigError("--all-rows applies to --dataset chinchilla; a CSV file is fitted as it is")
        data = read_scaling_csv(file, n_col=columns["n_col"] or "params", d_col=columns["d_col"],
                                flop_col=columns["flop_col"], loss_col=columns["loss_col"] or "loss",
                                label_cols=tuple(dict.fromkeys(k for k, _ in pairs)))
    for key, value in pairs:
        data = data.select(**{key: value})
    if not select and "experiment" in data.labels and len(set(data.labels["experiment"].tolist())) > 1:
        names = sorted(set(data.labels["experiment"].tolist()))
        raise ConfigError(f"{data.name} holds {len(names)} experiments, each its own law; fit one with "
                          f"--select experiment=NAME (NAME: {', '.join(names)})")
    return data


def _isoflop_budgets(data: ScalingData) -> np.ndarray:
    """The data's isoFLOP budgets, or 1 and 3 × 10^k FLOP across its compute range."""
    if data.budget is not None:
        return np.unique(data.budget)
    lo, hi = data.flops.min(), data.flops.max()
    grid = np.array([m * 10.0**k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                     for m in (1.0, 3.0)])
    inside = grid[(grid >= lo / 1.5) & (grid <= hi * 1.5)]
    return inside if inside.size >= 2 else np.array([lo, hi])


def _isoflop_figure(data: ScalingData, fit: ChinchillaFit, label: str, path: Path) -> None:
    """Loss against N at fixed compute from the fitted law (lines, optimum starred), data as dots coloured by
    their budget (or FLOP), log N axis."""
    budgets = _isoflop_budgets(data)
    norm = LogNorm(vmin=min(budgets.min(), data.flops.min()), vmax=max(budgets.max(), data.flops.max()))
    cmap = matplotlib.colormaps["viridis"]
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    n_grid = np.geomspace(data.n_params.min() / 2, data.n_params.max() * 2, 300)
    for c in budgets:
        ax.plot(n_grid, fit.predict(n_grid, c / (6 * n_grid)), color=cmap(norm(c)), lw=1.5)
        if fit.alpha > 0 and fit.beta > 0:  # otherwise the isoFLOP curve has no interior minimum
            n_opt, d_opt = fit.compute_optimal(c)
            ax.plot(n_opt, fit.predict(n_opt, d_opt), "*", color=cmap(norm(c)), ms=11, mec="k", mew=0.5)
    colour = data.flops if data.budget is None else data.budget
    ax.scatter(data.n_params, data.loss, c=colour, cmap=cmap, norm=norm, s=16, edgecolors="k", linewidths=0.3,
               zorder=3, label=f"data ({len(data)} runs)")
    ax.set_xscale("log")
    span = max(data.loss.max() - data.loss.min(), 0.01 * data.loss.max())
    ax.set_ylim(data.loss.min() - 0.05 * span, data.loss.max() + 0.05 * span)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"{label}: isoFLOP curves of L = E + A/N^α + B/D^β (lines, ★ optimum) and runs (dots)", fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="training compute C (FLOP)")
    fig.savefig(path, dpi=120)


@fit_app.command("scaling-law")
@guarded
def fit_scaling_law(
    file: Optional[Path] = typer.Argument(None, metavar="[FILE.csv]", help="one row per training run"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="a dataset shipped with lmech: chinchilla, isoflops"),
    n_col: Optional[str] = typer.Option(None, "--n-col", help="column of the model size N (default: params)"),
    d_col: Optional[str] = typer.Option(None, "--d-col", help="column of the training tokens D (default: tokens)"),
    flop_col: Optional[str] = typer.Option(None, "--flop-col", help="column of the training FLOP C; D = C/(6N) without --d-col"),
    loss_col: Optional[str] = typer.Option(None, "--loss-col", help="column of the final loss (default: loss)"),
    select: list[str] = typer.Option([], "--select", help="keep runs whose text column has a value: "
                                                          "--select experiment=NAME (repeatable)"),
    all_rows: bool = typer.Option(False, "--all-rows", help="chinchilla: keep the 5 runs Besiroglu et al. dropped"),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", help="bootstrap refits for the intervals (0: none)"),
    seed: int = typer.Option(0, help="seeds the bootstrap resampling"),
    out_path: Optional[Path] = typer.Option(None, "--out", help="the figure, a .png (default runs/fit/<name>-scaling-law.png)"),
) -> None:
    """Fit L = E + A/N^α + B/D^β (Hoffmann et al. 2022, Approach 3): constants, 95% intervals, isoFLOP figure."""
    columns = {"n_col": n_col, "d_col": d_col, "flop_col": flop_col, "loss_col": loss_col}
    data = _scaling_data(file, dataset, columns, select, all_rows)
    label = "-".join([data.name.removesuffix(".csv"), *(item.partition("=")[2] for item in select)])
    path = out_path or Path("runs") / "fit" / f"{label}-scaling-law.png"
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {str(path)!r}")
    ensure_writable(path.parent)
    start = time.perf_counter()
    fit = fit_chinchilla(data.n_params, data.tokens, data.loss, n_bootstrap=n_bootstrap, seed=seed)
    seconds = time.perf_counter() - start
    reference = data.reference
    table = Table(title=f"L = E + A/N^α + B/D^β on {label} ({fit.n_points} runs)", title_justify="left")
    for col in ("constant", "estimate", "95% interval" if n_bootstrap else "interval", *(reference[:1] if reference else ())):
        table.add_column(col, justify="left" if col == "constant" else "right")
    constants = fit.constants
    ref = dict(reference[1]) if reference else {}
    if ref:
        ref.update(a=ref["beta"] / (ref["alpha"] + ref["beta"]), b=ref["alpha"] / (ref["alpha"] + ref["beta"]))
    for key, shown in CHINCHILLA_ROWS:
        interval = fit.intervals.get(key)
        cells = [shown, f"{constants[key]:.4g}", f"[{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "-"]
        table.add_row(*cells, *([f"{ref[key]:.4g}"] if ref else []))
    out.print(table)
    out.print(f"Approach 3 (Hoffmann et al. 2022): Huber loss (δ = 1e-3) on log L summed over runs, best of "
              f"{fit.n_inits:,} L-BFGS starts, objective {fit.objective:.6g}; {n_bootstrap} bootstrap refits "
              f"(seed {seed}); {seconds:.1f} s")
    c_max = float(data.flops.max())
    if fit.alpha > 0 and fit.beta > 0:
        n_opt, d_opt = fit.compute_optimal(c_max)
        out.print(f"compute-optimal at the largest budget in the data, C = {c_max:.3g} FLOP: N_opt = {float(n_opt):.3g}, "
                  f"D_opt = {float(d_opt):.3g} ({float(d_opt / n_opt):.1f} tokens per parameter)")
    else:
        out.print("no compute-optimal allocation: a fitted exponent is <= 0, so loss does not trade N against D")
    _isoflop_figure(data, fit, label, path)
    out.print(f"figure: {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
