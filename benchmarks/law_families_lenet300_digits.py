"""The Neural Pruning Law on LeNet-300-100 / digits, per family of minimum saliency: alpha, c and R^2 of the
power-law fit in the middle region (default (0.5 %, 50 %] of density), over seeds.

Families (the protocols of tests/test_law_families.py, plus IMP and GMP for comparison):
  magnitude  prune 10 % of the remaining weights by |w| at 44 evenly spaced steps over 30 epochs (B.4, the authors' "IMP")
  taylor     the same with |w * g| (mean minibatch gradient over 16 batches)
  hyperflux  P/N of every pruning epoch, pressure P = sqrt(2)^k raised every 3 epochs from 2^-4 (B.4 (a)), mask lr 1e-2
  imp        IMP with rewinding to epoch 1, 20 % per round, 21 rounds in 30 epochs
  gmp        cubic schedule, one magnitude step per epoch (30 steps, uneven fractions)
  imp_105ep  IMP as above with 105 epochs: 21 rounds of 5 epochs

    .venv/bin/python benchmarks/law_families_lenet300_digits.py   # writes benchmarks/law_families_lenet300_digits.{csv,md}
"""
from __future__ import annotations
import argparse, os, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "magnitude": dict(method="magnitude", sparsity_pct=99.0, epochs_prune=30, epochs_regrow=0),
    "taylor": dict(method="taylor", sparsity_pct=99.0, epochs_prune=30, epochs_regrow=0),
    "hyperflux": dict(method="hyperflux", sparsity_pct=99.0, epochs_prune=47, epochs_regrow=0,
                      step_pressure=(2 ** 0.5, -8, 3, 2), mask_lr=0.01),
    "imp": dict(method="imp", sparsity_pct=99.0, epochs_prune=30, epochs_regrow=0),
    "gmp": dict(method="gmp", sparsity_pct=99.0, epochs_prune=30, epochs_regrow=0),
    "imp_105ep": dict(method="imp", sparsity_pct=99.0, epochs_prune=105, epochs_regrow=0),
}


def run_one(job: dict) -> dict:
    "Train (or reuse) one law run and fit its law.csv."
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    from hyperflux.law import fit_power_law, read_law_csv
    from hyperflux.train import recipe, train
    cfg = recipe("lenet300", "digits", law=True, progress=False, seed=job["seed"], **FAMILIES[job["family"]])
    out = Path(job["runs"]) / f"{job['family']}-seed{job['seed']}"
    final = train(cfg, out)
    law = read_law_csv(out / "law.csv")
    fit = fit_power_law(law.saliency, law.density_pct, job["region"])
    return dict(family=job["family"], seed=job["seed"], alpha=fit.alpha, alpha_lo=fit.alpha_ci[0], alpha_hi=fit.alpha_ci[1],
                c=fit.c, r2=fit.r2, n=fit.n, saliency_lo=fit.saliency_range[0], saliency_hi=fit.saliency_range[1],
                final_acc_pct=final["test_acc_pct"], epochs=final["epochs"])


def md_table(df: pd.DataFrame) -> list[str]:
    "A pipe table of `df` (numbers with 4 significant digits), without extra dependencies."
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    return ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)] + \
           ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]


def markdown(df: pd.DataFrame, region) -> str:
    "Per-family mean and range of alpha and R^2, then every run."
    g = df.groupby("family", sort=False)
    lines = ["# Neural Pruning Law on LeNet-300-100 / digits, per family", "",
             f"Power-law fit ln S = ln c - alpha ln(gamma) on the law.csv points with density in ({region[0]:g}, {region[1]:g}] % "
             f"(hyperflux.law.fit_power_law), seeds {sorted(int(s) for s in df.seed.unique())}. Produced by "
             f"`benchmarks/law_families_lenet300_digits.py`; protocols in its docstring.", "",
             "| family | alpha (mean, min-max) | R^2 (mean, min-max) | points fitted |", "|---|---|---|---|"]
    for fam, d in g:
        lines.append(f"| {fam} | {d.alpha.mean():.3f} ({d.alpha.min():.3f}-{d.alpha.max():.3f}) | "
                     f"{d.r2.mean():.4f} ({d.r2.min():.4f}-{d.r2.max():.4f}) | {int(d.n.median())} |")
    lines += ["", "Every run:", "", *md_table(df), "",
              "Notes: the saliency scales differ by family (|w|, |w g|, P/N), so alpha is comparable only within a family. "
              "IMP rewinds to the end of epoch 1 and retrains 1-2 epochs per round here, so its weights stay near their "
              "initial scale and the largest removed magnitude grows slowly at low density: its fit is the weakest; with 5 epochs per round (`imp_105ep`) it is closer to the others.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--region", nargs=2, type=float, default=[0.5, 50.0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "law_families_lenet300_digits")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "law_families_lenet300_digits")
    args = p.parse_args(argv)
    jobs = [dict(family=f, seed=s, region=tuple(args.region), runs=str(args.runs)) for f in args.families for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool: rows = list(pool.map(run_one, jobs))
    from hyperflux.core import atomic_write
    df = pd.DataFrame(rows)
    atomic_write(args.out.with_suffix(".csv"), df.to_csv(index=False, float_format="%.6g"))
    atomic_write(args.out.with_suffix(".md"), markdown(df, args.region))
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
