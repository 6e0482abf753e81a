"""Sweeps: specs and their points, resumable runs, claims that never run a point twice, interruptions.

Most tests sweep a fake law (defined below, registered from a module written to a temporary folder so
that worker processes can import it) whose points take milliseconds, or a chosen number of seconds.
"""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lmech.config import to_dict
from lmech.errors import LmechError
from lmech.lab import (
    SweepSpec,
    finished_runs,
    load_run,
    load_spec,
    query,
    resolve_points,
    run_sweep,
)
from lmech.lab.executors import HOST, claim_point
from lmech.lab.store import config_hash
from lmech.lab.sweep_spec import dump_spec

FAKE_LAW = '''
"""A law for the sweep tests: y = x·width + seed, optionally slow, logged and failing on demand."""
import json
import os
import time
from dataclasses import dataclass

import pyarrow as pa

from lmech.config import require, to_dict
from lmech.laws import Check, Law, LawResult, Reference, register
from lmech.train import Records


def listed(path):
    """The words in the file at ``path`` (none if there is no such file)."""
    if not path or not os.path.exists(path):
        return []
    with open(path) as file:
        return file.read().split()


@dataclass(frozen=True, kw_only=True)
class FakeConfig:
    x: float = 1.0
    width: int = 4
    sizes: tuple[int, ...] = (1, 2)
    act: str = "relu"
    scale: float | None = None
    sleep: float = 0.0  # seconds each point takes
    log: str = ""  # a file every run appends {"config": ..., "pid": ...} to, one JSON line each
    fail_if: str = ""  # a file of x values, one per line, whose points raise
    interrupt_at: float = -1.0  # the point with this x raises KeyboardInterrupt, as Ctrl-C would
    hang_if: str = ""  # a file of x values whose points hang for a minute (for a test to kill the worker)
    seed: int = 0

    def __post_init__(self):
        require(self.x >= 0, f"x must be >= 0, got {self.x}")
        require(self.width >= 1, f"width must be >= 1, got {self.width}")


@register
class FakeLaw(Law):
    name = "fake-sweep-law"
    title = "A fake law for the sweep tests"
    pillar = "simple-laws"
    references = (Reference("The lmech test suite"),)
    statement = "y = x * width + seed."
    Config = FakeConfig
    presets = {"quick": {"width": 2}, "full": {"width": 8}}

    def run(self, config, progress=None):
        if config.log:
            with open(config.log, "a") as log:
                log.write(json.dumps({"config": to_dict(config), "pid": os.getpid()}) + "\\n")
        time.sleep(60 if str(config.x) in listed(config.hang_if) else config.sleep)
        if str(config.x) in listed(config.fail_if):
            raise RuntimeError(f"planted failure at x={config.x}")
        if config.x == config.interrupt_at:
            raise KeyboardInterrupt
        y = config.x * config.width + config.seed
        records = Records()
        for step in range(3):
            records.add(step, "y", y * (step + 1), size=len(config.sizes))
        curves = pa.table({"curve": ["y"], "x": [0.0], "y": [float(y)]})
        return LawResult(records, curves, [Check.at_most("y is small", y, 100.0)], {}, {"y": y})
'''

SCRIPT = '''
import json, signal, sys
import lmech_sweep_fake_law  # noqa: F401 - registers the fake law
from lmech.lab import SweepSpec, run_sweep

if __name__ == "__main__":
    # Ctrl-C as a terminal delivers it: a test suite started in the background by a shell without job control
    # (nohup make test &) inherits SIGINT ignored, and so would this script
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = SweepSpec.from_dict(json.loads(sys.argv[1]))
    try:
        s = run_sweep(spec, out=sys.argv[2], executor=sys.argv[3], workers=int(sys.argv[4]))
    except KeyboardInterrupt:
        sys.exit(130)
    print(json.dumps({"done": s.done, "skipped": s.skipped, "failed": s.failed, "busy": s.busy,
                      "failures": s.failures}))
'''

LAW = "fake-sweep-law"


@pytest.fixture(scope="module")
def fake_law(tmp_path_factory):
    """The fake law's module folder (on sys.path, which worker processes inherit)."""
    folder = tmp_path_factory.mktemp("fake-law")
    (folder / "lmech_sweep_fake_law.py").write_text(FAKE_LAW)
    (folder / "sweep_script.py").write_text(SCRIPT)
    from lmech.laws import registry

    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        importlib.import_module("lmech_sweep_fake_law")
        yield folder
        registry._LAWS.pop(LAW, None)
        sys.modules.pop("lmech_sweep_fake_law", None)


@pytest.fixture
def log(tmp_path):
    return tmp_path / "log.jsonl"


def runs_of(log):
    """How many times each point ran, by key."""
    if not log.exists():
        return Counter()
    return Counter(config_hash(LAW, json.loads(line)["config"]) for line in log.read_text().splitlines())


class CountingProgress:
    def __init__(self):
        self.total, self.count = None, 0

    def task(self, description, total):
        self.total = total

    def advance(self, units=1):
        self.count += units


def spec(**fields):
    return SweepSpec.from_dict({"name": "s", "law": LAW, **fields})


# ---------------------------------------------------------------------------------------- specs


def test_points_are_the_grid_times_the_draws_times_the_seeds(fake_law):
    points = resolve_points(spec(
        base={"width": 3}, grid={"x": [1, 2], "act": ["relu", "tanh"]},
        random={"num_samples": 3, "seed": 7, "fields": {"scale": {"uniform": [0.5, 1.5]}}}, seeds=[0, 1],
    ))
    assert len(points) == 2 * 2 * 3 * 2 == len({p.key for p in points})
    assert list(points[0].values) == ["x", "act", "scale", "seed"]
    assert Counter(p.values["x"] for p in points) == {1.0: 12, 2.0: 12}
    assert all(p.config.width == 3 and 0.5 <= p.values["scale"] <= 1.5 for p in points)
    assert [p.values["seed"] for p in points[:4]] == [0, 1, 0, 1]
    assert points[0].label == f"x=1.0, act=relu, scale={points[0].values['scale']}, seed=0"


def test_random_draws_are_reproducible_per_field_and_extend(fake_law):
    fields = {"x": {"loguniform": [0.01, 10]}, "width": {"int": [1, 3]}, "act": {"choice": ["relu", "tanh"]}}
    first = resolve_points(spec(random={"num_samples": 40, "seed": 3, "fields": fields}))
    again = resolve_points(spec(random={"num_samples": 60, "seed": 3, "fields": fields}))
    assert [p.key for p in again[:40]] == [p.key for p in first]  # more draws keep the earlier ones
    assert {p.values["width"] for p in again} == {1, 2, 3}  # both ends included
    assert {p.values["act"] for p in again} == {"relu", "tanh"}
    assert all(0.01 <= p.values["x"] <= 10 for p in again)
    alone = resolve_points(spec(random={"num_samples": 40, "seed": 3, "fields": {"x": fields["x"]}}))
    assert [p.values["x"] for p in alone] == [p.values["x"] for p in first]  # independent of other fields
    other = resolve_points(spec(random={"num_samples": 40, "seed": 4, "fields": fields}))
    assert [p.values["x"] for p in other] != [p.values["x"] for p in first]


def test_a_key_is_the_hash_of_the_resolved_config_however_it_is_written(fake_law):
    keys = [resolve_points(spec(grid={"x": [value]}))[0].key for value in (2, 2.0, "2", "2e0")]
    assert len(set(keys)) == 1
    (point,) = resolve_points(spec(preset="quick", base={"sizes": [3]}, grid={"x": [2]}))
    assert point.config.width == 2 and point.config.sizes == (3,)
    assert point.key == config_hash(LAW, to_dict(point.config))
    (same,) = resolve_points(spec(base={"width": 2, "sizes": 3}, grid={"x": [2.0]}))  # no preset, same config
    assert same.key == point.key
    assert len(resolve_points(spec(grid={"x": [1, 1.0, 2]}))) == 2  # the same point is kept once


def test_numpy_values_work_like_python_ones(fake_law, tmp_path):
    import numpy as np

    s = SweepSpec(name="s", law=LAW, grid={"x": np.linspace(1, 2, 3), "width": [np.int64(2)]}, seeds=np.arange(2))
    plain = SweepSpec(name="s", law=LAW, grid={"x": [1.0, 1.5, 2.0], "width": [2]}, seeds=(0, 1))
    assert s == plain and load_spec_text(tmp_path, dump_spec(s)) == plain


def load_spec_text(folder, text):
    (folder / "s.yaml").write_text(text)
    return load_spec(folder / "s.yaml")


def test_yaml_and_python_specs_agree(fake_law, tmp_path):
    path = tmp_path / "my-sweep.yaml"
    path.write_text(f"""
law: {LAW}
preset: quick
base: {{sizes: [1, 2, 3]}}
grid: {{x: [0.5, 1.0e-3]}}
random:
  num_samples: 2
  fields: {{scale: {{loguniform: [1e-3, 1e-1]}}}}  # YAML 1.1 reads 1e-3 as text: converted
seeds: [0, 5]
""")
    loaded = load_spec(path)
    built = SweepSpec(name="my-sweep", law=LAW, preset="quick", base={"sizes": [1, 2, 3]}, grid={"x": [0.5, 1e-3]},
                      random={"num_samples": 2, "fields": {"scale": {"loguniform": [1e-3, 1e-1]}}}, seeds=(0, 5))
    assert loaded == built
    assert [p.key for p in resolve_points(loaded)] == [p.key for p in resolve_points(built)]
    assert all(p.config.sizes == (1, 2, 3) for p in resolve_points(loaded))
    path.write_text(dump_spec(loaded))
    assert load_spec(path) == loaded


def test_the_example_spec_resolves():
    example = Path(__file__).resolve().parents[2] / "examples" / "sweep_deep_linear.yaml"
    points = resolve_points(load_spec(example))
    assert len(points) == 8 and {p.config.depths for p in points} == {(2,)}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"grid": {"widht": [1]}}, "no config field 'widht'; did you mean 'width'?; fields: x, width, sizes"),
        ({"seed": 3}, "no key 'seed'; did you mean 'seeds'"),
        ({"base": {"x": 1}, "grid": {"x": [2]}}, "'x' is set in both base and grid"),
        ({"grid": {"seed": [1]}, "seeds": [0]}, "'seed' is set in both grid and seeds"),
        ({"grid": {"x": [1, -1]}}, "sweep 's', point x=-1.0: x must be >= 0, got -1.0"),
        ({"base": {"act": 3}}, "base.act expects str, got 3"),
        ({"grid": {"width": [1.5]}}, "grid.width expects int, got 1.5"),
        ({"grid": {"x": 1}}, "grid.x must be a non-empty list of values"),
        ({"random": {"num_samples": 2, "fields": {"x": {"normal": [0, 1]}}}}, "did you mean 'uniform'"),
        ({"random": {"num_samples": 2, "fields": {"x": {"loguniform": [0, 1]}}}}, "loguniform needs low > 0"),
        ({"random": {"num_samples": 0, "fields": {"x": {"uniform": [0, 1]}}}}, "num_samples must be a whole number >= 1"),
        ({"preset": "fast"}, "preset must be one of ['full', 'quick']"),
        ({"law": "fake-sweep-lwa"}, "did you mean 'fake-sweep-law'"),
        ({"name": "a/b"}, "name must be a folder name"),
        ({"seeds": [1, 1]}, "seeds must be distinct"),
    ],
    ids=["unknown-field", "unknown-key", "base-and-grid", "seed-twice", "bad-value", "wrong-type", "not-whole",
         "grid-scalar", "unknown-distribution", "loguniform-zero", "no-samples", "bad-preset", "unknown-law",
         "bad-name", "repeated-seed"],
)
def test_bad_specs_say_what_is_wrong(fake_law, fields, message):
    with pytest.raises(LmechError) as info:
        resolve_points(spec(**fields))
    assert message in str(info.value)


def test_a_sweep_may_not_take_a_laws_name(fake_law, tmp_path):
    with pytest.raises(LmechError, match="is a law's name"):
        run_sweep(SweepSpec(name=LAW, law=LAW), out=tmp_path, executor="serial")
    with pytest.raises(LmechError, match="not valid YAML"):
        (tmp_path / "bad.yaml").write_text("grid: [")
        run_sweep(tmp_path / "bad.yaml", out=tmp_path)


# ---------------------------------------------------------------------------------------- running


def test_a_sweep_runs_every_point_once_and_is_queryable(fake_law, tmp_path, log):
    s = spec(base={"log": str(log)}, grid={"x": [1, 2]}, seeds=[0, 1])
    progress = CountingProgress()
    summary = run_sweep(s, out=tmp_path, executor="serial", progress=progress)
    assert (summary.done, summary.skipped, summary.failed, summary.busy) == (4, 0, 0, 0) and summary.complete
    assert progress.total == progress.count == 4
    folder = tmp_path / "s"
    assert summary.folder == folder and load_spec(folder / "spec.yaml") == s
    keys = [p.key for p in resolve_points(s)]
    assert finished_runs(tmp_path) == sorted(folder / k for k in keys)
    assert not list(folder.glob("*.lock")) and not list(folder.glob(".tmp-*"))
    meta = load_run(folder / keys[3])
    assert meta["sweep"]["point"] == keys[3] and meta["sweep"]["values"] == {"x": 2.0, "seed": 1}
    _, rows = query("SELECT x, seed, max(value) FROM metrics WHERE sweep = 's' AND observable = 'y' "
                    "GROUP BY ALL ORDER BY ALL", tmp_path)
    assert rows == [(1.0, 0, 12.0), (1.0, 1, 15.0), (2.0, 0, 24.0), (2.0, 1, 27.0)]
    table = pq.read_table(summary.table).to_pylist()
    assert [r["point"] for r in table] == keys and {r["status"] for r in table} == {"finished"}
    assert table[0]["checks_passed"] == table[0]["checks_total"] == 1 and table[0]["seconds"] >= 0
    page = summary.report.read_text()
    assert f'href="{keys[0]}/report.html"' in page and "4 finished (4 pass every check)" in page

    again = run_sweep(s, out=tmp_path, executor="serial")
    assert (again.done, again.skipped) == (0, 4)
    assert runs_of(log) == {k: 1 for k in keys}


def test_a_failing_point_is_recorded_the_sweep_goes_on_and_a_rerun_retries_it(fake_law, tmp_path, log):
    fail_if = tmp_path / "fail-if"
    fail_if.write_text("2.0\n")
    s = spec(base={"log": str(log), "fail_if": str(fail_if)}, grid={"x": [1, 2, 3]})
    keys = [p.key for p in resolve_points(s)]
    summary = run_sweep(s, out=tmp_path, executor="serial")
    assert (summary.done, summary.failed) == (2, 1) and not summary.complete
    assert summary.failures == {keys[1]: "RuntimeError: planted failure at x=2.0"}
    record = json.loads((tmp_path / "s" / f"{keys[1]}.failed.json").read_text())
    assert "Traceback (most recent call last)" in record["traceback"] and record["values"] == {"x": 2.0}
    assert "planted failure at x=2.0" in summary.report.read_text()
    assert [r["status"] for r in pq.read_table(summary.table).to_pylist()] == ["finished", "failed", "finished"]

    fail_if.unlink()
    again = run_sweep(s, out=tmp_path, executor="serial")
    assert (again.done, again.skipped, again.failed) == (1, 2, 0)
    assert not (tmp_path / "s" / f"{keys[1]}.failed.json").exists()
    assert runs_of(log) == {keys[0]: 1, keys[1]: 2, keys[2]: 1}


def test_ctrl_c_in_this_process_keeps_finished_points_and_leaves_no_claim(fake_law, tmp_path):
    s = spec(base={"interrupt_at": 2.0}, grid={"x": [1, 2, 3]})
    keys = [p.key for p in resolve_points(s)]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, out=tmp_path, executor="serial")
    folder = tmp_path / "s"
    assert finished_runs(tmp_path) == [folder / keys[0]]
    assert not list(folder.glob("*.lock")) and not list(folder.glob("*.failed.json"))  # an interruption is no failure
    rows = pq.read_table(folder / "points.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["finished", "pending", "pending"]


def test_claims_exclude_each_other_and_a_dead_owners_claim_is_taken_over(tmp_path):
    first = claim_point(tmp_path, "k")
    holder = claim_point(tmp_path, "k")  # held: the holder's info comes back instead of a claim
    assert holder == {**holder, "host": HOST, "pid": os.getpid()}
    first.release()
    assert not (tmp_path / "k.lock").exists()
    (tmp_path / "k.lock").write_text(json.dumps({"host": HOST, "pid": 4242}))  # left by a dead owner: no flock
    second = claim_point(tmp_path, "k")
    assert not isinstance(second, dict)
    assert json.loads((tmp_path / "k.lock").read_text())["pid"] == os.getpid()
    second.release()


def test_a_stop_while_claiming_leaves_no_lock(tmp_path, monkeypatch):
    """A SIGTERM during the claim's critical section is held back and delivered as it ends: the claim
    being returned is dropped, and must take its lock with it (a CI run once found one left behind)."""
    def stop(signum, frame):
        raise KeyboardInterrupt("stopped")

    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (signal.raise_signal(signal.SIGTERM), real_fsync(fd)))
    before = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            claim_point(tmp_path, "k")
    finally:
        signal.signal(signal.SIGTERM, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_dropped_claim_releases_itself_but_not_in_a_forked_copy(tmp_path):
    claim = claim_point(tmp_path, "k")
    pid = os.fork()
    if pid == 0:  # the copy drops its claim and exits: the owner's lock must stay, still flock-ed
        del claim
        os._exit(0 if (tmp_path / "k.lock").exists() else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert (tmp_path / "k.lock").exists() and isinstance(claim_point(tmp_path, "k"), dict)  # still held
    del claim  # dropped unreleased in its own process (as when a stop arrives before ``with`` takes it)
    assert not (tmp_path / "k.lock").exists()


def test_claims_of_live_workers_and_other_hosts_are_respected(fake_law, tmp_path, log):
    s = spec(base={"log": str(log)}, grid={"x": [1, 2, 3]})
    keys = [p.key for p in resolve_points(s)]
    folder = tmp_path / "s"
    folder.mkdir()
    live = claim_point(folder, keys[0])  # a live worker on this host
    foreign = {"host": "elsewhere", "pid": 1, "started": "2020-01-01T00:00:00+00:00", "time": time.time() - 3600}
    (folder / f"{keys[1]}.lock").write_text(json.dumps(foreign))
    (folder / f"{keys[2]}.lock").write_text(json.dumps({"host": HOST, "pid": 2**22 + 1, "time": time.time()}))
    summary = run_sweep(s, out=tmp_path, executor="serial")
    assert [o.status for o in summary.outcomes] == ["busy", "busy", "done"]  # a dead owner's claim is taken over
    assert f"pid {os.getpid()}" in summary.outcomes[0].error and "host elsewhere" in summary.outcomes[1].error
    assert [o.status for o in run_sweep(s, out=tmp_path, executor="serial", stale_after=7200).outcomes] == \
        ["busy", "busy", "skipped"]
    assert [o.status for o in run_sweep(s, out=tmp_path, executor="serial", stale_after=60).outcomes] == \
        ["busy", "done", "skipped"]
    assert [o.status for o in run_sweep(s, out=tmp_path, executor="serial", force=True).outcomes] == \
        ["busy", "skipped", "skipped"]  # force cannot break a claim whose owner is seen alive
    live.release()
    assert [o.status for o in run_sweep(s, out=tmp_path, executor="serial").outcomes] == ["done", "skipped", "skipped"]
    assert runs_of(log) == {k: 1 for k in keys}


# ---------------------------------------------------------------------------------------- processes


@pytest.fixture
def start_sweep(fake_law):
    """Start ``run_sweep(spec, out, executor, workers)`` in another process; stopped at teardown."""
    procs = []

    def start(s, out, executor="serial", workers=1):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_law), os.environ.get("PYTHONPATH", "")])}
        args = [json.dumps(s.to_dict()), str(out), executor, str(workers)]
        procs.append(subprocess.Popen([sys.executable, str(fake_law / "sweep_script.py"), *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_sweeps_at_once_run_each_point_once(fake_law, start_sweep, tmp_path, log):
    s = spec(base={"log": str(log), "sleep": 0.2}, grid={"x": [1, 2, 3, 4, 5, 6, 7, 8]})
    keys = [p.key for p in resolve_points(s)]
    other = start_sweep(s, tmp_path)  # another process, running the same spec
    wait_for(lambda: list((tmp_path / "s").glob("*.lock")), "the other sweep's first claim")
    here = run_sweep(s, out=tmp_path, executor="serial")
    stdout, stderr = other.communicate(timeout=120)
    assert other.returncode == 0, stderr
    there = json.loads(stdout)
    assert runs_of(log) == {k: 1 for k in keys}
    assert here.done + there["done"] == 8 and here.done >= 1 and here.failed == there["failed"] == 0
    assert finished_runs(tmp_path) == sorted(tmp_path / "s" / k for k in keys)


def test_a_killed_worker_and_sigint_lose_no_finished_point(fake_law, start_sweep, tmp_path, log):
    """SIGKILL one worker of a running sweep (its point fails, the sweep goes on), then SIGINT the sweep
    (it stops its workers and exits); a rerun completes the rest without re-running a finished point."""
    hang_if = tmp_path / "hang-if"
    hang_if.write_text("4.0\n")
    s = spec(base={"log": str(log), "sleep": 0.2, "hang_if": str(hang_if)}, grid={"x": list(range(1, 11))})
    keys = [p.key for p in resolve_points(s)]
    folder = tmp_path / "s"
    finished = lambda: [k for k in keys if (folder / k).exists()]  # noqa: E731
    proc = start_sweep(s, tmp_path, executor="local", workers=2)

    def hanging_worker():
        try:
            lines = [json.loads(line) for line in log.read_text().splitlines()] if finished() else []
        except (OSError, ValueError):  # a line half written: look again
            return []
        return [line["pid"] for line in lines if line["config"]["x"] == 4]

    wait_for(hanging_worker, "the point x=4 to start after a finished one")
    os.kill(hanging_worker()[0], signal.SIGKILL)
    victim = keys[3]
    record = folder / f"{victim}.failed.json"
    wait_for(record.exists, "the killed worker's point to be recorded")
    assert json.loads(record.read_text())["error"].startswith("the worker running this point died (killed by SIGKILL")
    after_kill = len(finished())
    wait_for(lambda: len(finished()) > after_kill, "a point to finish after the kill")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    done = finished()
    assert victim not in done and 2 <= len(done) < 9
    for key in done:
        assert load_run(folder / key)["sweep"]["point"] == key
    assert finished_runs(tmp_path) == sorted(folder / k for k in done)  # nothing unfinished looks finished
    assert not list(folder.glob("*.lock")) and not list(folder.glob(".tmp-*"))  # the workers cleaned up
    assert "not run" in (folder / "report.html").read_text()

    hang_if.unlink()
    summary = run_sweep(s, out=tmp_path, executor="serial")
    assert (summary.done, summary.skipped, summary.failed) == (10 - len(done), len(done), 0) and summary.complete
    assert not record.exists()
    assert all(runs_of(log)[k] == 1 for k in done)
