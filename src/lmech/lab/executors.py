"""Where sweep points run: :func:`run_point` (claim, run, save, release) and the executors that call it.

A point's state lives in the sweep folder, so any number of sweeps, workers and hosts sharing it stay
consistent:

* ``<key>/`` — the finished point, a run folder moved into place in one rename (``save_run``'s files,
  with ``sweep`` and ``point`` columns in ``metrics.parquet`` and a ``sweep`` block in ``config.json``);
* ``<key>.lock`` — the claim of the worker running it (host, pid, start time). It appears with one
  ``link()``, so two workers can never both create it, and its owner holds a ``flock`` on it until it
  is done, so a claim whose owner died (killed, crashed) is taken over by the next worker on the same
  host. A claim from another host is respected unless it is older than ``stale_after`` seconds or
  ``force`` is set (the lock cannot prove a remote owner alive on every shared filesystem);
* ``<key>.failed.json`` — the traceback of the last failed attempt; the point runs again on the next
  sweep and the file goes once it succeeds.

Executors: ``serial`` (this process, for debugging), ``local`` (worker processes forked from a
``forkserver``; one that dies fails only its own point and is replaced) and ``ray`` (a task per point).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import current_process, get_context
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, StoreError
from ..train.records import Records
from .store import TMP_PREFIX, save_run

HOST = socket.gethostname()
WORKER_NAME = "lmech-sweep-worker"
STOP_SECONDS = 10.0  # how long stopped workers get to clean up before they are killed
OnOutcome = Callable[["PointOutcome"], None]


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (pickled to it; the law class goes by reference)."""

    folder: str
    sweep: str
    law: type
    preset: str | None
    key: str
    values: dict[str, Any]
    config: Any
    stale_after: float | None = None
    force: bool = False


@dataclass(frozen=True)
class PointOutcome:
    """What became of one point: ``status`` is ``done`` (ran now), ``skipped`` (finished before),
    ``failed`` (raised; ``error`` is the exception's last line) or ``busy`` (claimed by another live
    worker; ``error`` says which)."""

    key: str
    status: str
    seconds: float = 0.0
    error: str | None = None


def is_finished(folder: Path, key: str) -> bool:
    return (folder / key / "config.json").is_file()


class Claim:
    """A held ``<key>.lock``: an open, ``flock``-ed descriptor. :meth:`release` deletes the lock.

    A claim dropped unreleased (a stop that arrives while it is being made, or before ``with``
    takes it) releases itself when it is collected, in the process that made it; a forked copy only
    closes its descriptor (the flock, shared with the owner, stays held).
    """

    def __init__(self, path: Path, fd: int):
        self.path, self.fd, self.pid = path, fd, os.getpid()  # fd is None once released

    def release(self) -> None:
        with _critical():
            if self.fd is not None:
                self.path.unlink(missing_ok=True)
                os.close(self.fd)
                self.fd = None

    def __del__(self) -> None:
        if self.fd is None:
            return
        if os.getpid() == self.pid:
            with contextlib.suppress(OSError):  # we hold the flock, so the file at path is still ours
                self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_point(folder: Path, key: str, *, stale_after: float | None = None, force: bool = False) -> Claim | dict:
    """Claim ``key`` for this process; return the :class:`Claim`, or the holder's info if it is taken.

    Raises:
        StoreError: the folder's filesystem cannot make hard links (which claims need).
    """
    path = folder / f"{key}.lock"
    for _ in range(10):  # each pass loses at most one race with a releasing or breaking worker
        with _critical():
            mine = json.dumps({"host": HOST, "pid": os.getpid(), "started": _now(), "time": time.time()}).encode()
            tmp = folder / f"{TMP_PREFIX}{key}-{os.getpid()}-{secrets.token_hex(4)}.lock"
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, mine)
                os.fsync(fd)
                os.link(tmp, path)  # atomic, and fails if the lock exists, also over NFS
                return Claim(path, fd)
            except FileNotFoundError:  # our temporary file was tidied away by a finished point's worker
                os.close(fd)
                continue
            except FileExistsError:
                os.close(fd)
            except OSError as exc:
                os.close(fd)
                raise StoreError(f"cannot claim a point in {str(folder)!r} ({exc.strerror or exc}): claims need hard "
                                 "links and file locks; put --out on a local disk or NFS") from None
            finally:
                tmp.unlink(missing_ok=True)
            taken = _take_over(path, mine, stale_after, force)
        if taken is not None:
            return taken
    return _holder(path)


def _take_over(path: Path, mine: bytes, stale_after: float | None, force: bool) -> Claim | dict | None:
    """Take the lock at ``path`` over if its owner is gone; its holder's info if not; ``None`` if it vanished."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    holder = _read_info(fd)
    age = time.time() - float(holder.get("time", os.fstat(fd).st_mtime))
    if holder.get("host") != HOST and not force and (stale_after is None or age <= stale_after):
        os.close(fd)
        return holder  # another host's claim: its flock may not reach us, so trust it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return holder  # its owner is alive
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    here = os.fstat(fd)
    if current is None or (current.st_ino, current.st_dev) != (here.st_ino, here.st_dev):
        os.close(fd)  # released (or taken over) between our open and our flock
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, mine, 0)
    return Claim(path, fd)


def _read_info(fd: int) -> dict:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        info = {}
    return info if isinstance(info, dict) else {}


def _holder(path: Path) -> dict:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return {}
    try:
        return _read_info(fd)
    finally:
        os.close(fd)


def run_point(task: PointTask) -> PointOutcome:
    """Claim the point, run its law, save its run folder, release; never runs a finished point.

    A law that raises fails only this point: the traceback goes to ``<key>.failed.json``.
    ``KeyboardInterrupt`` (or a stop) leaves no trace; a SIGKILL leaves a stale lock, which the next claim takes over.
    """
    folder = Path(task.folder)
    if is_finished(folder, task.key):
        return PointOutcome(task.key, "skipped")
    claim = claim_point(folder, task.key, stale_after=task.stale_after, force=task.force)
    if not isinstance(claim, Claim):
        return _busy(task.key, claim)
    with claim:
        if is_finished(folder, task.key):  # finished while we were claiming
            return PointOutcome(task.key, "skipped")
        tidy(folder, task.key)
        start = time.perf_counter()
        try:
            law = task.law()
            result = law.run(task.config)
            seconds = time.perf_counter() - start
            _save_point(folder, task, law, result, seconds)
        except Exception:
            error = _write_failure(folder, task, traceback.format_exc())
            return PointOutcome(task.key, "failed", time.perf_counter() - start, error)
        (folder / f"{task.key}.failed.json").unlink(missing_ok=True)
        return PointOutcome(task.key, "done", seconds)


def tidy(folder: Path, key: str) -> None:
    """Remove what a killed worker may have left of ``key``: a staging folder, temporary files.
    Only while holding its claim, or once it is finished (a claimer whose file goes just retries)."""
    for stale in folder.glob(f"{TMP_PREFIX}{key}-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def lost_point(task: PointTask, reason: str) -> PointOutcome:
    """The outcome of a point whose worker died: recorded as failed (unless it had finished)."""
    folder = Path(task.folder)
    if is_finished(folder, task.key):
        return PointOutcome(task.key, "done")
    try:
        claim = claim_point(folder, task.key, stale_after=task.stale_after, force=task.force)
        if isinstance(claim, Claim):
            with claim:
                tidy(folder, task.key)
                _write_failure(folder, task, reason)
    except OSError:  # the record is a courtesy; the point runs again next time either way
        pass
    return PointOutcome(task.key, "failed", error=reason)


def _busy(key: str, holder: dict) -> PointOutcome:
    who = f"host {holder.get('host', '?')} pid {holder.get('pid', '?')} since {holder.get('started', '?')}"
    return PointOutcome(key, "busy", error=f"claimed by {who}; if that worker is gone, rerun with --force")


def _save_point(folder: Path, task: PointTask, law: Any, result: Any, seconds: float) -> Path:
    """``save_run`` (with the sweep's columns and metadata) into a staging folder, rename to ``<key>/``."""
    scalars = {k: v for k, v in task.values.items() if isinstance(v, (bool, int, float, str))}
    extra = {"sweep": task.sweep, "point": task.key, **scalars}
    result = dataclasses.replace(result, metrics=Records({**extra, **row} for row in result.metrics.rows))
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{task.key}-", dir=folder))
    try:
        sweep = {"name": task.sweep, "point": task.key, "values": task.values, "seconds": seconds, "host": HOST}
        run_dir = save_run(staging, law, task.config, result, preset=task.preset, extra={"sweep": sweep})
        with _critical():  # a stop now waits until the point is in place and tidied
            os.rename(run_dir, folder / task.key)
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / task.key


@contextlib.contextmanager
def _critical() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block is done, then deliver them to their own handlers
    (so a Ctrl-C or a stop never leaves a claim or a finished point half made)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    handlers = {s: signal.getsignal(s) for s in signals}
    if None in handlers.values():  # a handler set outside Python cannot be put back
        yield
        return
    held: list[int] = []
    for s in signals:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def _write_failure(folder: Path, task: PointTask, text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    error = lines[-1].strip() if lines else "unknown error"
    info = {"sweep": task.sweep, "point": task.key, "values": task.values, "error": error, "traceback": text,
            "host": HOST, "pid": os.getpid(), "time": _now()}
    tmp = folder / f"{TMP_PREFIX}{task.key}-{secrets.token_hex(4)}.failed.json"
    with _critical():
        tmp.write_text(json.dumps(info, indent=2, default=str))
        os.replace(tmp, folder / f"{task.key}.failed.json")
    return error


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _guarded(task: PointTask) -> PointOutcome:
    """:func:`run_point`, with its own errors (an unwritable folder) as a failed outcome."""
    try:
        return run_point(task)
    except Exception as exc:
        return PointOutcome(task.key, "failed", error=f"{type(exc).__name__}: {exc}")


def run_serial(tasks: Sequence[PointTask], *, workers: int, threads: int, on_outcome: OnOutcome) -> None:
    """Run the points one after another in this process (``workers`` is ignored)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        for task in tasks:
            on_outcome(_guarded(task))
    finally:
        torch.set_num_threads(before)


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("stopped by the sweep")


def _worker_main(conn: Any, threads: int) -> None:
    """A local worker: run the points it is sent until it gets ``None``. The parent decides when it
    stops (SIGINT is ignored; SIGTERM unwinds the current point cleanly)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    if threads:
        torch.set_num_threads(threads)
    try:
        while (task := conn.recv()) is not None:
            conn.send(_guarded(task))
    except (KeyboardInterrupt, EOFError, OSError):  # stopped, or the parent is gone
        pass


@dataclass
class _Worker:
    process: Any
    conn: Any
    task: PointTask | None = None


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            return f"killed by signal {-code}"
        return f"killed by {name}" + (", as the out-of-memory killer does" if name == "SIGKILL" else "")
    return f"exit code {code}"


def run_local(tasks: Sequence[PointTask], *, workers: int, threads: int, on_outcome: OnOutcome) -> None:
    """Run the points on ``workers`` worker processes. A worker that dies fails its point (recorded
    in ``<key>.failed.json``) and is replaced; on any interruption every worker is stopped.

    Workers fork from a ``forkserver`` that has imported lmech once, so a replacement starts in
    milliseconds. As with any ``multiprocessing`` code, each worker imports the calling script (with
    the caller's ``sys.path``), so a script must call the sweep under ``if __name__ == "__main__":``.
    """
    if current_process().name == WORKER_NAME:
        raise ConfigError('a sweep worker, importing the script that started the sweep, was asked to start one: '
                          'call run_sweep under `if __name__ == "__main__":`')
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    pending, live = deque(tasks), []

    def start() -> _Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(child, threads), name=WORKER_NAME)
        process.start()
        child.close()
        return _Worker(process, parent)

    try:
        while pending or any(w.task for w in live):
            while len(live) < min(workers, len(pending) + sum(w.task is not None for w in live)):
                live.append(start())
            for w in live:
                if w.task is None and pending:
                    try:
                        w.conn.send(pending[0])
                        w.task = pending.popleft()
                    except OSError:  # it died idle; noticed below
                        pass
            ready = set(wait([w.conn for w in live if w.task] + [w.process.sentinel for w in live]))
            for w in list(live):
                if w.task is not None and w.conn in ready:
                    try:
                        outcome = w.conn.recv()
                        w.task = None
                        on_outcome(outcome)
                        continue
                    except (EOFError, OSError):
                        pass
                if w.process.sentinel in ready or w.conn in ready:
                    w.process.join()
                    if w.task is not None:
                        on_outcome(lost_point(w.task, f"the worker running this point died "
                                                      f"({_describe_exit(w.process.exitcode)})"))
                    w.conn.close()
                    live.remove(w)
    except BaseException:
        for w in live:
            w.process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for w in live:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
        raise
    for w in live:
        try:
            w.conn.send(None)
        except OSError:
            pass
        w.process.join()


def _ray_point(task: PointTask, threads: int) -> PointOutcome:
    if threads:
        torch.set_num_threads(threads)
    return _guarded(task)


def run_ray(tasks: Sequence[PointTask], *, workers: int | None, threads: int, on_outcome: OnOutcome) -> None:
    """Run each point as a Ray task: on the cluster at ``RAY_ADDRESS``, on the running Ray instance
    if this process has one, or else on a local instance of ``workers`` CPUs (all, if ``None``; shut
    down at the end). At most ``workers`` tasks (default: the cluster's CPUs) are in flight.

    Ray does not retry a point whose worker died: as with the local executor, the point fails and
    runs again on the next sweep. On a cluster, the sweep folder must be on storage every node shares.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'lmech[ray]'") from None
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        try:
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=workers, include_dashboard=False)
        except Exception as exc:
            where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray instance"
            raise ConfigError(f"cannot start or reach {where}: {exc}") from None
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_point)
    pending, running = deque(tasks), {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                task = pending.popleft()
                running[remote.remote(task, threads)] = task
            (ref,), _ = ray.wait(list(running), num_returns=1)
            task = running.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as exc:
                lines = str(exc).strip().splitlines() or [type(exc).__name__]
                outcome = lost_point(task, f"the Ray task running this point failed: {lines[0]}")
            on_outcome(outcome)
    except BaseException:
        for ref in running:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()


EXECUTORS: dict[str, Callable[..., None]] = {"local": run_local, "ray": run_ray, "serial": run_serial}
