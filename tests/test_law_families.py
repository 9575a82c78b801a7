"""The Neural Pruning Law holds on LeNet-300/digits for each family of minimum saliency (issue 5 acceptance):
magnitude (the authors' "IMP": prune 10 % of the remaining weights by |w| while training, B.4), Taylor (|w * g|),
and Hyperflux (P/N per epoch under a pressure raised step by step, B.4 (a)). Each run's law.csv, fitted in the
default middle region (0.5 %, 50 %] with hyperflux.law.fit_power_law, must have R^2 >= 0.95.

Measured (seeds 0, 1, 2, 2 CPU cores): magnitude alpha 2.28-2.33, R^2 0.980-0.983; taylor alpha 0.73-0.79,
R^2 0.971-0.980; hyperflux alpha 0.82-0.84, R^2 0.978-0.979. benchmarks/law_families_lenet300_digits.py records them.
"""
import pandas as pd
import pytest

from hyperflux.law import fit_power_law
from hyperflux.train import recipe, train

# One protocol per family; benchmarks/law_families_lenet300_digits.py uses the same settings.
FAMILIES = {
    # 44 steps of 10 % (99 % sparsity) spread over 30 epochs, no fine-tuning: density 90 % -> 1 %
    "magnitude": dict(method="magnitude", sparsity_pct=99.0, epochs_prune=30, epochs_regrow=0),
    "taylor": dict(method="taylor", sparsity_pct=99.0, epochs_prune=30, epochs_regrow=0),
    # P = sqrt(2)^k, k = -8, -7, ..., raised every 3 epochs from the end of epoch 2 (P/N from 1.2e-6 up);
    # mask lr 1e-2 so that the density settles within a 3-epoch window on this small data set
    "hyperflux": dict(method="hyperflux", sparsity_pct=99.0, epochs_prune=47, epochs_regrow=0,
                      step_pressure=(2 ** 0.5, -8, 3, 2), mask_lr=0.01),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_law_middle_region_fit(family, tmp_path):
    cfg = recipe("lenet300", "digits", law=True, progress=False, seed=0, **FAMILIES[family])
    train(cfg, tmp_path / family)
    law = pd.read_csv(tmp_path / family / "law.csv")
    assert law.density_pct.iloc[-1] < 2.0, law.tail()   # the run went through the whole middle region
    fit = fit_power_law(law.saliency_min, law.density_pct)  # default region (0.5, 50]
    print(f"{family}: alpha={fit.alpha:.3f} c={fit.c:.3g} R^2={fit.r2:.4f} n={fit.n}")
    assert fit.n >= 10, fit
    assert fit.alpha > 0, fit
    assert fit.r2 >= 0.95, fit
