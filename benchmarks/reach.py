"""Compute to reach a sparsity: epochs and wall time each method (hyperflux, imp, gmp) spends until the model first
reaches 90/95/98/99 % sparsity, and the accuracy it has then and at the end of its run.

One training run per method and target with the engine (hyperflux.engine.train, the same code as `hyperflux train`),
each method with the same epoch budget; the figures are read from the run folders' metrics.csv: the first epoch whose
density_pct <= 100 - target (plus a small tolerance) and its cumulative `seconds`. final.json gives the accuracy at
the end (after fine-tuning / regrowth).

- digits (lenet300, 8x8 scikit-learn digits): the recipe's epoch budget (hyperflux: 60 pruning + 20 regrowth epochs).
- fashion_mnist (lenet300, 28x28, when /usr/share/datasets/fashion-mnist or ./data holds it): reduced to fit here:
  one run per method to 99 % with 12 + 4 epochs of 100 batches (12,800 images) each; the 90/95/98 % figures are the
  crossings within that run.

Run alone: python benchmarks/reach.py [--quick] [--runs DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, set_threads  # noqa: E402

from hyperflux.core import HyperfluxError  # noqa: E402
from hyperflux.config import recipe  # noqa: E402
from hyperflux.engine import train  # noqa: E402
from hyperflux.methods import available_methods  # noqa: E402

TARGETS_PCT = (90.0, 95.0, 98.0, 99.0)
METHODS = ("hyperflux", "imp", "gmp")
TOLERANCE_PCT = 1e-6   # density is exact counts over N; tolerance only absorbs float rounding


def crossing(metrics: Path, target_sparsity_pct: float) -> dict | None:
    "The first metrics.csv row whose density is at or below 100 - target, as epoch, seconds, test accuracy."
    with open(metrics) as f:
        for row in csv.DictReader(f):
            if float(row["density_pct"]) <= 100.0 - target_sparsity_pct + TOLERANCE_PCT:
                return dict(epoch=int(row["epoch"]), seconds=round(float(row["seconds"]), 2),
                            test_acc_pct=round(float(row["test_acc_pct"]), 2), stage=row["stage"])
    return None


def fashion_available() -> bool:
    "Is Fashion-MNIST readable without a download?"
    from hyperflux.data import get_data
    try: get_data("fashion_mnist", batch_size=128, download=False); return True
    except HyperfluxError: return False


def one_run(method: str, dataset: str, target: float, runs: Path, **overrides) -> dict:
    "Train (or reuse a finished run folder) and return its row."
    cfg = recipe("lenet300", dataset, method=method, sparsity_pct=target, progress=False, **overrides)
    out = runs / f"{dataset}-{method}-s{target:g}"
    t = time.time()
    final = train(cfg, out)
    log(f"  {method} {dataset} -> {target:g} %: {final['test_acc_pct']:.2f} % accuracy, {time.time() - t:.1f} s")
    return dict(method=method, dataset=dataset, target_sparsity_pct=target, epochs_budget=cfg.epochs,
                epochs_prune=cfg.epochs_prune, epochs_regrow=cfg.epochs_regrow, max_batches=cfg.max_batches,
                batch=cfg.batch_size, final_test_acc_pct=round(final["test_acc_pct"], 2),
                final_sparsity_pct=round(final["achieved_sparsity_pct"], 3), run_seconds=round(final["seconds"], 2),
                out=str(out))


def run(quick: bool = False, runs: str | None = None, methods=METHODS, fashion: bool = True) -> dict:
    "The reach entry of results.json: rows per (dataset, method, target) with the crossing epoch/seconds/accuracy."
    methods = [m for m in methods if m in available_methods()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(runs) if runs else Path(tmp)
        rows, notes = [], []
        targets = (90.0, 99.0) if quick else TARGETS_PCT
        digits_kw = dict(epochs_prune=4, epochs_regrow=1) if quick else {}
        log(f"reach: lenet300/digits, methods {', '.join(methods)}, targets {', '.join(f'{t:g}' for t in targets)} %")
        for target in targets:
            for m in methods:
                r = one_run(m, "digits", target, folder, **digits_kw)
                r["reached"] = crossing(Path(r["out"]) / "metrics.csv", target)
                rows.append(r)
        if quick: notes.append("quick mode: digits runs of 4 + 1 epochs, targets 90 and 99 % only; no Fashion-MNIST")
        elif fashion and fashion_available():
            kw = dict(epochs_prune=12, epochs_regrow=4, max_batches=100, batch_size=128)
            log(f"reach: lenet300/fashion_mnist (reduced: {kw})")
            for m in methods:
                r = one_run(m, "fashion_mnist", 99.0, folder, **kw)
                for target in TARGETS_PCT:
                    rows.append({**r, "target_sparsity_pct": target, "run_target_sparsity_pct": 99.0,
                                 "reached": crossing(Path(r["out"]) / "metrics.csv", target)})
            notes.append("fashion_mnist reduced to fit this machine: one run per method to 99 % with 12 pruning + 4 "
                         "fine-tuning/regrowth epochs of 100 batches of 128 images; 90/95/98 % are crossings within it")
        elif fashion: notes.append("fashion_mnist not found (no /usr/share/datasets/fashion-mnist, no ./data): skipped")
        for r in rows: r.pop("out", None)
    return dict(arch="lenet300", threads=torch.get_num_threads(), rows=rows, notes=notes)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs", default=None, help="keep the run folders here (default: a temporary folder)")
    p.add_argument("--no-fashion", action="store_true")
    a = p.parse_args(argv)
    set_threads(a.threads)
    print(json.dumps(run(a.quick, a.runs, fashion=not a.no_fashion), indent=1))


if __name__ == "__main__":
    main()
