"""Cost of the sharpness at the edge of stability: Lanczos against power iteration, and one HVP
against one gradient.

The network and data are those of the edge-of-stability law (Cohen et al. 2021, arXiv:2103.00065):
``mlp(64, [200, 200], 10, tanh)`` (55,210 parameters) on 1,000 standardised digits, loss
``½‖f(x) − y‖²`` summed over outputs and averaged over examples, one-hot targets, trained by
full-batch GD at ``lr = 0.2`` (float32, as the law trains) to a late checkpoint. Eigenvalues are
then measured on a float64 copy, so that the reference (Lanczos at ``tol = 1e-10``) is exact to
far below the 1e-3 the methods are asked for.

(a) Lanczos: the smallest number of Hessian-vector products whose top Ritz value is within 1e-3
    (relative) of the reference, found from one long recorded run (the Ritz value after ``m``
    products is the top eigenvalue of ``VₘᵀHVₘ``) and confirmed by calling ``lanczos`` with exactly
    that budget, which is also what is timed. Also: Lanczos left to stop by itself at ``tol=1e-3``.
(b) Power iteration with PyHessian's rule (stop when the Rayleigh quotient changes by < 1e-3
    relative): its products, time and final error. That rule stops before its estimate is within
    1e-3 (here at errors of 1e-2 to 3e-2), so two like-for-like counts as well: the first step at
    which power iteration's Rayleigh quotient is within 1e-3, and the products Lanczos needs to
    reach the error at which PyHessian's rule stopped.
    All averaged over several seeds of the random start vector.
(c) One HVP (``HessianOperator.matvec``; one chunk, which reuses the cached first-order graph, and
    four chunks, which rebuild it per product) in units of one plain gradient (forward +
    ``loss.backward()``; for four chunks, also in units of the gradient accumulated over the same
    four chunks), medians over interleaved repeats after warm-up, in float32 and float64.

Run ``python benchmarks/bench_sharpness.py``; prints a table and writes
``benchmarks/results/bench_sharpness.json``. Timings on a shared machine are only as good as its
idle cores: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from lmech.data import load_digits
from lmech.measure import HessianOperator, lanczos, power_iteration
from lmech.models import mlp
from lmech.train import half_mse

RESULTS = Path(__file__).resolve().parent / "results" / "bench_sharpness.json"
TARGET_RTOL = 1e-3  # the accuracy both methods are asked for
REFERENCE_TOL = 1e-10
TINY_TOL = 1e-14  # a Lanczos tolerance it never meets, so it spends exactly its budget


class Recorder:
    """Wraps a matvec: counts products, records each ``vᵀHv / vᵀv`` (power iteration's running
    estimate) and, if ``keep``, every ``(v, Hv)`` pair for Lanczos's Ritz values after the fact."""

    def __init__(self, matvec: Callable[[Tensor], Tensor], keep: bool = False, stop_within: float | None = None,
                 settle: int = 10):
        self.matvec, self.keep = matvec, keep
        self.stop_within, self.settle = stop_within, settle  # (reference, steps to stay within the target)
        self.count = 0
        self.rayleigh: list[float] = []
        self.vectors: list[Tensor] = []
        self.products: list[Tensor] = []

    def __call__(self, v: Tensor) -> Tensor:
        hv = self.matvec(v)
        self.count += 1
        self.rayleigh.append(float(v @ hv / (v @ v)))
        if self.keep:
            self.vectors.append(v.detach().clone())
            self.products.append(hv.detach().clone())
        if self.stop_within is not None and len(self.rayleigh) >= self.settle:
            recent = np.array(self.rayleigh[-self.settle:])
            if np.all(np.abs(recent - self.stop_within) <= TARGET_RTOL * abs(self.stop_within)):
                raise Reached
        return hv

    def top_ritz_values(self) -> np.ndarray:
        """Top eigenvalue of ``VₘᵀHVₘ`` for m = 1, 2, … (Lanczos's Ritz value after m products)."""
        v, hv = torch.stack(self.vectors), torch.stack(self.products)
        projected = (v @ hv.T).double().cpu().numpy()
        projected = 0.5 * (projected + projected.T)
        return np.array([np.linalg.eigvalsh(projected[:m, :m])[-1] for m in range(1, len(v) + 1)])


class Reached(Exception):
    """Raised by :class:`Recorder` to end a run once its estimate has settled within the target."""


def first_within(estimates: np.ndarray, reference: float, rtol: float) -> int | None:
    """The smallest m (1-based) from which ``|estimate − reference| ≤ rtol·|reference|`` holds onwards."""
    ok = np.abs(estimates - reference) <= rtol * abs(reference)
    if not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return int(bad[-1]) + 2 if len(bad) else 1


def train_checkpoint(n_train: int, lr: float, steps: int) -> tuple[nn.Module, Tensor, Tensor, list[float]]:
    split, _ = load_digits(n_train, 0, seed=0)  # float32, standardised per pixel
    model = mlp(64, [200, 200], 10, activation="tanh", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = half_mse(model(split.inputs), split.onehot)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model, split.inputs, split.onehot, losses


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare_methods(op: HessianOperator, reference: float, seed: int, max_matvecs: int, power_matvecs: int) -> dict:
    dim, dtype = op.num_params, op.dtype
    row: dict = {"seed": seed}

    # (a) Lanczos: the smallest sufficient budget, from a recorded run (doubled until long enough;
    # the top Ritz value only grows with m, by Cauchy interlacing), then confirmed and timed.
    length = 32
    while True:
        length = min(length, max_matvecs)
        recorder = Recorder(op.matvec, keep=True)
        lanczos(recorder, dim, 1, num_matvecs=length, tol=TINY_TOL, seed=seed, dtype=dtype)
        ritz = recorder.top_ritz_values()
        budget = first_within(ritz, reference, TARGET_RTOL)
        del recorder
        if budget is not None:
            break
        if length == max_matvecs:
            raise RuntimeError(f"Lanczos did not reach {TARGET_RTOL} in {max_matvecs} products; raise --max-matvecs")
        length *= 2
    while True:  # the recorded Ritz values match lanczos's own to rounding; confirm at the boundary
        counter = Recorder(op.matvec)
        result, seconds = timed(lambda c=counter, b=budget: lanczos(c, dim, 1, num_matvecs=b, tol=TINY_TOL, seed=seed,
                                                                   dtype=dtype))
        error = abs(float(result.eigenvalues[0]) - reference) / reference
        if error <= TARGET_RTOL or budget >= max_matvecs:
            break
        budget += 1
    row["lanczos"] = {"matvecs": counter.count, "seconds": seconds, "rel_error": error}

    counter = Recorder(op.matvec)
    result, seconds = timed(lambda: lanczos(counter, dim, 1, num_matvecs=max_matvecs, tol=TARGET_RTOL, seed=seed, dtype=dtype))
    row["lanczos_tol"] = {"matvecs": counter.count, "seconds": seconds, "converged": result.converged,
                          "rel_error": abs(float(result.eigenvalues[0]) - reference) / reference}

    # (b) Power iteration with PyHessian's stopping rule; its Rayleigh quotients give the oracle count.
    recorder = Recorder(op.matvec)
    result, seconds = timed(lambda: power_iteration(recorder, dim, 1, num_matvecs=power_matvecs, tol=TARGET_RTOL,
                                                    seed=seed, dtype=dtype))
    row["power"] = {"matvecs": recorder.count, "seconds": seconds, "converged": result.converged,
                    "rel_error": abs(float(result.eigenvalues[0]) - reference) / reference}
    # Like for like: the first step at which power iteration's estimate is (and stays) within 1e-3.
    recorder = Recorder(op.matvec, stop_within=reference)
    try:
        power_iteration(recorder, dim, 1, num_matvecs=power_matvecs, tol=TINY_TOL, seed=seed, dtype=dtype)
    except Reached:
        pass
    row["power"]["first_within_target"] = first_within(np.array(recorder.rayleigh), reference, TARGET_RTOL)
    # Like for like the other way: the products Lanczos needs for the accuracy PyHessian's rule delivered.
    row["lanczos"]["matvecs_to_power_error"] = first_within(ritz, reference, max(row["power"]["rel_error"], 1e-15))
    return row


def median_seconds(fns: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, float]:
    """Median wall time of each function, interleaved so that drifts in machine load hit all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn)[1])
    return {name: statistics.median(ts) for name, ts in times.items()}


def hvp_cost(model: nn.Module, inputs: Tensor, targets: Tensor, dtype: torch.dtype, warmup: int, repeats: int) -> dict:
    model = copy.deepcopy(model).to(dtype)
    x, y = inputs.to(dtype), targets.to(dtype)
    one = HessianOperator(model, half_mse, (x, y))
    four = HessianOperator(model, half_mse, list(zip(x.chunk(4), y.chunk(4))))
    v = torch.randn(one.num_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)

    def gradient() -> None:
        model.zero_grad(set_to_none=True)
        half_mse(model(x), y).backward()

    def gradient_4_chunks() -> None:  # accumulated chunk by chunk, as the 4-chunk HVP reads the data
        model.zero_grad(set_to_none=True)
        for xc, yc in zip(x.chunk(4), y.chunk(4)):
            (half_mse(model(xc), yc) * len(xc) / len(x)).backward()

    medians = median_seconds({"gradient": gradient, "gradient_4_chunks": gradient_4_chunks,
                              "hvp_1_chunk": lambda: one.matvec(v), "hvp_4_chunks": lambda: four.matvec(v)},
                             warmup, repeats)
    return {"dtype": str(dtype).removeprefix("torch."), "median_seconds": medians,
            "hvp_1_chunk_in_gradients": medians["hvp_1_chunk"] / medians["gradient"],
            "hvp_4_chunks_in_gradients": medians["hvp_4_chunks"] / medians["gradient"],
            "hvp_4_chunks_in_4_chunk_gradients": medians["hvp_4_chunks"] / medians["gradient_4_chunks"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="GD steps to the checkpoint")
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5, help="start-vector seeds to average over")
    parser.add_argument("--max-matvecs", type=int, default=300, help="budget cap for Lanczos runs")
    parser.add_argument("--power-matvecs", type=int, default=2000, help="budget cap for power iteration")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats for the HVP cost")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    wall = time.perf_counter()

    model, inputs, targets, losses = train_checkpoint(args.n_train, args.lr, args.steps)
    model64 = copy.deepcopy(model).double()
    op = HessianOperator(model64, half_mse, (inputs.double(), targets.double()))
    with torch.no_grad():
        counter = Recorder(op.matvec)
        ref = lanczos(counter, op.num_params, 1, num_matvecs=args.max_matvecs, tol=REFERENCE_TOL, seed=10_000)
        reference = float(ref.eigenvalues[0])
        rows = [compare_methods(op, reference, seed, args.max_matvecs, args.power_matvecs) for seed in range(args.seeds)]
    costs = [hvp_cost(model, inputs, targets, dtype, warmup=5, repeats=args.repeats)
             for dtype in (torch.float32, torch.float64)]

    def mean(method: str, key: str) -> float:  # NaN if some seed never got there
        values = [r[method][key] for r in rows]
        return float("nan") if None in values else statistics.fmean(float(v) for v in values)

    summary = {
        "lanczos_matvecs": mean("lanczos", "matvecs"), "lanczos_seconds": mean("lanczos", "seconds"),
        "lanczos_tol_matvecs": mean("lanczos_tol", "matvecs"), "lanczos_tol_rel_error": mean("lanczos_tol", "rel_error"),
        "power_matvecs": mean("power", "matvecs"), "power_seconds": mean("power", "seconds"),
        "power_rel_error": mean("power", "rel_error"), "power_first_within_target": mean("power", "first_within_target"),
    }
    summary["power_over_lanczos_matvecs"] = summary["power_matvecs"] / summary["lanczos_matvecs"]
    summary["power_oracle_over_lanczos_matvecs"] = summary["power_first_within_target"] / summary["lanczos_matvecs"]
    summary["lanczos_matvecs_to_power_error"] = mean("lanczos", "matvecs_to_power_error")
    summary["power_over_lanczos_at_power_error"] = summary["power_matvecs"] / summary["lanczos_matvecs_to_power_error"]
    float32_cost = costs[0]
    targets_met = {
        # PyHessian's rule may stop before its estimate is within 1e-3; the second line counts the
        # products power iteration actually needs to get there.
        "power (PyHessian rule)/Lanczos products >= 2": summary["power_over_lanczos_matvecs"] >= 2,
        "power (to within 1e-3)/Lanczos products >= 2": summary["power_oracle_over_lanczos_matvecs"] >= 2,
        "power (PyHessian rule)/Lanczos at that error >= 2": summary["power_over_lanczos_at_power_error"] >= 2,
        "HVP (1 chunk, float32) <= 3 gradients": float32_cost["hvp_1_chunk_in_gradients"] <= 3,
        "HVP (4 chunks, float32) <= 3 gradients (4 chunks)": float32_cost["hvp_4_chunks_in_4_chunk_gradients"] <= 3,
    }
    result = {
        "benchmark": "bench_sharpness",
        "config": {"model": "mlp(64, [200, 200], 10, tanh, seed=0)", "num_params": op.num_params,
                   "data": f"load_digits({args.n_train}), standardised, one-hot", "loss": "0.5*((out-y)**2).sum(1).mean()",
                   "optimizer": f"full-batch GD (torch.optim.SGD lr={args.lr}), float32", "steps": args.steps,
                   "eigen_dtype": "float64", "target_rtol": TARGET_RTOL, "seeds": args.seeds,
                   "max_matvecs": args.max_matvecs, "power_matvecs": args.power_matvecs, "repeats": args.repeats,
                   "threads": args.threads},
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                        "cpu_count": os.cpu_count(), "load_average_before": load_before,
                        "load_average_after": os.getloadavg()},
        "checkpoint": {"loss_at_step_0": losses[0], "final_loss": losses[-1], "two_over_lr": 2 / args.lr},
        "reference": {"top_eigenvalue": reference, "matvecs": counter.count, "converged": ref.converged, "tol": REFERENCE_TOL},
        "per_seed": rows, "summary": summary, "hvp_cost": costs, "targets_met": targets_met,
        "wall_seconds": time.perf_counter() - wall,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, args.output)


def print_table(r: dict, path: Path) -> None:
    s, ck, ref = r["summary"], r["checkpoint"], r["reference"]
    print(f"Edge-of-stability network, {r['config']['num_params']:,} parameters, after {r['config']['steps']} GD steps "
          f"(loss {ck['loss_at_step_0']:.4f} → {ck['final_loss']:.4f}); 2/lr = {ck['two_over_lr']:.3g}")
    print(f"Reference λ_max = {ref['top_eigenvalue']:.10g}  (Lanczos, tol {ref['tol']:g}, {ref['matvecs']} products, "
          f"converged={ref['converged']})")
    print(f"\nTop eigenvalue to relative error {TARGET_RTOL:g}, mean over {r['config']['seeds']} start-vector seeds:")
    header = f"  {'method':<38} {'HVPs':>8} {'seconds':>9} {'rel. error':>11}"
    print(header + "\n  " + "-" * (len(header) - 2))
    rows = [
        ("Lanczos, smallest sufficient budget", s["lanczos_matvecs"], s["lanczos_seconds"],
         statistics.fmean(x["lanczos"]["rel_error"] for x in r["per_seed"])),
        ("Lanczos, self-stopping at tol=1e-3", s["lanczos_tol_matvecs"],
         statistics.fmean(x["lanczos_tol"]["seconds"] for x in r["per_seed"]), s["lanczos_tol_rel_error"]),
        ("power iteration, tol=1e-3 (PyHessian)", s["power_matvecs"], s["power_seconds"], s["power_rel_error"]),
        ("power iteration, first step within 1e-3", s["power_first_within_target"], float("nan"), float("nan")),
        ("Lanczos, to power (PyHessian)'s error", s["lanczos_matvecs_to_power_error"], float("nan"), s["power_rel_error"]),
    ]
    for name, matvecs, seconds, error in rows:
        print(f"  {name:<38} {matvecs:>8.1f} {seconds:>9.2f} {error:>11.2e}")
    print(f"  power (PyHessian rule) / Lanczos products: {s['power_over_lanczos_matvecs']:.2f}   "
          f"(like for like, first step within 1e-3: {s['power_oracle_over_lanczos_matvecs']:.2f}; Lanczos to the "
          f"error PyHessian's rule stops at: {s['power_over_lanczos_at_power_error']:.2f})")
    print("\nOne Hessian-vector product in units of one gradient (forward + loss.backward()), medians:")
    header = (f"  {'dtype':<8} {'gradient ms':>12} {'HVP 1 chunk':>12} {'HVP 4 chunks':>13} "
              f"{'HVP 4 chunks / gradient 4 chunks':>33}")
    print(header + "\n  " + "-" * (len(header) - 2))
    for c in r["hvp_cost"]:
        m = c["median_seconds"]
        print(f"  {c['dtype']:<8} {1e3 * m['gradient']:>12.1f} {c['hvp_1_chunk_in_gradients']:>11.2f}× "
              f"{c['hvp_4_chunks_in_gradients']:>12.2f}× {c['hvp_4_chunks_in_4_chunk_gradients']:>32.2f}×")
    print("\nTargets:")
    for name, met in r["targets_met"].items():
        print(f"  {name:<52} {'met' if met else 'NOT met'}")
    env = r["environment"]
    print(f"({r['config']['threads']} threads, load average {env['load_average_before'][0]:.2f} → "
          f"{env['load_average_after'][0]:.2f}, {r['wall_seconds']:.0f} s; JSON written to {path})")


if __name__ == "__main__":
    main()
