"""Ensembles: 32 small MLPs trained at once (``lmech.train.train_ensemble``) against a loop of
``lmech.train.train``, one model after another, in the same process and threads.

The sweep: 32 MLPs 64 → 64 → 10 (tanh, one hidden layer of width 64, 4,810 parameters each) on
1,000 standardised digits with the cross-entropy: 4 learning rates × 4 initial scales (every
parameter multiplied by 0.5, 1, 2 or 4 after the default initialisation) × 2 seeds. Two schedules:

(a) minibatch SGD, batches of 64, 100 steps: what a sweep of small models usually runs, and where
    one model's step is mostly Python and dispatch overhead that the ensemble pays once for all 32;
(b) full-batch gradient descent on all 1,000 examples, 50 steps, where one model's step is
    already mostly arithmetic and batching can only save the overhead.

Also (a) at depth 2 (64 → 64 → 64 → 10, 8,970 parameters), and (a) through the generic path,
``vmap`` over ``functional_call`` (the same MLP inside a module that is not an ``nn.Sequential``)
instead of the batched matrix products used for plain stacks of ``nn.Linear``. Throughput = model-steps per second
(members × steps / seconds), best of ``--repeats`` (the loop and the ensemble alternate, so that both see the
same load on a shared machine; the ratio of each pair is kept too). Target: ≥ 5× the loop on (a) with 2 threads.
Every run also checks that the ensemble ends where the loop ends: the largest difference of a final
parameter, relative to the largest parameter (float32, so about 1e-6 is rounding).

Run ``python benchmarks/bench_ensemble.py``; prints the figures and writes
``benchmarks/results/bench_ensemble.json`` (with the load average: timings on a shared machine are
only as good as its idle cores).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from lmech.data import load_digits
from lmech.models import mlp
from lmech.train import TrainConfig, train, train_ensemble

LRS = (0.03, 0.1, 0.3, 1.0)
INIT_SCALES = (0.5, 1.0, 2.0, 4.0)
SEEDS = (0, 1)


class Wrapped(torch.nn.Module):
    """An MLP that ``train_ensemble`` batches with ``vmap(functional_call)``, not batched products."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sweep(depth: int, wrap: bool = False) -> tuple[list[torch.nn.Module], list[dict]]:
    models, index = [], []
    for lr in LRS:
        for scale in INIT_SCALES:
            for seed in SEEDS:
                model = mlp(64, [64] * depth, 10, seed=seed)
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(scale)
                models.append(Wrapped(model) if wrap else model)
                index.append({"lr": lr, "init_scale": scale, "seed": seed})
    return models, index


def case(name: str, depth: int, base: TrainConfig, data, repeats: int, wrap: bool = False) -> dict:
    models, index = sweep(depth, wrap)
    configs = [replace(base, lr=ix["lr"]) for ix in index]

    def loop() -> list[torch.nn.Module]:
        trained = copy.deepcopy(models)
        for model, config, ix in zip(trained, configs, index):
            train(model, F.cross_entropy, data, config, index=ix)
        return trained

    def ensemble() -> list[torch.nn.Module]:
        trained = copy.deepcopy(models)
        train_ensemble(trained, F.cross_entropy, data, configs, index=index)
        return trained

    # Alternate the two, so that both see the same load on a shared machine; keep the best of each
    # and the ratio of every pair.
    seconds, trained, ratios = {"loop": float("inf"), "ensemble": float("inf")}, {}, []
    loop(), ensemble()  # warm-up
    for _ in range(repeats):
        pair = {}
        for label, fn in (("loop", loop), ("ensemble", ensemble)):
            start = time.perf_counter()
            trained[label] = fn()
            pair[label] = time.perf_counter() - start
            seconds[label] = min(seconds[label], pair[label])
        ratios.append(pair["loop"] / pair["ensemble"])
    model_steps = len(models) * base.steps
    scale = max(p.abs().nan_to_num(0.0).max().item() for m in trained["loop"] for p in m.parameters())
    difference = max(  # a member that diverged alike in both is no difference
        torch.where(p.isnan() & q.isnan(), 0.0, (p - q).abs()).max().item()
        for a, b in zip(trained["loop"], trained["ensemble"]) for p, q in zip(a.parameters(), b.parameters()))
    diverged = sum(not all(p.isfinite().all() for p in m.parameters()) for m in trained["loop"])
    return {
        "case": name, "members": len(models), "depth": depth, "width": 64,
        "path": "vmap(functional_call)" if wrap else "batched matrix products",
        "parameters_per_member": sum(p.numel() for p in models[0].parameters()),
        "optimizer": base.optimizer, "batch_size": base.batch_size, "steps": base.steps,
        "seconds": seconds,
        "model_steps_per_second": {k: model_steps / v for k, v in seconds.items()},
        "speedup": seconds["loop"] / seconds["ensemble"],
        "speedup_of_each_pair": ratios,
        "speedup_median_of_pairs": statistics.median(ratios),
        "max_parameter_difference_relative": difference / scale,
        "diverged_members": diverged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minibatch-steps", type=int, default=100)
    parser.add_argument("--full-batch-steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_split, _ = load_digits(1000, 0, seed=0)
    data = (train_split.inputs, train_split.labels)
    load_before = os.getloadavg()
    minibatch = TrainConfig(optimizer="sgd", lr=0.1, steps=args.minibatch_steps, batch_size=64)
    full = TrainConfig(optimizer="gd", lr=0.1, steps=args.full_batch_steps)
    cases = [
        case("(a) minibatch SGD, batch 64", 1, minibatch, data, args.repeats),
        case("(b) full-batch GD, 1,000 examples", 1, full, data, args.repeats),
        case("(a) minibatch SGD, batch 64, depth 2", 2, minibatch, data, args.repeats),
        case("(a) minibatch SGD, batch 64, vmap path", 1, minibatch, data, args.repeats, wrap=True),
    ]
    result = {"cases": cases, "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()}

    print(f"32 MLPs of width 64 on 1,000 digits (cross-entropy), {args.threads} threads, best of {args.repeats}; "
          "model-steps per second:")
    for c in cases:
        rate = c["model_steps_per_second"]
        print(f"    {c['case']:40s} depth {c['depth']}, {c['steps']:3d} steps: loop {rate['loop']:8.0f}, "
              f"ensemble {rate['ensemble']:8.0f}  = {c['speedup']:5.1f}x (pairs: median "
              f"{c['speedup_median_of_pairs']:.1f}x, {min(c['speedup_of_each_pair']):.1f}-"
              f"{max(c['speedup_of_each_pair']):.1f}x)  "
              f"(final parameters differ by {c['max_parameter_difference_relative']:.0e} of the largest; "
              f"{c['diverged_members']} members diverged)")
    print(f"load average before {load_before[0]:.2f}, after {result['loadavg_after'][0]:.2f} "
          f"on {os.cpu_count()} cores")
    out = Path(__file__).parent / "results" / "bench_ensemble.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
