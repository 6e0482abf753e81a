"""Observables recorded in long form: one row per ``(step, observable, value)`` plus index columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa


class Records:
    """A growing long-form table of measurements.

    Every row has ``step`` (int), ``observable`` (str), ``value`` (float) and the same index columns
    (for example ``lr``, ``width``, ``seed``) that identify which run of a family it belongs to.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()):
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def add(self, step: int, observable: str, value: float, **index: Any) -> None:
        self.rows.append({"step": int(step), "observable": observable, "value": float(value), **index})

    def extend(self, other: Records) -> None:
        self.rows.extend(other.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def series(self, observable: str, **index: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one observable for the rows matching ``index``, sorted by step."""
        pts = sorted(
            (r["step"], r["value"])
            for r in self.rows
            if r["observable"] == observable and all(r.get(k) == v for k, v in index.items())
        )
        if not pts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        steps, values = zip(*pts)
        return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def to_arrow(self, **constant: Any) -> pa.Table:
        """The rows as an Arrow table, with ``constant`` columns (e.g. ``run_id``) prepended."""
        columns: dict[str, list[Any]] = {k: [] for k in constant}
        keys: list[str] = ["step", "observable", "value"]
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        for k in keys:
            columns[k] = []
        for r in self.rows:
            for k, v in constant.items():
                columns[k].append(v)
            for k in keys:
                columns[k].append(r.get(k))
        return pa.table(columns)
