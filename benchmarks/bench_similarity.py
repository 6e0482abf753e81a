"""Representation similarity at n = 10,000 examples and d = 1,024 features (issue target: linear CKA and
mutual kNN under 2 s each on 2 cores), against baselines run in the same process.

(a) Linear CKA. lmech's feature-space form ``‖ỸᵀX̃‖²_F / (‖X̃ᵀX̃‖_F ‖ỸᵀỸ‖_F)`` costs ``O(n d²)``. Baseline: the
    Gram-matrix form ``tr(K H L H)`` with ``n × n`` kernels, ``O(n² d)`` and 400 MB per kernel in float32 —
    the form most public copies use. Both in float32 and float64; the two values are also compared.
(b) Mutual kNN (k = 10, cosine, float32). lmech: the upper triangle of the similarity matrix, a band of rows at a
    time, formed by NumPy's BLAS (OpenBLAS; the diagonal blocks by ``syrk``) on the CPU; each row's running
    top-k is updated only from the entries above its current k-th best, found by one comparison per band; the
    X and Y searches run side by side in two threads, each on one core. Same search with torch's kernels
    (``torch.mm`` by MKL, ``gt``/``nonzero``: ``numpy_kernels=False``, what runs on other devices), to separate
    the BLAS from the selection. Baselines: ``baseline_knn``, lmech's previous search (2,048 × 2,048 blocks,
    ``torch.topk`` of every row of each block and of its transpose, merged into a running top-k), timed
    alternately with the current one in the same process, its neighbour sets checked equal; and scikit-learn's
    ``NearestNeighbors(metric="cosine", algorithm="brute")``, the well-kept library a user would reach for.
    Also timed: the products alone (both upper triangles by the same bands and BLAS calls, each search's on one
    core, side by side), a floor no exact float32 search of this shape gets under on the machine.

Run ``python benchmarks/bench_similarity.py`` (``--only-knn --skip-baselines`` for (b) against lmech's previous
search alone, about 20 s); prints the figures and writes
``benchmarks/results/bench_similarity.json`` with the load average (timings are only as good as idle cores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from lmech.measure.similarity import _band_products, _bands, _knn, _unit_rows, linear_cka, mutual_knn


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


def baseline_knn(z: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """lmech's previous ``_knn``: bands of exactly ``chunk`` rows, ``topk`` of each transposed block in place."""
    z = torch.nn.functional.normalize(z, dim=1)
    n = len(z)
    best_v = torch.full((n, k), -math.inf, dtype=z.dtype, device=z.device)
    best_i = torch.zeros((n, k), dtype=torch.long, device=z.device)

    def merge(rows: slice, sims: torch.Tensor, offset: int) -> None:
        kk = min(k, sims.shape[1])
        v, i = sims.topk(kk, dim=1)
        values = torch.cat([best_v[rows], v], dim=1)
        indices = torch.cat([best_i[rows], i + offset], dim=1)
        top = values.topk(k, dim=1)
        best_v[rows], best_i[rows] = top.values, indices.gather(1, top.indices)

    starts = range(0, n, chunk)
    for a in starts:
        rows_a = slice(a, min(a + chunk, n))
        for b in (b for b in starts if b >= a):
            rows_b = slice(b, min(b + chunk, n))
            sims = z[rows_a] @ z[rows_b].T
            if a == b:
                sims.fill_diagonal_(-math.inf)
            merge(rows_a, sims, b)
            if b != a:
                merge(rows_b, sims.T, a)
    return best_i


def baseline_mutual_knn(x: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """``mutual_knn`` on ``baseline_knn`` (float inputs of equal dtype; no validation)."""
    nx, ny = baseline_knn(x, k), baseline_knn(y, k)
    return float((nx.unsqueeze(2) == ny.unsqueeze(1)).sum((1, 2)).double().mean() / k)


def products_floor(zs: list[torch.Tensor], threads: int) -> float:
    """Seconds for the band products of the searches alone, as lmech runs them: side by side on one core each
    (one after another on one thread)."""
    units = [_unit_rows(z).contiguous() for z in zs]

    def products(z: torch.Tensor) -> None:
        n, bands = len(z), _bands(len(z))
        buffer = np.empty(max((b - a) * (n - a) for a, b in bands), dtype=z.numpy().dtype)
        for a, b in bands:
            _band_products(z, a, b, buffer)

    with threadpool_limits(1, "blas"), ThreadPoolExecutor(min(len(units), threads)) as pool:
        start = time.perf_counter()
        list(pool.map(products, units))
        return time.perf_counter() - start


def same_neighbours(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.sort(1).values, b.sort(1).values)


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
    parser.add_argument("--only-knn", action="store_true", help="time mutual kNN alone (a short run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.d, generator=gen)
    mix = torch.randn(args.d, args.d, generator=gen) / args.d**0.5
    y = torch.tanh(x @ mix) + 0.5 * torch.randn(args.n, args.d, generator=gen)
    out: dict[str, object] = {"n": args.n, "d": args.d, "threads": args.threads, "load_average": os.getloadavg(),
                              "machine": platform.machine(), "torch": torch.__version__}
    for dtype in () if args.only_knn else (torch.float32, torch.float64):
        name = str(dtype).split(".")[1]
        xs, ys = x.to(dtype), y.to(dtype)
        t, value = timed(lambda xs=xs, ys=ys: linear_cka(xs, ys), args.repeats)
        out[f"linear_cka_{name}_s"], out[f"linear_cka_{name}"] = t, value
        print(f"linear CKA {name}: {t:.3f} s (value {value:.6f})")
        if not args.skip_baselines:
            tb, vb = timed(lambda xs=xs, ys=ys: gram_cka(xs, ys), 1)
            out[f"gram_cka_{name}_s"], out[f"gram_cka_{name}"] = tb, vb
            print(f"  Gram-matrix baseline: {tb:.3f} s (value {vb:.6f}); lmech is {tb / t:.1f}x faster")
    load_before = os.getloadavg()
    t, tb, tt, tf = float("inf"), float("inf"), float("inf"), float("inf")
    for _ in range(args.repeats):  # alternate, so a change in the machine's load hits all alike
        t1, value = timed(lambda: mutual_knn(x, y, 10), 1)
        t2, vb = timed(lambda: baseline_mutual_knn(x, y, 10), 1)
        t3, _ = timed(lambda: [_knn(z, 10, numpy_kernels=False) for z in (x, y)], 1)
        t, tb, tt, tf = min(t, t1), min(tb, t2), min(tt, t3), min(tf, products_floor([x, y], args.threads))
    load_after = os.getloadavg()
    same = all(same_neighbours(_knn(z, 10), baseline_knn(z, 10)) for z in (x, y))
    out.update({"mutual_knn_s": t, "mutual_knn": value, "baseline_mutual_knn_s": tb, "baseline_mutual_knn": vb,
                "mutual_knn_speedup": tb / t, "mutual_knn_torch_kernels_s": tt, "mutual_knn_same_neighbours": same,
                "mutual_knn_products_alone_s": tf,
                "mutual_knn_load_before": load_before, "mutual_knn_load_after": load_after})
    print(f"mutual kNN (k=10) float32: {t:.3f} s (value {value:.4f}); previous lmech search {tb:.3f} s "
          f"(value {vb:.4f}), ratio {tb / t:.2f}x; same neighbour sets: {same}")
    print(f"  the products alone (the floor of an exact float32 search here): {tf:.3f} s, {tf / t:.0%} of lmech's time")
    print(f"  the same search with torch's kernels (two neighbour searches, without the final intersection): {tt:.3f} s")
    print(f"  load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
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
