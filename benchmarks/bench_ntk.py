"""Empirical NTK: speed against a loop of per-example Jacobians, peak memory at 2,048 inputs, and the
eigenlearning solver on 10⁶ eigenvalues.

(a) Speed. MLP 64 → 512 → 512 → 512 → 10 (tanh, 563,722 parameters) on 256 digits, trace NTK
    (256 × 256). Baseline: ``jacrev`` called once per example in a Python loop, all Jacobians
    contracted chunk by chunk. Against it, in the same process and threads (best of ``--repeats``):
    ``lmech.measure.empirical_ntk`` with ``method="structured"`` (the default for such a network:
    per-layer activations and backpropagated signals, Novak et al. 2022, arXiv:2206.08720) and with
    ``method="jacobian"`` (``vmap(jacrev)`` per chunk). Target: ≥ 3× faster than the loop. The three
    kernels must agree.
(b) Memory. The structured trace NTK of the same network on 2,048 inputs, in a fresh process:
    peak resident memory (``VmHWM``, reset through ``/proc/self/clear_refs`` just before the call)
    above the resident memory (``VmRSS``) the process held just before it, against
    the size of the kernel itself and of the Jacobian the method never forms (2,048 × 10 × P floats).
(c) The eigenlearning solver (``lmech.theory.eigenlearning``) on 10⁶ power-law eigenvalues,
    ridge 0 and ridge > 0, n from 10 to 10⁵: seconds (target < 1 s) and in units of one vectorised
    evaluation of the κ equation in the same process.

Run ``python benchmarks/bench_ntk.py``; prints the figures and writes
``benchmarks/results/bench_ntk.json`` (with the load average: timings on a shared machine are only
as good as its idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, jacrev

from lmech.data import load_digits
from lmech.measure import empirical_ntk
from lmech.models import mlp
from lmech.theory import eigenlearning

MEMORY_CHILD = """
import torch
from lmech.measure import empirical_ntk
from lmech.models import mlp

def status(key):  # kB, from the kernel's own accounting of this process
    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])

torch.set_num_threads({threads})
model = mlp(64, [{width}] * 3, 10, seed=0)
x = torch.randn({n}, 64, generator=torch.Generator().manual_seed(0))
empirical_ntk(model, x[:8], chunk_size={chunk})  # warm-up: allocator and lazy initialisation
open('/proc/self/clear_refs', 'w').write('5')  # resets the peak (VmHWM) to the current RSS
before = status('VmRSS:')
kernel = empirical_ntk(model, x, chunk_size={chunk})
print(before, status('VmHWM:'), kernel.shape[0], float(kernel.trace()))
"""


def looped_ntk(model: torch.nn.Module, x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    params = {n: p.detach() for n, p in model.named_parameters()}

    def f(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).reshape(-1)

    def jac(chunk: torch.Tensor) -> torch.Tensor:
        rows = []
        for xi in chunk:  # one Jacobian per example
            j = jacrev(f)(params, xi)
            rows.append(torch.cat([v.reshape(v.shape[0], -1) for v in j.values()], dim=1))
        return torch.stack(rows)

    chunks = [jac(c) for c in x.split(chunk_size)]  # all of J: n·k·P floats (5.8 GB at the defaults)
    return torch.cat([torch.cat([torch.einsum("akp,bkp->ab", a, b) for b in chunks], dim=1) for a in chunks])


def best_of(fn, repeats: int) -> tuple[torch.Tensor, float]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def speed(args: argparse.Namespace) -> dict:
    train, _ = load_digits(args.n, 0, seed=0)
    model = mlp(64, [args.width] * 3, 10, seed=0)
    x = train.inputs
    structured, t_structured = best_of(lambda: empirical_ntk(model, x, chunk_size=args.chunk_size), args.repeats)
    jacobian, t_jacobian = best_of(
        lambda: empirical_ntk(model, x, chunk_size=args.chunk_size, method="jacobian"), args.repeats)
    loop, t_loop = best_of(lambda: looped_ntk(model, x, args.chunk_size), args.repeats)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": {"structured": t_structured, "jacobian": t_jacobian, "loop": t_loop},
        "speedup_vs_loop": {"structured": t_loop / t_structured, "jacobian": t_loop / t_jacobian},
        "relative_difference_vs_loop": {
            "structured": float((structured - loop).norm() / loop.norm()),
            "jacobian": float((jacobian - loop).norm() / loop.norm()),
        },
    }


def memory(args: argparse.Namespace) -> dict:
    code = MEMORY_CHILD.format(threads=args.threads, width=args.width, n=args.memory_n, chunk=args.chunk_size)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    before_kib, after_kib = int(out[0]), int(out[1])
    params = 64 * args.width + args.width + 2 * (args.width**2 + args.width) + 10 * args.width + 10
    mib = 1024.0**2
    return {
        "inputs": args.memory_n,
        "peak_increase_mib": (after_kib - before_kib) / 1024.0,
        "kernel_mib": args.memory_n**2 * 4 / mib,
        "jacobian_mib_never_formed": args.memory_n * 10 * params * 4 / mib,
        "per_layer_features_mib": args.memory_n * (10 * (3 * args.width + 10) + 64 + 3 * args.width) * 4 / mib,
    }


def eigenlearning_speed() -> dict:
    i = np.arange(1, 1_000_001, dtype=np.float64)
    lam, v = i**-1.5, i**-1.0
    one_eval = min(_timed(lambda: np.sum(lam / (lam + 1e-4))) for _ in range(5))
    cases = {}
    for ridge in (0.0, 1e-3):
        for n in (10, 1_000, 100_000):
            seconds = min(_timed(lambda n=n, ridge=ridge: eigenlearning(lam, v, n, ridge=ridge)) for _ in range(3))
            cases[f"ridge={ridge:g}, n={n}"] = {"seconds": seconds, "equation_evaluations": seconds / one_eval}
    return {"eigenvalues": lam.size, "one_equation_evaluation_s": one_eval, "cases": cases}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--memory-n", type=int, default=2048)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    result = {"speed": speed(args), "memory": memory(args), "eigenlearning": eigenlearning_speed()}
    result.update(threads=args.threads, torch=torch.__version__, machine=platform.machine(),
                  loadavg_before=load_before, loadavg_after=os.getloadavg())

    s, m, e = result["speed"], result["memory"], result["eigenlearning"]
    print(f"(a) trace NTK of an MLP 64-{args.width}x3-10 ({s['parameters']:,} parameters) on {args.n} digits, "
          f"chunks of {args.chunk_size}, {args.threads} threads")
    for name, label in (("loop", "loop of per-example jacrev"), ("jacobian", "empirical_ntk, method='jacobian'"),
                        ("structured", "empirical_ntk, method='structured'")):
        extra = "" if name == "loop" else (f"  {s['speedup_vs_loop'][name]:6.1f}x the loop, kernels differ by "
                                           f"{s['relative_difference_vs_loop'][name]:.1e}")
        print(f"    {label:36s} {s['seconds'][name]:8.3f} s{extra}")
    print(f"(b) structured NTK on {m['inputs']} inputs: peak memory +{m['peak_increase_mib']:.0f} MiB "
          f"(kernel {m['kernel_mib']:.0f} MiB, per-layer features {m['per_layer_features_mib']:.0f} MiB, "
          f"Jacobian never formed {m['jacobian_mib_never_formed'] / 1024:.0f} GiB)")
    print(f"(c) eigenlearning on {e['eigenvalues']:,} eigenvalues (one κ-equation evaluation "
          f"{e['one_equation_evaluation_s'] * 1e3:.1f} ms):")
    for case, c in e["cases"].items():
        print(f"    {case:22s} {c['seconds']:.3f} s = {c['equation_evaluations']:.0f} evaluations")
    print(f"load average before {load_before[0]:.2f}, after {result['loadavg_after'][0]:.2f}")
    out = Path(__file__).parent / "results" / "bench_ntk.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
