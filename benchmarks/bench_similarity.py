"""Representation similarity at n = 10,000 examples and d = 1,024 features (issue target: linear CKA and
mutual kNN under 2 s each on 2 cores), against baselines run in the same process.

(a) Linear CKA. lmech's feature-space form ``‖ỸᵀX̃‖²_F / (‖X̃ᵀX̃‖_F ‖ỸᵀỸ‖_F)`` costs ``O(n d²)``. Baseline: the
    Gram-matrix form ``tr(K H L H)`` with ``n × n`` kernels, ``O(n² d)`` and 400 MB per kernel in float32 —
    the form most public copies use. Both in float32 and float64; the two values are also compared.
(b) Mutual kNN (k = 10, cosine). lmech: chunked similarity rows and ``torch.topk``. Baseline: scikit-learn's
    ``NearestNeighbors(metric="cosine", algorithm="brute")``, the well-kept library a user would reach for.

Run ``python benchmarks/bench_similarity.py``; prints the figures and writes
``benchmarks/results/bench_similarity.json`` with the load average (timings are only as good as idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from lmech.measure.similarity import linear_cka, mutual_knn


def timed(fn, repeats: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def gram_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    n = len(x)
    h = torch.eye(n, dtype=x.dtype) - 1.0 / n
    k, l = x @ x.T, y @ y.T  # noqa: E741
    kh, lh = k @ h, l @ h
    return float((kh * lh.T).sum() / torch.sqrt((kh * kh.T).sum() * (lh * lh.T).sum()))


def sklearn_mutual_knn(x: np.ndarray, y: np.ndarray, k: int) -> float:
    sets = []
    for z in (x, y):
        nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(z)
        idx = nn.kneighbors(z, return_distance=False)
        sets.append([set(row[row != i][:k]) for i, row in enumerate(idx)])
    return float(np.mean([len(a & b) / k for a, b in zip(*sets)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.d, generator=gen)
    mix = torch.randn(args.d, args.d, generator=gen) / args.d**0.5
    y = torch.tanh(x @ mix) + 0.5 * torch.randn(args.n, args.d, generator=gen)
    out: dict[str, object] = {"n": args.n, "d": args.d, "threads": args.threads, "load_average": os.getloadavg(),
                              "machine": platform.machine(), "torch": torch.__version__}
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).split(".")[1]
        xs, ys = x.to(dtype), y.to(dtype)
        t, value = timed(lambda xs=xs, ys=ys: linear_cka(xs, ys), args.repeats)
        out[f"linear_cka_{name}_s"], out[f"linear_cka_{name}"] = t, value
        print(f"linear CKA {name}: {t:.3f} s (value {value:.6f})")
        if not args.skip_baselines:
            tb, vb = timed(lambda xs=xs, ys=ys: gram_cka(xs, ys), 1)
            out[f"gram_cka_{name}_s"], out[f"gram_cka_{name}"] = tb, vb
            print(f"  Gram-matrix baseline: {tb:.3f} s (value {vb:.6f}); lmech is {tb / t:.1f}x faster")
    t, value = timed(lambda: mutual_knn(x, y, 10), args.repeats)
    out["mutual_knn_s"], out["mutual_knn"] = t, value
    print(f"mutual kNN (k=10) float32: {t:.3f} s (value {value:.4f})")
    if not args.skip_baselines:
        tb, vb = timed(lambda: sklearn_mutual_knn(x.numpy(), y.numpy(), 10), 1)
        out["sklearn_mutual_knn_s"], out["sklearn_mutual_knn"] = tb, vb
        print(f"  scikit-learn brute-force baseline: {tb:.3f} s (value {vb:.4f}); lmech is {tb / t:.1f}x faster")
    path = Path(__file__).parent / "results" / "bench_similarity.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
