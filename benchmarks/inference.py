"""Sparse inference: latency of a 99 %-sparse model turned into its sparse form (hyperflux.sparse.sparsify) vs the same
dense baked model, at batch 1 and 64 on CPU.

Masks are set by magnitude (no training run is needed to time inference):
- lenet300 (28x28 inputs): trained densely for one epoch on Fashion-MNIST (or the synthetic set when it is absent),
  then the 1 % largest weights over all layers are kept: pruning a trained net this way kills the inputs that carry
  no signal and many hidden units, as learned masks do.
- resnet50 (CIFAR shape): untrained; 1 % of the weights of every conv and linear layer kept by magnitude. Uniform
  random-like masks leave no dead channel, the hardest case for sparse convolutions.

`sparsify` times every exact form of every layer on the real input at that batch size and keeps the fastest (only
if >= 1.1x faster than dense); the whole model is then timed against the dense baked model, interleaved.

Run alone: python benchmarks/inference.py [--quick] [--models lenet300,resnet50]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, log, set_threads, summary  # noqa: E402

from hyperflux.masks import attach_masks, density_pct, set_keep_masks  # noqa: E402
from hyperflux.models import get_model  # noqa: E402
from hyperflux.sparse import count_flops, dense_copy, magnitude_masks, sparsify  # noqa: E402

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
DENSITY_PCT = 1.0


def trained_lenet300(quick: bool, seed: int = 0) -> tuple[torch.nn.Module, str]:
    "LeNet-300-100 trained densely for one epoch (a few batches in quick mode) on 28x28 images; and the data's name."
    from hyperflux.core import HyperfluxError
    from hyperflux.data import get_data
    torch.manual_seed(seed)
    try: data, name = get_data("fashion_mnist", batch_size=128, download=False), "fashion_mnist"
    except HyperfluxError:
        data = get_data("synthetic", batch_size=128, shape=(1, 28, 28), train_size=8192, test_size=256)
        name = "synthetic"
    model = get_model("lenet300", num_classes=10, input_shape=(1, 28, 28))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    data.train.set_epoch(1)
    for i, (x, y) in enumerate(data.train):
        if quick and i >= 20: break
        opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
    return model, name


def pruned(model_name: str, quick: bool) -> tuple[torch.nn.Module, dict]:
    "A 99 %-sparse masked model and a description of how its masks were made."
    if model_name == "lenet300":
        model, data = trained_lenet300(quick)
        attach_masks(model, seed=0)
        set_keep_masks(model, magnitude_masks(model, DENSITY_PCT))
        how = f"trained 1 epoch on {data}{' (20 batches: quick)' if quick else ''}, global magnitude masks"
        shape = (1, 28, 28)
    else:
        torch.manual_seed(0)
        model = attach_masks(get_model(model_name, num_classes=10, input_shape=(3, 32, 32)), seed=0)
        set_keep_masks(model, magnitude_masks(model, DENSITY_PCT, per_layer=True))
        how = "untrained, per-layer magnitude masks (no dead channels)"
        shape = (3, 32, 32)
    return model, dict(masks=how, density_pct=round(density_pct(model), 3), input_shape=shape)


@torch.inference_mode()
def measure(model_name: str, batch: int, quick: bool, masked=None, info=None) -> dict:
    "Speedup of the sparsified model over the dense baked model at `batch`, interleaved."
    if masked is None: masked, info = pruned(model_name, quick)
    dense = dense_copy(masked)
    x = torch.randn(batch, *info["input_shape"])
    big = model_name != "lenet300"
    fast = sparsify(masked, x, rounds=2 if quick or big else 5, min_seconds=0.002 if quick else 0.01,
                    passes=1 if big else 2)
    diff = (fast(x) - dense(x)).abs().max().item()
    scale = dense(x).abs().max().item()
    if big: rounds, repeat = (1, 1) if quick else ((7, 3) if batch == 1 else (5, 1))
    else: rounds, repeat = (2, 5) if quick else ((15, 200) if batch == 1 else (15, 20))
    times = interleaved({"dense": lambda: dense(x), "sparse": lambda: fast(x)}, rounds=rounds, repeat=repeat, warmup=2)
    speedups = [d / s for d, s in zip(times["dense"], times["sparse"])]
    flops = count_flops(dense, x[:1])
    plan = fast.sparse_plan
    row = dict(model=model_name, device="cpu", batch=batch, threads=torch.get_num_threads(), **info,
               flops_remaining_pct=round(flops["remaining_pct"], 3),
               dense_ms=summary([1e3 * t for t in times["dense"]], 4),
               sparse_ms=summary([1e3 * t for t in times["sparse"]], 4),
               speedup=summary(speedups, 3)["median"], speedup_spread=summary(speedups, 3),
               max_abs_diff=diff, max_abs_output=scale, rounds=rounds, calls_per_round=repeat,
               choices=dict(collections.Counter(r["choice"] for r in plan)),
               layers=[dict(layer=r["layer"], shape=list(r["shape"]), density_pct=round(r["density_pct"], 3),
                            choice=r["choice"], speedup=round(r["speedup"], 2),
                            candidates_ms={k: round(v, 4) for k, v in r["candidates_ms"].items()})
                       for r in plan])
    if diff > 1e-4 * max(scale, 1.0): raise AssertionError(f"{model_name}: sparse output differs from dense by {diff}")
    return row


def run(models: dict[str, tuple[int, ...]], quick: bool = False) -> list[dict]:
    "The sparse_inference rows of results.json, for each model at each of its batch sizes."
    rows = []
    for name, batches in models.items():
        masked, info = pruned(name, quick)
        for b in batches:
            log(f"sparse inference: {name} at {100 - info['density_pct']:.1f} % sparsity, batch {b}")
            row = measure(name, b, quick, masked, info)
            log(f"  dense {row['dense_ms']['median']:.3f} ms, sparse {row['sparse_ms']['median']:.3f} ms: "
                f"speedup {row['speedup']:.2f}x; layer forms {row['choices']}")
            rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="lenet300,resnet50")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    set_threads(a.threads)
    print(json.dumps(run({m: (1, 64) for m in a.models.split(",")}, a.quick), indent=1))


if __name__ == "__main__":
    main()
