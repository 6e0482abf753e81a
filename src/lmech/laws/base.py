"""A law = an experiment + a prediction + checks that compare them with explicit tolerances."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..progress import NO_PROGRESS, Progress
from ..train.records import Records

PILLARS = {
    "solvable-settings": "Solvable idealized settings",
    "tractable-limits": "Tractable limits",
    "simple-laws": "Simple mathematical laws",
    "hyperparameters": "Theories of hyperparameters",
    "universality": "Universal behaviors",
}


@dataclass(frozen=True)
class Check:
    """One falsifiable comparison of a measured number with a predicted one.

    ``rule`` says in words how ``measured``, ``predicted`` and ``tolerance`` decide ``passed``.
    Construct with :meth:`within`, :meth:`at_least` or :meth:`at_most` so the rule and the verdict
    cannot disagree.
    """

    name: str
    measured: float
    predicted: float
    tolerance: float
    passed: bool
    rule: str

    @classmethod
    def within(cls, name: str, measured: float, predicted: float, rel_tol: float) -> Check:
        """Passes when ``|measured − predicted| ≤ rel_tol·|predicted|``."""
        ok = math.isfinite(measured) and abs(measured - predicted) <= rel_tol * abs(predicted)
        return cls(name, float(measured), float(predicted), rel_tol, bool(ok), f"within ±{rel_tol:.0%} of predicted")

    @classmethod
    def at_least(cls, name: str, measured: float, bound: float) -> Check:
        """Passes when ``measured ≥ bound`` (``predicted`` holds the bound)."""
        ok = math.isfinite(measured) and measured >= bound
        return cls(name, float(measured), float(bound), 0.0, bool(ok), "measured ≥ bound")

    @classmethod
    def at_most(cls, name: str, measured: float, bound: float) -> Check:
        """Passes when ``measured ≤ bound`` (``predicted`` holds the bound)."""
        ok = math.isfinite(measured) and measured <= bound
        return cls(name, float(measured), float(bound), 0.0, bool(ok), "measured ≤ bound")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LawResult:
    """What one run of a law produced.

    Attributes:
        metrics: the measured dots, long form (``step, observable, value`` + index columns).
        curves: the predicted curves, long form (``curve, x, y`` + index columns).
        checks: the verdicts.
        figures: name → matplotlib figure (saved as ``name.png``).
        summary: a few headline numbers for the report.
    """

    metrics: Records
    curves: pa.Table
    checks: list[Check]
    figures: dict[str, Figure] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass(frozen=True)
class Reference:
    citation: str
    arxiv: str = ""

    def __str__(self) -> str:
        return f"{self.citation} (arXiv:{self.arxiv})" if self.arxiv else self.citation


class Law:
    """Subclass, set the class attributes, implement :meth:`run`, and decorate with ``@register``.

    ``Config`` is a frozen keyword-only dataclass whose defaults are the standard setting;
    ``presets`` maps ``"quick"`` (about a minute on 2 cores) and ``"full"`` to field overrides.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    pillar: ClassVar[str]
    references: ClassVar[tuple[Reference, ...]]
    statement: ClassVar[str]
    Config: ClassVar[type]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def config(self, preset: str | None = None, **overrides: Any) -> Any:
        """The config for ``preset`` (``None`` = the standard one), with ``overrides`` applied."""
        base = self.Config()
        if preset is not None:
            if preset not in self.presets:
                raise ConfigError(f"preset must be one of {sorted(self.presets)}, got {preset!r}")
            base = dataclasses.replace(base, **self.presets[preset])
        return dataclasses.replace(base, **overrides)

    def run(self, config: Any, progress: Progress = NO_PROGRESS) -> LawResult:
        raise NotImplementedError
