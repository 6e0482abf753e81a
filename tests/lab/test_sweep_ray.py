"""The Ray executor, on a real local Ray instance: the same points give the same results as in this
process, and a worker that dies fails only its point.

Ray starts once for the module (about 10 s); its workers import a small law from a temporary folder
through ``PYTHONPATH`` in the runtime environment.
"""

import importlib
import json
import sys

import pyarrow.parquet as pq
import pytest
import ray

from lmech.lab import SweepSpec, resolve_points, run_sweep

CRASH_LAW = '''
"""A law whose process dies (os._exit) at x = 2: what a segfault or the OOM killer looks like."""
import os
from dataclasses import dataclass

import pyarrow as pa

from lmech.laws import Check, Law, LawResult, Reference, register
from lmech.train import Records


@dataclass(frozen=True, kw_only=True)
class CrashConfig:
    x: float = 1.0
    seed: int = 0


@register
class CrashLaw(Law):
    name = "crash-sweep-law"
    title = "A law that kills its process at x = 2"
    pillar = "simple-laws"
    references = (Reference("The lmech test suite"),)
    statement = "y = x."
    Config = CrashConfig
    presets = {"quick": {}, "full": {}}

    def run(self, config, progress=None):
        if config.x == 2:
            os._exit(1)
        records = Records()
        records.add(0, "y", config.x)
        return LawResult(records, pa.table({"curve": ["y"], "x": [0.0], "y": [config.x]}),
                         [Check.at_most("y", config.x, 10.0)])
'''

TINY = {"depths": [2], "width": 16, "singular_values": [4.0, 2.0], "in_features": 3, "out_features": 3,
        "n_samples": 16, "lr": 2e-3, "record_every": 100}


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash-law")
    (folder / "lmech_sweep_crash_law.py").write_text(CRASH_LAW)
    from lmech.laws import registry

    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        importlib.import_module("lmech_sweep_crash_law")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(folder)}})
        yield
        ray.shutdown()
        registry._LAWS.pop("crash-sweep-law", None)
        sys.modules.pop("lmech_sweep_crash_law", None)


def metrics(folder, key):
    """A point's measurements: its index columns (sorted rows) and the values in that order."""
    rows = pq.read_table(folder / key / "metrics.parquet").drop_columns(["run_id"]).to_pylist()
    rows = sorted(rows, key=lambda row: json.dumps({**row, "value": None}))
    return [{**row, "value": None} for row in rows], [row["value"] for row in rows]


def test_ray_gives_the_same_results_as_this_process(ray_instance, tmp_path):
    spec = SweepSpec(name="tiny", law="deep-linear-modes", preset="quick", base=TINY,
                     grid={"init_strength": [1e-2, 2e-2]}, seeds=(0, 1))
    on_ray = run_sweep(spec, out=tmp_path / "ray", executor="ray", workers=2)
    local = run_sweep(spec, out=tmp_path / "local", executor="serial")  # run_point in this process
    assert (on_ray.done, on_ray.failed, local.done, local.failed) == (4, 0, 4, 0)
    for point in resolve_points(spec):
        index, values = metrics(on_ray.folder, point.key)
        local_index, local_values = metrics(local.folder, point.key)
        assert index == local_index and len(index) > 10
        assert values == pytest.approx(local_values, rel=1e-12, abs=0, nan_ok=True)
    again = run_sweep(spec, out=tmp_path / "ray", executor="ray")
    assert (again.done, again.skipped) == (0, 4)


def test_a_ray_worker_that_dies_fails_only_its_point(ray_instance, tmp_path):
    spec = SweepSpec(name="crash", law="crash-sweep-law", grid={"x": [1, 2, 3]})
    keys = [p.key for p in resolve_points(spec)]
    summary = run_sweep(spec, out=tmp_path, executor="ray", workers=2)
    assert [o.status for o in summary.outcomes] == ["done", "failed", "done"]
    assert summary.failures[keys[1]].startswith("the Ray task running this point failed")
    assert (summary.folder / f"{keys[1]}.failed.json").exists() and not list(summary.folder.glob("*.lock"))
