"""Run folders on disk, written atomically.

A run is ``<root>/<law>/<run-id>/`` holding ``config.json``, ``metrics.parquet`` (long form:
``run_id, law, step, observable, value`` + index columns), ``curves.parquet`` (the predictions),
``checks.json``, one PNG per figure and ``report.html``. Everything is first written to a hidden
temporary folder beside it and renamed into place once complete, so an interrupted run never looks
finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..config import to_dict
from ..errors import StoreError

TMP_PREFIX = ".tmp-"


def versions() -> dict[str, str]:
    from .. import __version__

    return {
        "lmech": __version__, "torch": torch.__version__, "numpy": np.__version__,
        "pyarrow": pa.__version__, "python": platform.python_version(),
    }


def config_hash(law: str, config: dict[str, Any]) -> str:
    """A short stable hash of a law's resolved config (the key of a run or sweep point)."""
    text = json.dumps({"law": law, "config": config}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def ensure_writable(root: Path) -> Path:
    """Create ``root`` if needed and check that files can be written in it.

    Raises:
        StoreError: naming the folder and what to do instead.
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=TMP_PREFIX):
            pass
    except OSError as exc:
        raise StoreError(
            f"cannot write runs to {str(root)!r} ({exc.strerror or exc}); pass --out with a folder you can write to"
        ) from None
    return root


def save_run(root: Path | str, law: Any, config: Any, result: Any, *, preset: str | None = None,
             extra: dict[str, Any] | None = None) -> Path:
    """Write one law run to ``root/<law>/<run-id>/`` atomically and return the final folder.

    Args:
        root: the runs folder (created if missing).
        law: the :class:`~lmech.laws.Law` that ran.
        config: its resolved config dataclass.
        result: the :class:`~lmech.laws.LawResult`.
        preset: ``"quick"``, ``"full"`` or ``None`` (the standard setting), recorded in the config.
        extra: more entries for ``config.json`` (a sweep records its name and point there).

    Raises:
        StoreError: if the folder cannot be written.
    """
    from .report import write_report

    root = ensure_writable(Path(root))
    config_dict = to_dict(config)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = f"{now:%Y%m%d-%H%M%S}-{config_hash(law.name, config_dict)}-{os.getpid() % 10000:04d}"
    law_dir = root / law.name
    law_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id}-", dir=law_dir))
    try:
        meta = {
            "run_id": run_id, "law": law.name, "title": law.title, "pillar": law.pillar,
            "statement": law.statement, "references": [str(r) for r in law.references],
            "preset": preset, "seed": getattr(config, "seed", None), "config": config_dict,
            "created": now.isoformat(timespec="seconds"), "versions": versions(),
            "passed": bool(result.passed), "summary": result.summary, **(extra or {}),
        }
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=float))
        pq.write_table(result.metrics.to_arrow(run_id=run_id, law=law.name), tmp / "metrics.parquet")
        curves = result.curves
        curves = curves.add_column(0, "run_id", pa.array([run_id] * len(curves), pa.string()))
        pq.write_table(curves, tmp / "curves.parquet")
        checks = [{"run_id": run_id, "law": law.name, **c.to_dict()} for c in result.checks]
        (tmp / "checks.json").write_text(json.dumps(checks, indent=2))
        for name, figure in result.figures.items():
            figure.savefig(tmp / f"{name}.png", dpi=110)
        write_report(tmp)
        final = law_dir / run_id
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_run(run_dir: Path | str) -> dict[str, Any]:
    """The ``config.json`` and ``checks.json`` of a finished run folder.

    Raises:
        StoreError: if ``run_dir`` is not a finished run folder.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "checks.json").is_file():
        raise StoreError(
            f"{str(run_dir)!r} is not a finished run folder (no config.json/checks.json); "
            "pass a folder such as runs/edge-of-stability/<run-id>"
        )
    try:
        meta = json.loads((run_dir / "config.json").read_text())
        meta["checks"] = json.loads((run_dir / "checks.json").read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the run folder {str(run_dir)!r}: {exc}") from None
    missing = [k for k in ("run_id", "law", "config", "created") if not isinstance(meta, dict) or k not in meta]
    if missing or not isinstance(meta["checks"], list):
        raise StoreError(f"{str(run_dir)!r} has a damaged config.json or checks.json (missing {missing or ['checks']}); "
                         "re-run the law")
    return meta
