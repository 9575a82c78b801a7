"""The Neural Pruning Law holds on LeNet-300/digits for each family of minimum saliency (issue 5 acceptance):
magnitude (the authors' "IMP": prune 10 % of the remaining weights by |w| while training, B.4), Taylor (|w * g|),
and Hyperflux (P/N per epoch under a pressure raised step by step, B.4 (a)). Each run's law.csv, fitted in the
default middle region (0.5 %, 50 %] with hyperflux.law.fit_power_law, must have R^2 >= 0.95.

The protocols are the seed-0 runs of the `law-digits` profile of paper.yaml, executed through the sweep machinery
(hyperflux.sweep + hyperflux.executor), so the test and `make paper PROFILE=law-digits` cannot drift apart.
Measured (seeds 0, 1, 2, 2 CPU cores; figures/history/law_families_lenet300_digits.md): magnitude alpha 2.28-2.33,
R^2 0.980-0.983; taylor alpha 0.73-0.79, R^2 0.971-0.980; hyperflux alpha 0.82-0.84, R^2 0.978-0.979.
"""
import pandas as pd
import pytest

from conftest import ROOT

from hyperflux.executor import run_sweep
from hyperflux.law import fit_power_law
from hyperflux.sweep import load_profile

FAMILIES = ("magnitude", "taylor", "hyperflux")


@pytest.fixture(scope="module")
def law_runs(tmp_path_factory):
    "The seed-0 law-digits runs of FAMILIES, executed as `make paper` would: method -> run folder."
    specs = [s for s in load_profile("law-digits", ROOT / "paper.yaml")
             if s.config["seed"] == 0 and s.config["method"] in FAMILIES]
    assert sorted(s.config["method"] for s in specs) == sorted(FAMILIES)
    results = run_sweep(specs, tmp_path_factory.mktemp("runs"), jobs=1, progress=False, gpus=0)
    assert [r.status for r in results] == ["done"] * len(specs), [r.error for r in results]
    return {r.spec.config["method"]: r.folder for r in results}


@pytest.mark.parametrize("family", FAMILIES)
def test_law_middle_region_fit(family, law_runs):
    law = pd.read_csv(law_runs[family] / "law.csv")
    assert law.density_pct.iloc[-1] < 2.0, law.tail()   # the run went through the whole middle region
    fit = fit_power_law(law.saliency_min, law.density_pct)  # default region (0.5, 50]
    print(f"{family}: alpha={fit.alpha:.3f} c={fit.c:.3g} R^2={fit.r2:.4f} n={fit.n}")
    assert fit.n >= 10, fit
    assert fit.alpha > 0, fit
    assert fit.r2 >= 0.95, fit
