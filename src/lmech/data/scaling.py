"""Scaling-law data: parameters, tokens, FLOP and final loss per training run.

From a CSV (:func:`read_scaling_csv`, one row per run) or from a dataset that ships with lmech
(:func:`load_scaling_dataset`; files and their sources in ``lmech/data/files/README.md``):

* ``chinchilla`` — 245 runs Epoch AI extracted from Figure 4 of Hoffmann et al. (2022, arXiv:2203.15556),
  from the public repository epoch-research/analyzing-chinchilla (Besiroglu et al. 2024, arXiv:2404.10102).
* ``isoflops`` — 947 isoFLOP runs of eight experiments (Chinchilla, Llama 3, Marin, ...), from the public
  repository Open-Athena/scaling-law-analysis.

Tokens and FLOP are tied by ``C = 6 N D`` when a file gives only one of them.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..config import closest
from ..errors import ConfigError

__all__ = ["ScalingData", "load_scaling_dataset", "read_scaling_csv", "scaling_datasets"]


@dataclass(frozen=True)
class ScalingData:
    """Training runs, one entry per run; every array has shape ``(n_runs,)``.

    Attributes:
        n_params: model size ``N`` (parameters).
        tokens: training tokens ``D``.
        flops: training compute ``C`` (FLOP); ``6 N D`` where the file gives none.
        loss: final loss.
        budget: the nominal budget of each run's isoFLOP profile, or ``None`` when the data has none.
        labels: text columns (e.g. ``source``, ``experiment``) by name.
        name: the dataset name or file name; source: where the data comes from.
        reference: a published fit of this data, ``(citation, {constant: value})``, or ``None``.
    """

    n_params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    loss: np.ndarray
    budget: np.ndarray | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    source: str = ""
    reference: tuple[str, dict[str, float]] | None = None

    def __len__(self) -> int:
        return int(self.loss.size)

    def subset(self, mask: np.ndarray) -> ScalingData:
        """The runs where the boolean ``mask`` (shape ``(n_runs,)``) is true."""
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        return ScalingData(pick(self.n_params), pick(self.tokens), pick(self.flops), pick(self.loss), pick(self.budget),
                           {k: v[mask] for k, v in self.labels.items()}, self.name, self.source, self.reference)

    def select(self, **equal: str) -> ScalingData:
        """The runs whose text columns equal the given values, e.g. ``select(experiment="llama_3__raw_loss")``.

        Raises:
            ConfigError: for a column that is not a text column, or a value no run has (the message lists
                the valid ones).
        """
        mask = np.ones(len(self), dtype=bool)
        for key, value in equal.items():
            if key not in self.labels:
                valid = ", ".join(self.labels) or "none"
                raise ConfigError(f"{self.name} has no text column {key!r} to select on (text columns: {valid})")
            values = sorted(set(self.labels[key].tolist()))
            if value not in values:
                raise ConfigError(f"no run of {self.name} has {key}={value!r} (values: {', '.join(values)})"
                                  f"{closest(value, values)}")
            mask &= self.labels[key] == value
        return self.subset(mask)


def _parse_float(text: str) -> tuple[float | None, str]:
    text = text.strip()
    if not text:
        return None, "is empty"
    try:
        value = float(text)
    except ValueError:
        return None, f"{text!r} is not a number"
    if math.isnan(value):
        return None, "is NaN"
    if not math.isfinite(value):
        return None, f"is {text!r}, not a finite number"
    if value <= 0:
        return None, f"must be > 0, got {value:g}"
    return value, ""


def read_scaling_csv(path: str | Path, *, n_col: str = "params", d_col: str | None = None, flop_col: str | None = None,
                     loss_col: str = "loss", budget_col: str | None = None, label_cols: tuple[str, ...] = (),
                     name: str | None = None, source: str = "") -> ScalingData:
    """Read training runs from a CSV with a header row.

    The CSV needs the model-size and loss columns and a tokens column, a FLOP column, or both; with one of
    them the other follows from ``C = 6 N D``. With neither ``d_col`` nor ``flop_col`` given, tokens are
    read from a column named ``tokens``.

    Args:
        path: the CSV file.
        n_col, d_col, flop_col, loss_col: column names of ``N``, ``D``, ``C`` (FLOP) and the loss.
        budget_col: column of each run's nominal isoFLOP budget (optional).
        label_cols: text columns to keep (for :meth:`ScalingData.select`).
        name, source: recorded in the result (default: the file name, empty).

    Returns:
        A :class:`ScalingData`.

    Raises:
        ConfigError: for a missing file or column (the message lists the file's columns), a row with too
            few fields, or a numeric cell that is empty, not a number, NaN, infinite or ``<= 0`` (the message
            names the row, its line in the file and the column).
    """
    path = Path(path)
    if d_col is None and flop_col is None:
        d_col = "tokens"
    numeric = {"n": n_col, "d": d_col, "c": flop_col, "loss": loss_col, "budget": budget_col}
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r} ({exc.strerror or exc}); pass an existing CSV file") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ConfigError(f"{path.name} is empty; it needs a header row and one row per training run")
        header = [h.strip() for h in header]
        index = {h: i for i, h in enumerate(header)}
        option = {"n": "--n-col", "d": "--d-col", "c": "--flop-col", "loss": "--loss-col", "budget": "budget_col"}
        for key, col in [*numeric.items(), *((c, c) for c in label_cols)]:
            if col is not None and col not in index:
                hint = f"; pass {option[key]} with the right name" if key in option else ""
                raise ConfigError(f"{path.name} has no column {col!r} (columns: {', '.join(header)}){hint}"
                                  f"{closest(col, header)}")
        values: dict[str, list[float]] = {k: [] for k, c in numeric.items() if c is not None}
        texts: dict[str, list[str]] = {c: [] for c in label_cols}
        for row_number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            where = f"{path.name}: row {row_number} (line {reader.line_num})"
            if len(row) < len(header):
                raise ConfigError(f"{where} has {len(row)} fields, the header has {len(header)}; fix or delete that row")
            for key in values:
                value, problem = _parse_float(row[index[numeric[key]]])
                if problem:
                    raise ConfigError(f"{where}, column {numeric[key]!r}: {problem}; fix or delete that row")
                values[key].append(value)
            for col in label_cols:
                texts[col].append(row[index[col]].strip())
    if not values["loss"]:
        raise ConfigError(f"{path.name} has a header but no rows; it needs one row per training run")
    arr = {k: np.array(v, dtype=np.float64) for k, v in values.items()}
    n = arr["n"]
    tokens = arr["d"] if "d" in arr else arr["c"] / (6.0 * n)
    flops = arr["c"] if "c" in arr else 6.0 * n * tokens
    return ScalingData(n, tokens, flops, arr["loss"], arr.get("budget"), {c: np.array(v) for c, v in texts.items()},
                       name or path.name, source)


@dataclass(frozen=True)
class _Dataset:
    file: str
    description: str
    source: str
    columns: dict
    excluded_rows: tuple[int, ...] = ()  # 0-based data rows dropped unless all_rows=True
    reference: tuple[str, dict[str, float]] | None = None


_DATASETS = {
    "chinchilla": _Dataset(
        file="chinchilla_svg_extracted.csv",
        description="245 Chinchilla runs extracted from Hoffmann et al. (2022) Fig. 4 by Epoch AI; "
                    "the 240 Besiroglu et al. (2024) fitted by default",
        source="Epoch AI's extraction of Hoffmann et al. (2022, arXiv:2203.15556) Fig. 4, from the public repository "
               "epoch-research/analyzing-chinchilla (Besiroglu et al. 2024, arXiv:2404.10102); licence unknown",
        columns={"n_col": "Model Size", "flop_col": "Training FLOP", "loss_col": "loss"},
        excluded_rows=(0, 1, 2, 3, 4),  # the five runs with the fewest tokens (< 8.2e8) and the highest losses
        reference=("Besiroglu et al. 2024", {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}),
    ),
    "isoflops": _Dataset(
        file="isoflops_combined.csv",
        description="947 isoFLOP runs of 8 experiments (Chinchilla, Llama 3, Marin, misfitting), by `experiment`",
        source="the public repository Open-Athena/scaling-law-analysis (Czech et al., arXiv:2603.22339), "
               "collected from each source's paper; licence unknown",
        columns={"n_col": "params", "d_col": "tokens", "loss_col": "loss", "budget_col": "budget",
                 "label_cols": ("source", "dataset", "model", "condition", "experiment")},
    ),
}


def scaling_datasets() -> dict[str, str]:
    """The shipped scaling datasets: name → one-line description."""
    return {name: d.description for name, d in _DATASETS.items()}


def load_scaling_dataset(name: str, *, all_rows: bool = False) -> ScalingData:
    """A scaling dataset that ships with lmech (no download).

    ``chinchilla``: by default the 240 runs Besiroglu et al. (2024, arXiv:2404.10102) fitted — the five runs
    with the fewest tokens (``D < 8.2·10⁸``, losses 3.45–5.01) are dropped, the five whose removal reproduces
    their published constants; ``all_rows=True`` keeps all 245. ``reference`` holds their constants.
    ``isoflops``: 947 runs with ``budget`` and text columns ``source, dataset, model, condition, experiment``;
    fit one experiment at a time (``.select(experiment=...)``).

    Args:
        name: ``"chinchilla"`` or ``"isoflops"``.
        all_rows: keep rows the dataset's documented analysis excludes.

    Returns:
        A :class:`ScalingData`.

    Raises:
        ConfigError: for an unknown name (the message lists the datasets).
    """
    if name not in _DATASETS:
        raise ConfigError(f"no scaling dataset named {name!r}{closest(name, _DATASETS)}; datasets: {', '.join(_DATASETS)}")
    spec = _DATASETS[name]
    with resources.as_file(resources.files("lmech.data").joinpath("files").joinpath(spec.file)) as path:
        data = read_scaling_csv(path, name=name, source=spec.source, **spec.columns)
    reference = None if all_rows and spec.excluded_rows else spec.reference  # published for the default rows
    data = ScalingData(data.n_params, data.tokens, data.flops, data.loss, data.budget, data.labels, name, spec.source,
                       reference)
    if spec.excluded_rows and not all_rows:
        keep = np.ones(len(data), dtype=bool)
        keep[list(spec.excluded_rows)] = False
        data = data.subset(keep)
    return data
